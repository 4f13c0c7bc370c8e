"""The sync half of tests/isolation.py (isolated_sessions, sync_session_dependency), proven on
both backends with a tiny sync FastAPI app and Starlette's TestClient.

The sync engine reads and writes the same test database as the async suite, through the
sync twin of its driver: pysqlite for aiosqlite, psycopg 3 for asyncpg.
"""

import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Annotated

import pytest
import starlette.testclient
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, delete, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning

from app.models import Animal
from app.schemas import AnimalIn, ArrivalIn
from course.database import backend, selected_url
from tests.isolation import fix_sqlite_savepoints, isolated_sessions, override_dependency, sync_session_dependency

BACKEND = backend(selected_url())
SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}


def sync_url(async_url: str) -> str:
    url = make_url(async_url)
    return url.set(drivername=SYNC_DRIVERS[url.drivername]).render_as_string(hide_password=False)


# --- a tiny sync app with its own session dependency ----------------------------------------------

production_sessions = sessionmaker(expire_on_commit=False)  # bound to a real engine in production


def get_db() -> Iterator[Session]:
    with production_sessions() as session:
        yield session


Db = Annotated[Session, Depends(get_db)]
pets = FastAPI()


@pets.post("/pets", status_code=status.HTTP_201_CREATED)
def create_pet(body: AnimalIn, session: Db) -> dict:
    animal = Animal(name=body.name, species=body.species)
    session.add(animal)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"{body.name} exists")
    return {"id": animal.id, "name": animal.name}


@pets.post("/pets/arrivals", status_code=status.HTTP_201_CREATED)
def register_arrival(body: ArrivalIn, session: Db) -> dict:
    """Retry the naive way: rollback() after each IntegrityError."""
    for name in body.candidates:
        animal = Animal(name=name, species=body.species)
        session.add(animal)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            continue
        session.commit()
        return {"id": animal.id, "name": animal.name}
    raise HTTPException(status.HTTP_409_CONFLICT, "all names taken")


@pets.get("/pets")
def list_pets(session: Db) -> list[str]:
    return list(session.scalars(select(Animal.name).order_by(Animal.name)))


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sync_engine(engine, database_url) -> Iterator[Engine]:
    """A sync engine on this process's test database (``engine``: the schema exists by then)."""
    sync = create_engine(sync_url(database_url))
    fix_sqlite_savepoints(sync)
    yield sync
    sync.dispose()


def animal_names(engine: Engine) -> list[str]:
    """What a brand-new connection sees: only rows that were really committed."""
    with engine.connect() as conn:
        return sorted(conn.scalars(select(Animal.name)))


@pytest.fixture(autouse=True)
def leaves_no_rows(sync_engine):
    yield
    assert animal_names(sync_engine) == [], "a test of this module left rows behind"


@pytest.fixture
def sync_sessions(sync_engine):
    with isolated_sessions(sync_engine) as factory:
        yield factory


@pytest.fixture
def pets_client(sync_sessions):
    with override_dependency(pets, get_db, sync_session_dependency(sync_sessions)):
        with TestClient(pets) as client:
            yield client


# --- tests ---------------------------------------------------------------------------------------


def test_sync_url_swaps_each_async_driver_for_its_sync_twin():
    assert sync_url("sqlite+aiosqlite:////x/shelter_test_gw0.sqlite") == "sqlite:////x/shelter_test_gw0.sqlite"
    assert (
        sync_url("postgresql+asyncpg://postgres:pw@127.0.0.1:54410/shelter_test_master")
        == "postgresql+psycopg://postgres:pw@127.0.0.1:54410/shelter_test_master"
    )


def test_sync_engine_uses_the_sync_driver_of_the_selected_backend(sync_engine, database_url):
    assert sync_engine.dialect.driver == {"sqlite": "pysqlite", "postgresql": "psycopg"}[BACKEND]
    assert sync_engine.url.database == make_url(database_url).database


