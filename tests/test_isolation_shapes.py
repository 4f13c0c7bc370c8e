"""The three shapes of an app's session dependency, and how the helper plugs into each.

1. One session per request (``get_session`` yields a session): override it with
   ``session_dependency(factory)``.
2. The dependency hands out the session *factory* and the route opens sessions itself:
   override it with ``sessionmaker_dependency(factory)``; ``session_dependency`` there gives
   ``TypeError: 'AsyncSession' object is not callable``.
3. The dependency commits after the request (routes only ``add``/``flush``): overriding it
   skips that commit, the session closes uncommitted and the row is gone by the next request.
   Keep the app's own dependency and replace the factory it uses (``monkeypatch.setattr``),
   or override with a wrapper that commits the same way.

Each mini app below mirrors one shape; ``sessions`` is the suite's per-test isolated factory.
"""

import sys
from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, HTTPException
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import engine as app_engine
from app.models import Animal
from app.schemas import AnimalIn
from tests.isolation import override_dependency, session_dependency, sessionmaker_dependency

#: The apps' own factory (the app's engine): tests must never reach it.
SessionLocal = async_sessionmaker(app_engine, expire_on_commit=False)


def client_for(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


# --- shape 2: a dependency that hands out the factory --------------------------------------------


def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    return SessionLocal


factory_app = FastAPI()


@factory_app.post("/animals", status_code=201)
async def create_with_own_sessions(
    body: AnimalIn, make_session: Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
) -> dict:
    async with make_session() as session:  # the route opens (and could open several) sessions
        session.add(Animal(name=body.name, species=body.species))
        await session.commit()
    async with make_session() as session:
        return {"names": list(await session.scalars(select(Animal.name)))}


@pytest.mark.negative_control
async def test_a_session_where_the_route_expects_a_factory_is_not_callable(sessions):
    with override_dependency(factory_app, get_sessionmaker, session_dependency(sessions)):
        async with client_for(factory_app) as http:
            with pytest.raises(TypeError, match="'AsyncSession' object is not callable"):
                await http.post("/animals", json={"name": "Rex", "species": "dog"})


@pytest.mark.parametrize("run", range(2))
async def test_sessionmaker_dependency_hands_the_route_the_isolated_factory(run, sessions):
    with override_dependency(factory_app, get_sessionmaker, sessionmaker_dependency(sessions)):
        async with client_for(factory_app) as http:
            created = await http.post("/animals", json={"name": "Rex", "species": "dog"})
    assert (created.status_code, created.json()) == (201, {"names": ["Rex"]})  # run 1 too: nothing leaked


# --- shape 3: a dependency that commits after the request -----------------------------------------


async def get_committing_session() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:  # looked up when called: a test may replace SessionLocal
        yield session
        await session.commit()  # the routes leave committing to the dependency


committing_app = FastAPI()
Committing = Annotated[AsyncSession, Depends(get_committing_session)]


@committing_app.post("/animals", status_code=201)
async def create_without_commit(body: AnimalIn, session: Committing) -> dict:
    animal = Animal(name=body.name, species=body.species)
    session.add(animal)
    await session.flush()
    return {"id": animal.id}


@committing_app.get("/animals/{animal_id}")
async def read_animal(animal_id: int, session: Committing) -> dict:
    animal = await session.get(Animal, animal_id)
    if animal is None:
        raise HTTPException(404, f"No animal with id {animal_id}.")
    return {"name": animal.name}


@pytest.mark.negative_control
async def test_overriding_a_committing_dependency_skips_its_commit_and_the_row_vanishes(sessions):
    with override_dependency(committing_app, get_committing_session, session_dependency(sessions)):
        async with client_for(committing_app) as http:
            created = await http.post("/animals", json={"name": "Rex", "species": "dog"})
            fetched = await http.get(f"/animals/{created.json()['id']}")
    assert created.status_code == 201  # flushed, so it even got an id ...
    assert fetched.status_code == 404  # ... but never committed: closing the session rolled it back


async def test_replacing_the_factory_keeps_the_apps_own_dependency_and_its_commit(sessions, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "SessionLocal", sessions)  # in your app: "yourapp.db.SessionLocal"
    async with client_for(committing_app) as http:
        created = await http.post("/animals", json={"name": "Rex", "species": "dog"})
        fetched = await http.get(f"/animals/{created.json()['id']}")
    assert (fetched.status_code, fetched.json()) == (200, {"name": "Rex"})


async def test_a_wrapper_that_commits_like_the_app_keeps_the_commit(sessions):
    async def committing_test_session() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session
            await session.commit()

    with override_dependency(committing_app, get_committing_session, committing_test_session):
        async with client_for(committing_app) as http:
            created = await http.post("/animals", json={"name": "Rex", "species": "dog"})
            fetched = await http.get(f"/animals/{created.json()['id']}")
    assert (fetched.status_code, fetched.json()) == (200, {"name": "Rex"})


async def test_none_of_the_shapes_left_rows_for_a_later_run(sessions):
    async with sessions() as session:  # shape 1 (session per request) is the rest of the suite
        assert list(await session.scalars(select(Animal.name))) == []
