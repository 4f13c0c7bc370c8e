"""SQLModel apps: ``session.exec()`` needs SQLModel's session classes, which ``class_`` provides.

A tiny app written the way SQLModel's and FastAPI's docs teach (``Session(engine)`` per
request, ``session.exec(select(...))``), sync with TestClient and async with ASGITransport,
on its own table. Without ``class_`` its routes fail with AttributeError; with it they run,
commit, and leave nothing behind.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Engine, create_engine, func
from sqlalchemy.ext.asyncio import AsyncSession as PlainAsyncSession
from sqlmodel import Field, Session, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.isolation import (
    fix_sqlite_savepoints,
    isolated_async_sessions,
    isolated_sessions,
    nested_sessions,
    override_dependency,
    session_dependency,
    sync_session_dependency,
)
from tests.test_isolation_sync import sync_url


class Hero(SQLModel, table=True):
    __tablename__ = "isolation_sqlmodel_heroes"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


# --- the app, as SQLModel's tutorial writes it (its engine is never used by these tests) ----------

production_engine = create_engine("sqlite://")


def get_session() -> Iterator[Session]:
    with Session(production_engine) as session:
        yield session


heroes = FastAPI()


@heroes.post("/heroes", status_code=201)
def create_hero(hero: Hero, session: Annotated[Session, Depends(get_session)]) -> Hero:
    session.add(hero)
    session.commit()
    session.refresh(hero)
    return hero


@heroes.get("/heroes")
def list_heroes(session: Annotated[Session, Depends(get_session)]) -> list[str]:
    return list(session.exec(select(Hero.name).order_by(Hero.name)))


async def get_async_session() -> AsyncIterator[AsyncSession]:
    raise NotImplementedError("production wiring: every test overrides it")
    yield


async_heroes = FastAPI()


@async_heroes.get("/heroes")
async def list_heroes_async(session: Annotated[AsyncSession, Depends(get_async_session)]) -> list[str]:
    return list(await session.exec(select(Hero.name).order_by(Hero.name)))


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sync_engine(engine, database_url) -> Iterator[Engine]:
    sync = create_engine(sync_url(database_url))
    fix_sqlite_savepoints(sync)
    Hero.__table__.create(sync, checkfirst=True)
    yield sync
    Hero.__table__.drop(sync)
    sync.dispose()


def committed_heroes(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Hero))


@pytest.fixture(autouse=True)
def leaves_no_heroes(sync_engine):
    yield
    assert committed_heroes(sync_engine) == 0, "a test of this module committed heroes for good"


@pytest.fixture
def sessions(sync_engine) -> Iterator:
    with isolated_sessions(sync_engine, class_=Session) as factory:
        yield factory


@pytest.fixture
def client(sessions) -> Iterator[TestClient]:
    with override_dependency(heroes, get_session, sync_session_dependency(sessions)), TestClient(heroes) as client:
        yield client


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.negative_control
def test_without_class_the_route_gets_a_plain_session_that_has_no_exec(sync_engine):
    with isolated_sessions(sync_engine) as plain_factory:  # the default: sqlalchemy.orm.Session
        with override_dependency(heroes, get_session, sync_session_dependency(plain_factory)):
            with TestClient(heroes) as client, pytest.raises(AttributeError, match="'Session' object has no attribute 'exec'"):
                client.get("/heroes")


@pytest.mark.parametrize("run", range(2))
def test_with_sqlmodels_session_class_the_app_commits_and_the_next_request_sees_it(run, client, sessions):
    assert client.post("/heroes", json={"name": "Deadpond"}).status_code == 201  # 500 on a leftover: unique name
    assert client.get("/heroes").json() == ["Deadpond"]
    with sessions() as session:
        assert isinstance(session, Session)
        assert session.exec(select(Hero.name)).all() == ["Deadpond"]


def test_the_tutorials_shape_one_session_shared_by_the_test_and_the_request(sessions):
    """SQLModel's tutorial overrides get_session with the test's own session: the helper's works too."""
    with sessions() as session:
        session.add(Hero(name="Rusty-Man"))
        session.commit()
        with override_dependency(heroes, get_session, lambda: session), TestClient(heroes) as client:
            assert client.get("/heroes").json() == ["Rusty-Man"]
            assert client.post("/heroes", json={"name": "Spider-Boy"}).status_code == 201
        assert session.exec(select(func.count()).select_from(Hero)).one() == 2


def test_layers_keep_the_session_class(sessions):
    with nested_sessions(sessions) as layer, layer() as session:
        assert isinstance(session, Session)
        session.add(Hero(name="Layered"))
        session.commit()
        assert session.exec(select(Hero.name)).all() == ["Layered"]


async def test_async_sqlmodel_sessions_have_exec_too(engine, sync_engine):
    async with isolated_async_sessions(engine, class_=AsyncSession) as factory:
        async with factory() as session:
            session.add(Hero(name="Tarantula"))
            await session.commit()
        with override_dependency(async_heroes, get_async_session, session_dependency(factory)):
            async with AsyncClient(transport=ASGITransport(app=async_heroes), base_url="http://test") as http:
                assert (await http.get("/heroes")).json() == ["Tarantula"]


@pytest.mark.negative_control
async def test_async_without_class_the_route_has_no_exec(engine, sync_engine):
    async with isolated_async_sessions(engine) as factory:
        assert factory.class_ is PlainAsyncSession
        with override_dependency(async_heroes, get_async_session, session_dependency(factory)):
            async with AsyncClient(transport=ASGITransport(app=async_heroes), base_url="http://test") as http:
                with pytest.raises(AttributeError, match="'AsyncSession' object has no attribute 'exec'"):
                    await http.get("/heroes")


async def test_a_sync_session_class_for_the_async_helper_is_refused_with_the_class_to_use(engine):
    with pytest.raises(TypeError, match=r"For SQLModel use sqlmodel\.ext\.asyncio\.session\.AsyncSession"):
        async with isolated_async_sessions(engine, class_=Session):
            pass


def test_an_async_session_class_for_the_sync_helper_is_refused_with_the_class_to_use(sync_engine):
    with pytest.raises(TypeError, match=r"needs a subclass of sqlalchemy\.orm\.session\.Session.*use sqlmodel\.Session"):
        with isolated_sessions(sync_engine, class_=AsyncSession):
            pass