@pytest.mark.parametrize("run", range(3))
def test_committing_route_writes_and_the_next_request_sees_it(run, pets_client):
    created = pets_client.post("/pets", json={"name": "Rex", "species": "dog"})
    duplicate = pets_client.post("/pets", json={"name": "Rex", "species": "cat"})

    assert created.status_code == 201  # a leak from an earlier run would make this 409
    assert duplicate.status_code == 409
    assert pets_client.get("/pets").json() == ["Rex"]


@pytest.mark.parametrize("run", range(3))
def test_retry_route_with_rollback_keeps_earlier_commits_under_create_savepoint(run, pets_client, sync_sessions):
    names = [pets_client.post("/pets/arrivals", json={"species": "dog", "candidates": ["Max", "Cody"]}) for _ in range(3)]

    assert [(r.status_code, r.json().get("name")) for r in names] == [(201, "Max"), (201, "Cody"), (409, None)]
    with sync_sessions() as session:
        assert sorted(session.scalars(select(Animal.name))) == ["Cody", "Max"]


def test_isolated_sessions_commit_nothing_and_leave_nothing(sync_engine):
    with isolated_sessions(sync_engine) as factory:
        with factory() as session:
            session.add(Animal(name="Ghost", species="cat"))
            session.commit()
        with factory() as other:
            assert other.scalar(select(func.count()).select_from(Animal)) == 1  # visible inside the test
        assert animal_names(sync_engine) == []  # not to other connections

    assert animal_names(sync_engine) == []


def test_sync_session_dependency_hands_out_a_new_session_per_request_on_one_connection(sync_sessions):
    handed_out = []
    dependency = sync_session_dependency(sync_sessions)

    def recording():
        for session in dependency():
            handed_out.append(session)
            yield session

    with override_dependency(pets, get_db, recording), TestClient(pets) as client:
        client.post("/pets", json={"name": "Luna", "species": "cat"})
        assert client.get("/pets").json() == ["Luna"]

    assert len(handed_out) == 2 and handed_out[0] is not handed_out[1]
    assert handed_out[0].bind is handed_out[1].bind
    assert get_db not in pets.dependency_overrides


def test_test_client_runs_on_httpx2_without_a_deprecation_warning(pets_client):
    assert starlette.testclient.httpx.__name__ == "httpx2"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert pets_client.get("/pets").status_code == 200
        with TestClient(pets) as another:
            assert another.get("/pets").status_code == 200
    assert [w for w in caught if issubclass(w.category, StarletteDeprecationWarning)] == []


@pytest.mark.subprocess
def test_importing_the_test_client_emits_no_starlette_deprecation_warning():
    """The httpx warning is raised once, at import: check a fresh interpreter."""
    code = (
        "import warnings\n"
        "from starlette.exceptions import StarletteDeprecationWarning\n"
        "warnings.simplefilter('error', StarletteDeprecationWarning)\n"
        "import starlette.testclient\n"
        "print(starlette.testclient.httpx.__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "httpx2"), result.stderr


@pytest.mark.negative_control
@pytest.mark.parametrize(
    "expected_names",
    [pytest.param(["Leaky"], id="sqlite-leaks") if BACKEND == "sqlite" else pytest.param([], id="postgresql-does-not-leak")],
)
def test_create_savepoint_without_the_sqlite_driver_fix(sync_engine, database_url, expected_names):
    """pysqlite never sends BEGIN: the SAVEPOINT opens the transaction, RELEASE commits it."""
    unfixed = create_engine(sync_url(database_url))  # no fix_sqlite_savepoints
    try:
        with unfixed.connect() as conn:
            outer = conn.begin()
            with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
                session.add(Animal(name="Leaky", species="rabbit"))
                session.commit()
            outer.rollback()
        assert animal_names(sync_engine) == expected_names
    finally:
        unfixed.dispose()
        with sync_engine.begin() as conn:
            conn.execute(delete(Animal).where(Animal.name == "Leaky"))
