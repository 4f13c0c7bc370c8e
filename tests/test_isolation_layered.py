"""Layered isolation (async): expensive shared data written once per module, a SAVEPOINT per test.

``shared`` (module scope) writes the shelter's staff account, whose password hash is slow on
purpose, and three animals, once, through a session joined to a never-committed outer
transaction. Every test runs in ``nested_async_sessions(...)``: a SAVEPOINT on the same
connection, rolled back after it. Tests write, change the shared rows and commit through the
API; the next test (any order, pytest-randomly) finds the shared rows as they were and none of
the earlier test's writes. Other connections never see any of it (0 rows after the run:
``python -m course.database check-empty``). The negative controls show what breaks when a
session is *not* joined to the layer.

The layer's connection lives on the event loop of the fixture that opened it, so every test and
fixture that touches it runs on the session loop (``pyproject.toml`` sets both defaults; the
mark below says it where the layer is used).
"""

import hashlib
from dataclasses import dataclass

import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.db import get_session
from app.main import app as shelter_app
from app.models import Adopter, Animal, AnimalStatus, Base
from course.database import backend, selected_url
from tests.isolation import (
    fix_sqlite_savepoints,
    isolated_async_sessions,
    nested_async_sessions,
    override_dependency,
    session_dependency,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

BACKEND = backend(selected_url())
TABLES = [table.name for table in Base.metadata.sorted_tables]
SHARED_ANIMALS = ["Biscuit", "Pepper", "Willow"]
STAFF_EMAIL = "staff@shelter.example"
#: One entry per password hashed in this process: the shared fixture must hash exactly once.
PASSWORDS_HASHED: list[str] = []


def hash_password(password: str) -> str:
    """Deliberately slow, like a real password hash (PBKDF2, 200 000 rounds)."""
    PASSWORDS_HASHED.append(password)
    return hashlib.pbkdf2_hmac("sha256", password.encode(), b"course-salt", 200_000).hex()[:40]


@dataclass
class Shared:
    outer: async_sessionmaker[AsyncSession]  # joined to the module's outer transaction
    staff_id: int
    staff_name: str


async def rows_per_table(engine: AsyncEngine) -> dict[str, int]:
    """Counted on a brand-new connection: only what was really committed."""
    async with engine.connect() as conn:
        return {name: await conn.scalar(text(f'SELECT count(*) FROM "{name}"')) for name in TABLES}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared(engine):
    async with isolated_async_sessions(engine) as outer:
        async with outer() as session:  # closed before any test: it must not hold a SAVEPOINT
            # the schema has no users table: the hash goes where a password_hash column would
            staff = Adopter(name=f"staff {hash_password('correct horse')}", email=STAFF_EMAIL)
            session.add_all([staff, *(Animal(name=name, species="cat") for name in SHARED_ANIMALS)])
            await session.commit()  # releases the session's SAVEPOINT: the rows stay in the outer transaction
        yield Shared(outer=outer, staff_id=staff.id, staff_name=staff.name)
    # leaving the block rolled the outer transaction back: the shared rows are gone too


@pytest.fixture
async def layer(shared):
    async with nested_async_sessions(shared.outer) as factory:
        yield factory


@pytest.fixture
async def layered_client(layer, notifier, payments):
    with override_dependency(shelter_app, get_session, session_dependency(layer)):
        async with LifespanManager(shelter_app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http


async def animal_names(factory: async_sessionmaker[AsyncSession]) -> list[str]:
    async with factory() as session:
        return sorted(await session.scalars(select(Animal.name)))


async def test_the_shared_data_was_written_once_for_the_whole_module(shared, layer):
    assert PASSWORDS_HASHED == ["correct horse"]  # whichever test of this module runs first or last
    assert await animal_names(layer) == SHARED_ANIMALS


@pytest.mark.parametrize("run", range(3))
async def test_each_test_commits_through_the_api_and_its_writes_are_gone_in_the_next(run, layered_client, layer):
    created = await layered_client.post("/animals", json={"name": "Rex", "species": "dog"})
    assert created.status_code == 201  # 409 would mean an earlier test's Rex survived its SAVEPOINT
    adopter = await layered_client.post("/adopters", json={"name": "Ada", "email": "ada@example.com"})
    assert adopter.status_code == 201

    listed = await layered_client.get("/animals")
    assert sorted(a["name"] for a in listed.json()) == sorted([*SHARED_ANIMALS, "Rex"])
    assert PASSWORDS_HASHED == ["correct horse"]


@pytest.mark.parametrize("run", range(3))
async def test_each_test_may_change_the_shared_data_and_the_next_finds_it_intact(run, shared, layered_client, layer):
    async with layer() as session:
        biscuit = await session.scalar(select(Animal).where(Animal.name == "Biscuit"))
        staff = await session.get(Adopter, shared.staff_id)
        assert (biscuit.status, staff.name) == (AnimalStatus.AVAILABLE, shared.staff_name)  # as written once

        staff.name = "renamed by a test"
        await session.execute(delete(Animal).where(Animal.name == "Willow"))
        await session.commit()

    reserved = await layered_client.post("/adoptions", json={"animal_id": biscuit.id, "adopter_id": shared.staff_id})
    assert reserved.status_code == 201
    fetched = await layered_client.get(f"/animals/{biscuit.id}")
    assert fetched.json()["status"] == AnimalStatus.RESERVED
    assert await animal_names(layer) == ["Biscuit", "Pepper"]


async def test_other_connections_see_neither_the_shared_data_nor_the_tests_writes(engine, layer):
    async with layer() as session:
        session.add(Animal(name="Invisible", species="bird"))
        await session.commit()
    assert await animal_names(layer) == sorted([*SHARED_ANIMALS, "Invisible"])
    assert await rows_per_table(engine) == dict.fromkeys(TABLES, 0)


async def test_a_session_of_the_outer_factory_opened_during_a_test_also_lands_in_its_layer(shared, layer):
    """One connection: a session's own SAVEPOINT nests inside whatever is open on it, the layer's too."""
    async with shared.outer() as session:
        session.add(Animal(name="Outer", species="dog"))
        await session.commit()
    assert "Outer" in await animal_names(layer)  # gone after this test, like every other write


# --- negative controls ---------------------------------------------------------------------------


@pytest.fixture
async def plain_engine(database_url):
    """A second engine: its sessions have their own connection, not joined to any layer."""
    connect_args = {"timeout": 0} if BACKEND == "sqlite" else {}  # SQLite: fail at once instead of waiting 5 s
    plain = create_async_engine(database_url, connect_args=connect_args)
    fix_sqlite_savepoints(plain)
    yield plain
    await plain.dispose()


@pytest.mark.negative_control
async def test_a_session_not_joined_to_the_layer_leaks_on_postgresql_and_is_locked_out_on_sqlite(
    plain_engine, engine, layer
):
    async with AsyncSession(plain_engine) as plain:
        assert list(await plain.scalars(select(Animal.name))) == []  # it cannot see the shared data either
        plain.add(Animal(name="Leaked", species="dog"))
        if BACKEND == "sqlite":
            with pytest.raises(OperationalError, match="database is locked"):
                await plain.commit()  # the layer's connection holds SQLite's one write lock
            return
        await plain.commit()  # PostgreSQL: a real COMMIT on another connection
    try:
        assert (await rows_per_table(engine))["animals"] == 1  # leaked: every later test and run sees it ...
        assert "Leaked" in await animal_names(layer)  # ... the layer too (READ COMMITTED), next test included
    finally:
        async with plain_engine.begin() as conn:
            await conn.execute(delete(Animal).where(Animal.name == "Leaked"))
    assert (await rows_per_table(engine))["animals"] == 0


@pytest.mark.negative_control
async def test_a_session_not_joined_to_the_layer_waits_for_a_shared_rows_unique_key(plain_engine, layer):
    """Without a lock timeout this INSERT would wait for the module's outer transaction: a hung test."""
    async with AsyncSession(plain_engine) as plain:
        if BACKEND == "postgresql":
            await plain.execute(text("SET LOCAL lock_timeout = '200ms'"))
        plain.add(Adopter(name="impostor", email=STAFF_EMAIL))
        expected = "database is locked" if BACKEND == "sqlite" else "canceling statement due to lock timeout"
        with pytest.raises(DBAPIError, match=expected):  # SQLite: OperationalError; asyncpg: LockNotAvailableError
            await plain.flush()
