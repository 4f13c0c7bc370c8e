"""Negative controls: broken setups whose failure we assert, so the isolation tests mean something.

Each test here builds a setup the course warns against (lessons 02-05:
no override, the default join mode, one session shared by test and app, the SQLite driver's
missing BEGIN, concurrent requests on one connection),
asserts exactly what goes wrong on the selected backend, and deletes whatever it leaked in
a ``finally``, so the suite still leaves 0 rows behind (``python -m course.database
check-empty``). Run only these with ``pytest -m negative_control``.
"""

import asyncio

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InvalidRequestError, SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

import app.db as app_db
from app import naive
from app.db import get_session
from app.main import app as shelter_app
from app.models import Adopter, Animal
from course.database import backend, selected_url
from tests.isolation import isolated_async_sessions, override_dependency, session_dependency

pytestmark = pytest.mark.negative_control

# conftest.py has already pointed DATABASE_URL at this process's test database; only the
# backend matters here, to pick the expected outcome at collection time (a param, not a skip).
BACKEND = backend(selected_url())

NAIVE_RETRY = {"species": "dog", "candidates": ["Max", "Cody"]}


async def animal_names(engine: AsyncEngine) -> list[str]:
    """What a brand-new connection sees: only rows that were really committed."""
    async with engine.connect() as conn:
        return sorted(await conn.scalars(select(Animal.name)))


async def delete_animals(engine: AsyncEngine, *names: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(Animal).where(Animal.name.in_(names)))


def naive_app(connection) -> FastAPI:
    """A fresh app with only the naive retry route, its sessions bound to ``connection`` in the
    DEFAULT join mode (no ``join_transaction_mode``): the setup lesson 05 warns about."""
    demo = FastAPI()
    demo.include_router(naive.router)

    async def default_mode_session():
        # expire_on_commit=False: with the default, serialising the committed (expired) Animal
        # lazy-loads outside the greenlet and even the FIRST request fails, with
        # ResponseValidationError (MissingGreenlet), hiding the failure shown here.
        async with AsyncSession(bind=connection, expire_on_commit=False) as session:
            yield session

    demo.dependency_overrides[get_session] = default_mode_session
    return demo


async def test_without_the_override_the_app_writes_with_its_own_engine_and_rows_escape(engine, database_url):
    assert get_session not in shelter_app.dependency_overrides  # i.e. no `client` fixture here
    # Safety net of conftest.py: the app's own engine points at the test database, not the dev one.
    assert make_url(str(app_db.engine.url)).database == make_url(database_url).database
    try:
        async with isolated_async_sessions(engine):  # the rollback fixture is active ... but bypassed
            async with LifespanManager(shelter_app) as started:
                async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                    response = await http.post("/animals", json={"name": "Escapee", "species": "cat"})
            assert response.status_code == 201
        # the outer transaction has been rolled back; the row was never in it
        assert await animal_names(engine) == ["Escapee"]
    finally:
        await delete_animals(engine, "Escapee")
        await app_db.engine.dispose()  # no pooled connection outlives the test (an asyncpg connection belongs to its event loop)
    assert await animal_names(engine) == []


async def test_default_join_mode_with_async_with_begin_breaks_the_retry_request(engine):
    """The retry's session.rollback() ends the test's outer transaction; the next attempt's
    flush must begin a new one inside the still-open ``async with conn.begin():`` block."""
    try:
        async with engine.connect() as conn:
            async with conn.begin():
                async with AsyncClient(transport=ASGITransport(app=naive_app(conn)), base_url="http://test") as http:
                    first = await http.post("/naive/arrivals", json=NAIVE_RETRY)
                    assert (first.status_code, first.json()["name"]) == (201, "Max")

                    # ASGITransport re-raises the app's exception: it surfaces here, in the
                    # second request, not at the exit of the `async with conn.begin():` block.
                    with pytest.raises(
                        InvalidRequestError,
                        match=r"^Can't operate on closed transaction inside context manager\.  "
                        r"Please complete the context manager before emitting further commands\.$",
                    ):
                        await http.post("/naive/arrivals", json=NAIVE_RETRY)
                assert not conn.in_transaction()  # the app's rollback ended the test's transaction
            # ... and leaving the block raises nothing more
        assert await animal_names(engine) == []  # "Max" went with the rolled-back transaction
    finally:
        await delete_animals(engine, "Max", "Cody")


async def test_default_join_mode_with_plain_begin_lets_the_retry_commit_for_real(engine):
    """No error at all: after the rollback the session begins (and owns) a new transaction,
    so the retry's commit() really commits. The test's "rollback" comes too late."""
    try:
        async with engine.connect() as conn:
            outer = await conn.begin()
            async with AsyncClient(transport=ASGITransport(app=naive_app(conn)), base_url="http://test") as http:
                first = await http.post("/naive/arrivals", json=NAIVE_RETRY)
                second = await http.post("/naive/arrivals", json=NAIVE_RETRY)
            assert [(r.status_code, r.json()["name"]) for r in (first, second)] == [(201, "Max"), (201, "Cody")]
            assert not outer.is_active  # the app rolled it back (taking "Max" with it)
            with pytest.warns(SAWarning, match="transaction already deassociated from connection"):
                await outer.rollback()  # what the fixture does at teardown: nothing left to roll back
        assert await animal_names(engine) == ["Cody"]  # leaked: committed by the retry
    finally:
        await delete_animals(engine, "Max", "Cody")
    assert await animal_names(engine) == []


