"""A loud failure when the override does not apply: the guard of ``override_dependency``.

When the replacement closes over a factory on the test's connection (``session_dependency`` & co.), a session bound to
an engine that begins a transaction while the override is installed raises
``IsolationBreach``, naming what to override, before it writes. The negative controls:
the same request with the override keyed by a look-alike (the override never applies), and
a route that opens the app's own factory itself (the override applies, the route bypasses it).
The positive side: the conftest's recommended ``client`` fixture carries the guard without a
word (its requests pass), and sessions a test binds to a connection itself are not refused.
"""

import functools
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionLocal, get_session
from app.main import app as shelter_app
from app.models import Animal
from tests.isolation import IsolationBreach, override_dependency, session_dependency


async def committed_animals(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM animals"))


async def test_the_recommended_client_fixture_has_the_guard_and_its_requests_pass(client, sessions):
    from tests import isolation

    assert [guard.dependency for guard in isolation._GUARDS] == [get_session]  # installed by `client`, no opt-in
    assert (await client.post("/animals", json={"name": "Guarded", "species": "cat"})).status_code == 201
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Animal)) == 1


@pytest.mark.negative_control
async def test_an_override_under_a_lookalike_key_fails_the_request_naming_the_real_dependency(sessions, engine):
    @functools.wraps(get_session)
    async def lookalike():  # same name, another object: FastAPI ignores the override
        async for session in get_session():
            yield session

    with pytest.raises(IsolationBreach) as raised:
        with override_dependency(shelter_app, lookalike, session_dependency(sessions)):
            async with AsyncClient(transport=ASGITransport(app=shelter_app), base_url="http://test") as http:
                await http.post("/animals", json={"name": "Ghost", "species": "cat"})
    message = str(raised.value)
    assert "The override never applied" in message, message
    assert "Override the dependency the routes use: app.db.get_session" in message, message
    assert await committed_animals(engine) == 0  # stopped before its INSERT: nothing committed for real


@pytest.mark.negative_control
async def test_a_route_that_opens_the_apps_own_factory_fails_naming_the_factory(sessions, engine):
    demo = FastAPI()

    @demo.post("/direct")
    async def direct(session: Annotated[AsyncSession, Depends(get_session)]) -> int:
        async with SessionLocal() as own:  # bypasses the dependency the test overrode
            own.add(Animal(name="Bypass", species="dog"))
            await own.commit()
        return 1

    with pytest.raises(IsolationBreach) as raised:
        with override_dependency(demo, get_session, session_dependency(sessions)):
            async with AsyncClient(transport=ASGITransport(app=demo), base_url="http://test") as http:
                await http.post("/direct")
    message = str(raised.value)
    assert 'monkeypatch.setattr("app.db.SessionLocal", factory)' in message, message
    assert "The override never applied" not in message
    assert await committed_animals(engine) == 0


@pytest.mark.negative_control
async def test_a_breach_the_app_swallows_still_fails_at_exit(sessions, engine):
    demo = FastAPI()

    @demo.post("/swallow")
    async def swallow() -> str:
        try:
            async with SessionLocal() as own:
                await own.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - an app that hides every error
            return type(error).__name__
        return "no error"

    with pytest.raises(IsolationBreach, match="replace it for the test"):
        with override_dependency(demo, get_session, session_dependency(sessions)):
            async with AsyncClient(transport=ASGITransport(app=demo), base_url="http://test") as http:
                assert (await http.post("/swallow")).json() == "IsolationBreach"  # hidden from the test ...
    # ... and raised again when the override is removed (the fixture's teardown)


async def test_a_replacement_of_your_own_that_closes_over_the_factory_is_guarded_too(sessions, engine):
    async def own_shape():  # written by hand, not by session_dependency: the factory is in its closure
        async with sessions() as session:
            yield session

    with pytest.raises(IsolationBreach):
        with override_dependency(shelter_app, get_session, own_shape):
            async with AsyncSession(engine) as own:  # bound to an engine: refused
                await own.scalar(text("SELECT 1"))


async def test_a_replacement_without_a_factory_on_a_connection_has_no_guard(engine):
    def fake():  # a replacement that knows no test connection: nothing to compare with
        return None

    with override_dependency(shelter_app, get_session, fake):
        async with AsyncSession(engine) as own:  # allowed
            assert await own.scalar(text("SELECT 1")) == 1


async def test_sessions_a_test_binds_to_a_connection_itself_are_not_refused(sessions, engine):
    with override_dependency(shelter_app, get_session, session_dependency(sessions)):
        async with engine.connect() as conn, AsyncSession(bind=conn) as own:
            assert await own.scalar(text("SELECT 1")) == 1
