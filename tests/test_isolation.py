"""Proof that rollback isolation (tests/isolation.py + conftest.py) holds.

Writers commit rows through the API and through the test's own session; readers assert
that every table is empty. pytest-randomly shuffles them together, so readers run after
some writers in almost every order (all 5 readers before all 5 writers: 1 order in 252).
Writers reuse the same unique names, so a leaked row would also turn a later writer's 201
into a 409.
"""

import functools
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, event, func, select, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.db import engine as engine_of_the_app_module
from app.db import get_session
from app.main import app as shelter_app
from app.models import Adopter, Adoption, Animal, Base
from course.database import backend, selected_url
from tests import isolation
from tests.isolation import fix_sqlite_savepoints, isolated_async_sessions, override_dependency

BACKEND = backend(selected_url())
TABLES = [table.name for table in Base.metadata.sorted_tables]
WRITERS_SO_FAR: list[int] = []


def engine_of_the_app() -> AsyncEngine:
    """The app's own engine (conftest points it at this process's test database)."""
    return engine_of_the_app_module


async def rows_per_table(engine: AsyncEngine) -> dict[str, int]:
    """Counted on a brand-new connection: it sees only what was really committed."""
    async with engine.connect() as conn:
        return {name: await conn.scalar(text(f'SELECT count(*) FROM "{name}"')) for name in TABLES}


def test_readers_check_every_table_the_writers_fill():
    assert {"animals", "adopters", "adoptions"} <= set(TABLES)  # readers cover any later table too


@pytest.mark.parametrize("writer", range(5))
async def test_writer_commits_rows_through_the_api_and_the_session(writer, client, session):
    animal = await client.post("/animals", json={"name": "Rex", "species": "dog"})
    adopter = await client.post("/adopters", json={"name": "Ada", "email": "ada@example.com"})
    assert (animal.status_code, adopter.status_code) == (201, 201)  # 409 would mean an earlier writer leaked
    reserved = await client.post("/adoptions", json={"animal_id": animal.json()["id"], "adopter_id": adopter.json()["id"]})
    assert reserved.status_code == 201

    luna = Animal(name="Luna", species="cat")
    session.add_all([luna, Adopter(name="Bob", email="bob@example.com")])
    await session.flush()
    session.add(Adoption(animal=luna, adopter_id=adopter.json()["id"], fee_cents=9000))
    await session.commit()

    counts = {
        name: await session.scalar(select(func.count()).select_from(Base.metadata.tables[name])) for name in TABLES
    }
    assert counts == {"animals": 2, "adopters": 2, "adoptions": 2}
    WRITERS_SO_FAR.append(writer)


@pytest.mark.parametrize("reader", range(5))
async def test_reader_finds_every_table_empty(reader, engine):
    assert await rows_per_table(engine) == dict.fromkeys(TABLES, 0), f"after writers {WRITERS_SO_FAR}"


@pytest.mark.parametrize("reader", range(5))
async def test_reader_in_its_own_isolated_transaction_finds_every_table_empty(reader, session):
    for name in TABLES:
        count = await session.scalar(select(func.count()).select_from(Base.metadata.tables[name]))
        assert count == 0, f"{name} after writers {WRITERS_SO_FAR}"


async def test_requests_of_one_test_see_each_others_commits_through_one_session_each_on_one_connection(
    client, sessions
):
    handed_out = []

    async def recording_session_dependency():
        async with sessions() as session:
            handed_out.append(session)
            yield session

    with override_dependency(shelter_app, get_session, recording_session_dependency):
        created = await client.post("/animals", json={"name": "Milo", "species": "rabbit"})
        fetched = await client.get(f"/animals/{created.json()['id']}")
        duplicate = await client.post("/animals", json={"name": "Milo", "species": "cat"})
        listed = await client.get("/animals")

    assert created.status_code == 201
    assert (fetched.status_code, fetched.json()) == (200, created.json())
    assert duplicate.status_code == 409  # the unique constraint saw the first request's row
    assert [a["name"] for a in listed.json()] == ["Milo"]  # the 409's rollback removed only its own attempt
    assert len(handed_out) == 4 and len({id(s) for s in handed_out}) == 4  # a session per request ...
    assert len({id(s.bind) for s in handed_out}) == 1  # ... all bound to the test's one connection