@pytest.mark.parametrize(
    "expected_names",
    [pytest.param(["Leaky"], id="sqlite-leaks") if BACKEND == "sqlite" else pytest.param([], id="postgresql-does-not-leak")],
)
async def test_create_savepoint_without_the_sqlite_driver_fix(engine, database_url, expected_names):
    """The SQLAlchemy recipe alone (create_savepoint, outer rolled back) on an engine made
    WITHOUT fix_sqlite_savepoints. aiosqlite never sends BEGIN, so the SAVEPOINT opens the
    transaction and its RELEASE commits it (lesson 07). PostgreSQL needs no fix."""
    unfixed = create_async_engine(database_url)  # same test database, no event listeners
    try:
        async with unfixed.connect() as conn:
            outer = await conn.begin()
            async with AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as session:
                session.add(Animal(name="Leaky", species="rabbit"))
                await session.commit()
            await outer.rollback()
        assert await animal_names(engine) == expected_names
    finally:
        await unfixed.dispose()
        await delete_animals(engine, "Leaky")


async def test_one_session_shared_by_test_and_app_loses_the_tests_own_rows_on_the_apps_rollback(sessions):
    """A fixture that hands the test's own session to every request: the route's rollback()
    after a 409 throws away what the test had flushed but not committed."""
    async with sessions() as shared:
        shared.add(Adopter(name="Ada", email="ada@example.com"))
        shared.add(Animal(name="Rex", species="dog"))
        await shared.flush()  # the test's "setup", flushed, never committed

        async def the_same_session_every_time():
            yield shared

        with override_dependency(shelter_app, get_session, the_same_session_every_time):
            async with AsyncClient(transport=ASGITransport(app=shelter_app), base_url="http://test") as http:
                response = await http.post("/animals", json={"name": "Rex", "species": "cat"})

        assert response.status_code == 409
        assert await shared.scalar(select(func.count()).select_from(Adopter)) == 0  # Ada is gone too
        assert await shared.scalar(select(func.count()).select_from(Animal)) == 0
    # nothing was committed anywhere: the `sessions` fixture rolls back as usual


CONCURRENT_FAILURE = {
    "sqlite": r"\(sqlite3\.OperationalError\) no such savepoint: sa_savepoint_\d+",
    "postgresql": r'\(sqlalchemy\.dialects\.postgresql\.asyncpg\.Error\) savepoint "sa_savepoint_\d+" does not exist',
}


async def test_concurrent_requests_on_the_shared_connection_break_each_others_savepoints(client, engine):
    """Two POSTs at once: their sessions share the test's one connection and interleave
    SAVEPOINT sp1, SAVEPOINT sp2, INSERT, INSERT, RELEASE sp1 (which also releases sp2),
    RELEASE sp2 -> error. Deterministic: both run the same code and the driver serves the
    one connection in FIFO order (SQLAlchemy's asyncpg adapter holds a lock per connection,
    aiosqlite one thread), so the first request always stays one statement ahead."""
    with pytest.warns(SAWarning, match="nested transaction already deassociated from connection"):
        outcomes = await asyncio.gather(
            client.post("/animals", json={"name": "Castor", "species": "dog"}),
            client.post("/animals", json={"name": "Pollux", "species": "dog"}),
            return_exceptions=True,
        )

    succeeded = [o for o in outcomes if not isinstance(o, BaseException)]
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert [r.status_code for r in succeeded] == [201]
    assert len(failed) == 1
    with pytest.raises(DBAPIError, match=CONCURRENT_FAILURE[BACKEND]):
        raise failed[0]
    assert "RELEASE SAVEPOINT" in str(failed[0])
    assert await animal_names(engine) == []  # all of it was inside the test's transaction


async def test_concurrent_requests_answer_500_when_the_transport_does_not_reraise(sessions, engine):
    """The same race seen as HTTP: what a client gets when the app's exception is not re-raised."""
    with override_dependency(shelter_app, get_session, session_dependency(sessions)):
        transport = ASGITransport(app=shelter_app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            with pytest.warns(SAWarning, match="nested transaction already deassociated from connection"):
                responses = await asyncio.gather(
                    http.post("/animals", json={"name": "Castor", "species": "dog"}),
                    http.post("/animals", json={"name": "Pollux", "species": "dog"}),
                )
    assert sorted(r.status_code for r in responses) == [201, 500]
    assert await animal_names(engine) == []
