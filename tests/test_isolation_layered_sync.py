"""Layered isolation (sync): nested_sessions under a module-scoped isolated_sessions, TestClient.

The sync twin of test_isolation_layered.py, on the tiny sync app of test_isolation_sync.py:
the shared rows (a slow password hash, three animals) are written once for the module, every
test runs in its own SAVEPOINT and finds them as they were.
"""

import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, delete, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.models import Adopter, Animal, Base
from course.database import backend, selected_url
from tests.isolation import (
    fix_sqlite_savepoints,
    isolated_sessions,
    nested_sessions,
    override_dependency,
    sync_session_dependency,
)
from tests.test_isolation_sync import get_db, pets, sync_url

BACKEND = backend(selected_url())
SHARED_ANIMALS = ["Biscuit", "Pepper", "Willow"]
PASSWORDS_HASHED: list[str] = []


def hash_password(password: str) -> str:
    """Deliberately slow, like a real password hash (PBKDF2, 200 000 rounds)."""
    PASSWORDS_HASHED.append(password)
    return hashlib.pbkdf2_hmac("sha256", password.encode(), b"course-salt", 200_000).hex()[:40]


def committed_rows(engine: Engine) -> int:
    """Rows of every app table, counted on a brand-new connection."""
    with engine.connect() as conn:
        return sum(conn.scalar(select(func.count()).select_from(table)) for table in Base.metadata.sorted_tables)


@pytest.fixture(scope="module")
def sync_engine(engine, database_url) -> Iterator[Engine]:
    sync = create_engine(sync_url(database_url))
    fix_sqlite_savepoints(sync)
    yield sync
    sync.dispose()


@pytest.fixture(scope="module")
def shared(sync_engine) -> Iterator[sessionmaker[Session]]:
    with isolated_sessions(sync_engine) as outer:
        with outer() as session:  # closed before any test runs
            session.add(Adopter(name=f"staff {hash_password('correct horse')}", email="staff@shelter.example"))
            session.add_all(Animal(name=name, species="cat") for name in SHARED_ANIMALS)
            session.commit()
        yield outer


@pytest.fixture
def layer(shared) -> Iterator[sessionmaker[Session]]:
    with nested_sessions(shared) as factory:
        yield factory


@pytest.fixture
def layered_client(layer) -> Iterator[TestClient]:
    with override_dependency(pets, get_db, sync_session_dependency(layer)), TestClient(pets) as client:
        yield client


def test_the_shared_data_was_written_once_for_the_whole_module(layer):
    assert PASSWORDS_HASHED == ["correct horse"]
    with layer() as session:
        assert sorted(session.scalars(select(Animal.name))) == SHARED_ANIMALS


@pytest.mark.parametrize("run", range(3))
def test_each_test_commits_and_changes_shared_rows_and_the_next_finds_them_intact(run, layered_client, layer):
    assert layered_client.get("/pets").json() == SHARED_ANIMALS  # nothing of the previous run survived
    assert layered_client.post("/pets", json={"name": "Rex", "species": "dog"}).status_code == 201
    with layer() as session:
        session.execute(delete(Animal).where(Animal.name == "Pepper"))
        session.commit()
    assert layered_client.get("/pets").json() == ["Biscuit", "Rex", "Willow"]


@pytest.mark.parametrize("run", range(2))
def test_the_retry_route_rolls_back_inside_the_layer_without_touching_the_shared_rows(run, layered_client):
    taken = layered_client.post("/pets/arrivals", json={"species": "cat", "candidates": ["Biscuit", "Pepper", "Zola"]})
    assert (taken.status_code, taken.json()["name"]) == (201, "Zola")  # two IntegrityErrors, two rollbacks first
    assert layered_client.get("/pets").json() == sorted([*SHARED_ANIMALS, "Zola"])


def test_other_connections_see_none_of_it(sync_engine, layer):
    assert committed_rows(sync_engine) == 0


@pytest.mark.negative_control
def test_a_session_not_joined_to_the_layer_leaks_on_postgresql_and_is_locked_out_on_sqlite(database_url, sync_engine, layer):
    connect_args = {"timeout": 0} if BACKEND == "sqlite" else {}
    plain_engine = create_engine(sync_url(database_url), connect_args=connect_args)
    fix_sqlite_savepoints(plain_engine)
    try:
        with Session(plain_engine) as plain:
            plain.add(Animal(name="Leaked", species="dog"))
            if BACKEND == "sqlite":
                with pytest.raises(OperationalError, match="database is locked"):
                    plain.commit()
                return
            plain.commit()
        assert committed_rows(sync_engine) == 1  # a real commit: later tests and runs see it
        with layer() as session:
            assert "Leaked" in session.scalars(select(Animal.name)).all()
    finally:
        if BACKEND != "sqlite":
            with plain_engine.begin() as conn:
                conn.execute(delete(Animal).where(Animal.name == "Leaked"))
        plain_engine.dispose()
    assert committed_rows(sync_engine) == 0