async def test_nothing_is_committed_while_isolated_and_nothing_remains_after_exit(engine):
    async with isolated_async_sessions(engine) as sessions:
        async with sessions() as first:
            first.add(Animal(name="Ghost", species="cat"))
            await first.commit()  # releases a SAVEPOINT, commits nothing
        async with sessions() as second:
            assert await second.scalar(select(Animal.name)) == "Ghost"  # visible inside the test ...
        assert (await rows_per_table(engine))["animals"] == 0  # ... but not to other connections

    assert await rows_per_table(engine) == dict.fromkeys(TABLES, 0)


async def test_app_rollback_inside_isolation_keeps_earlier_commits_of_the_same_test(engine):
    async with isolated_async_sessions(engine) as sessions:
        async with sessions() as session:
            session.add(Animal(name="Kept", species="dog"))
            await session.commit()
            session.add(Animal(name="Dropped", species="dog"))
            await session.flush()
            await session.rollback()  # rolls back to the session's savepoint, not the outer transaction
            assert list(await session.scalars(select(Animal.name))) == ["Kept"]

    assert await rows_per_table(engine) == dict.fromkeys(TABLES, 0)


# --- override_dependency -------------------------------------------------------------------------


def original():
    return "production"


def replacement():
    return "test double"


def earlier_override():
    return "earlier override"


def test_override_dependency_installs_the_replacement_and_removes_the_key_after():
    demo = FastAPI()
    with override_dependency(demo, original, replacement):
        assert demo.dependency_overrides == {original: replacement}
    assert demo.dependency_overrides == {}


def test_override_dependency_removes_the_key_even_when_the_body_raises():
    demo = FastAPI()
    with pytest.raises(RuntimeError, match="test failed"):
        with override_dependency(demo, original, replacement):
            raise RuntimeError("test failed")
    assert original not in demo.dependency_overrides


def test_override_dependency_restores_the_previous_override_even_when_the_body_raises():
    demo = FastAPI()
    demo.dependency_overrides[original] = earlier_override
    with pytest.raises(RuntimeError, match="test failed"):
        with override_dependency(demo, original, replacement):
            assert demo.dependency_overrides[original] is replacement
            raise RuntimeError("test failed")
    assert demo.dependency_overrides == {original: earlier_override}


def test_nested_overrides_unwind_in_order():
    demo = FastAPI()
    with override_dependency(demo, original, earlier_override):
        with override_dependency(demo, original, replacement):
            assert demo.dependency_overrides[original] is replacement
        assert demo.dependency_overrides[original] is earlier_override
    assert demo.dependency_overrides == {}


# --- fix_sqlite_savepoints -----------------------------------------------------------------------


def installed(engine) -> tuple[int, int]:
    """How many times each of the fix's two listeners is registered on ``engine``."""
    sync_engine = getattr(engine, "sync_engine", engine)
    return (
        list(sync_engine.pool.dispatch.connect).count(isolation._sqlite_autocommit_driver),
        list(sync_engine.dispatch.begin).count(isolation._sqlite_emit_begin),
    )


async def test_fix_sqlite_savepoints_is_idempotent_and_still_isolates(tmp_path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'fix.sqlite'}")
    try:
        for _ in range(3):
            fix_sqlite_savepoints(engine)
        assert installed(engine) == (1, 1)  # twice would send BEGIN twice: "cannot start a transaction within a transaction"

        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with isolated_async_sessions(engine) as sessions:  # calls the fix a fourth time
            async with sessions() as session:
                session.add(Animal(name="Temp", species="bird"))
                await session.commit()
        assert installed(engine) == (1, 1)
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(Animal)) == 0
    finally:
        await engine.dispose()


def test_fix_sqlite_savepoints_is_idempotent_on_a_sync_engine(tmp_path):
    engine = create_sync_engine(f"sqlite:///{tmp_path / 'fix.sqlite'}")
    fix_sqlite_savepoints(engine)
    fix_sqlite_savepoints(engine)
    assert installed(engine) == (1, 1)
    engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql+asyncpg://postgres@127.0.0.1:1/never_connected", id="asyncpg"),
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/never_connected", id="psycopg"),
    ],
)
def test_fix_sqlite_savepoints_does_nothing_on_postgresql(url):
    engine = create_async_engine(url) if "asyncpg" in url else create_sync_engine(url)
    fix_sqlite_savepoints(engine)
    assert installed(engine) == (0, 0)
    sync_engine = getattr(engine, "sync_engine", engine)
    assert not event.contains(sync_engine, "begin", isolation._sqlite_emit_begin)


@pytest.mark.parametrize(
    "expected",
    [pytest.param((1, 1), id="sqlite-once") if BACKEND == "sqlite" else pytest.param((0, 0), id="postgresql-none")],
)
async def test_the_suites_engine_has_the_fix_exactly_once_despite_a_call_per_test(engine, sessions, expected):
    # conftest.py calls the fix when it builds the engine, and isolated_async_sessions again for every test
    assert installed(engine) == expected


# --- session class and options -------------------------------------------------------------------


async def test_session_options_reach_the_sessions_and_expire_on_commit_defaults_to_false(engine):
    async with isolated_async_sessions(engine) as default_factory:
        async with default_factory() as session:
            assert (session.sync_session.expire_on_commit, session.sync_session.autoflush) == (False, True)
    async with isolated_async_sessions(engine, expire_on_commit=True, autoflush=False, info={"who": "test"}) as factory:
        async with factory() as session:
            assert (session.sync_session.expire_on_commit, session.sync_session.autoflush) == (True, False)
            assert session.info == {"who": "test"}
            assert session.sync_session.join_transaction_mode == "create_savepoint"


class AuditedSession(AsyncSession):
    """An app's own session class (as SQLModel's is): the factory must make this class."""


async def test_class_makes_the_factory_hand_out_the_apps_session_class(engine):
    async with isolated_async_sessions(engine, class_=AuditedSession) as factory:
        async with factory() as session:
            assert isinstance(session, AuditedSession)


@pytest.mark.parametrize("option", ["bind", "join_transaction_mode"])
async def test_options_that_would_undo_the_isolation_are_refused_with_a_reason(engine, option):
    with pytest.raises(TypeError, match=rf"sets {option} itself .*pass only other session options"):
        async with isolated_async_sessions(engine, **{option: None}):
            pass


# --- which keys override_dependency honours -------------------------------------------------------


async def test_an_import_as_alias_is_the_same_function_and_its_override_works(session):
    from app.db import get_session as get_db  # another name, the same object

    assert get_db is get_session
    with override_dependency(shelter_app, get_db, lambda: session):
        async with AsyncClient(transport=ASGITransport(app=shelter_app), base_url="http://test") as http:
            created = await http.post("/animals", json={"name": "Alias", "species": "cat"})
    assert created.status_code == 201
    assert await session.scalar(select(Animal.name)) == "Alias"  # the request used the test's session


@pytest.mark.negative_control
async def test_a_wrapper_key_is_silently_ignored_and_the_app_keeps_its_real_dependency(engine):
    @functools.wraps(get_session)
    async def wrapped_get_session():  # same __name__ and __qualname__, a different object
        async for real in get_session():
            yield real

    calls = []

    def replacement():
        calls.append("the override ran")
        raise AssertionError("never reached")

    assert wrapped_get_session.__qualname__ == get_session.__qualname__ and wrapped_get_session is not get_session
    with override_dependency(shelter_app, wrapped_get_session, replacement):
        async with AsyncClient(transport=ASGITransport(app=shelter_app), base_url="http://test") as http:
            created = await http.post("/animals", json={"name": "Wrapped", "species": "cat"})
    try:
        assert (created.status_code, calls) == (201, [])  # the override never ran ...
        assert (await rows_per_table(engine))["animals"] == 1  # ... the app's own session really committed
    finally:
        async with engine_of_the_app().begin() as conn:
            await conn.execute(delete(Animal).where(Animal.name == "Wrapped"))
    assert (await rows_per_table(engine))["animals"] == 0


@pytest.mark.negative_control
def test_a_bound_method_of_another_instance_is_a_different_key():
    class Database:
        def get_session(self):
            return "production"

    demo, used, other = FastAPI(), Database(), Database()

    @demo.get("/")
    def index(value: Annotated[str, Depends(used.get_session)]) -> str:
        return value

    with TestClient(demo) as http:
        with override_dependency(demo, other.get_session, lambda: "test double"):
            assert http.get("/").json() == "production"  # ignored
        with override_dependency(demo, used.get_session, lambda: "test double"):
            assert http.get("/").json() == "test double"  # same method of the same instance: honoured
