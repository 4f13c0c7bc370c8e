"""The recipes of the helper's docstring that need no process of their own, on the active database.

* Sync tests on an async app: Starlette's ``TestClient`` drives the (async) sample app, the
  helper is opened on the client's own event loop (``isolated_async_sessions_on(client.portal,
  ...)``) and the test writes its data through a *sync* session (``run_sync_session``). Nothing leaks.
* One database per worker, with or without pytest-xdist: ``worker_database_url`` reads
  ``PYTEST_XDIST_WORKER`` (``main`` without it), ``create_worker_database`` creates the database
  and its schema. The subprocess recipes (xdist, TOML spellings, coverage ``omit``) are in
  ``test_isolation_recipes_projects.py``.
"""

import os
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import get_session
from app.main import create_app
from app.models import Animal, Base
from course.database import backend, selected_url
from tests import isolation as iso  # a namespace import: the project's own names cannot clash

BACKEND = backend(selected_url())


@pytest.fixture
def loop_free_engine(database_url, engine):
    """An engine any event loop may use: NullPool opens a connection per checkout, on the caller's loop.

    ``engine`` is requested for its side effect only: it creates the schema once per run, and this
    test may be the run's first (random order, or a fresh clone whose database file is new).
    """
    engine = create_async_engine(database_url, poolclass=NullPool)
    iso.fix_sqlite_savepoints(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON"))
    return engine  # NullPool keeps nothing open: no dispose needed


@pytest.fixture
def sync_client(loop_free_engine):
    """The sync recipe: TestClient's loop runs the app, the helper's connection and the test data.

    The app is a fresh instance of the sample app (``create_app()``: same routes, same
    ``get_session``), so its lifespan is its own, apart from the suite's once-per-process one.
    """
    app = create_app()
    with TestClient(app) as client:
        with iso.isolated_async_sessions_on(client.portal, loop_free_engine) as factory:
            with iso.override_dependency(app, get_session, iso.session_dependency(factory)):
                client.factory = factory  # for the tests' own sync sessions
                yield client


def add_animal(session, name):
    session.add(Animal(name=name, species="dog"))
    session.flush()
    return session.scalar(select(func.count()).select_from(Animal))


@pytest.mark.parametrize("run", range(2))
def test_a_sync_test_writes_through_a_sync_session_and_the_async_app_sees_it(run, sync_client):
    assert iso.run_sync_session(sync_client.portal, sync_client.factory, add_animal, "Arranged") == 1
    listed = sync_client.get("/animals").json()
    assert [a["name"] for a in listed] == ["Arranged"]  # the request saw it: one connection
    created = sync_client.post("/animals", json={"name": "Posted", "species": "cat"})
    assert created.status_code == 201  # and 409 in the second run if the first had leaked
    count = iso.run_sync_session(sync_client.portal, sync_client.factory, lambda s: s.scalar(select(func.count()).select_from(Animal)))
    assert count == 2


async def test_after_the_sync_tests_nothing_was_committed(engine):
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM animals")) == 0


@pytest.mark.negative_control
def test_the_sync_recipe_guard_fails_a_request_the_override_misses(loop_free_engine):
    own_sessions = async_sessionmaker(loop_free_engine)  # the demo app's "production" factory
    demo = FastAPI()

    async def get_db():
        async with own_sessions() as session:
            yield session

    @demo.post("/animals")
    async def create(session: Annotated[AsyncSession, Depends(get_db)]) -> int:
        session.add(Animal(name="Ghost", species="cat"))
        await session.commit()
        return 1

    async def lookalike():  # not the function the route depends on
        yield None

    with TestClient(demo) as client:
        with iso.isolated_async_sessions_on(client.portal, loop_free_engine) as factory:
            with pytest.raises(iso.IsolationBreach, match=r"Override the dependency the routes use: \S+get_db"):
                with iso.override_dependency(demo, lookalike, iso.session_dependency(factory)):
                    client.post("/animals")


def test_the_worker_database_url_follows_pytest_xdist_or_says_main(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert iso.worker_database_url("postgresql+asyncpg://u@h/app").database == "app_main"
    assert iso.worker_database_url("sqlite:///data/app.sqlite").database == "data/app_main.sqlite"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert iso.worker_database_url("postgresql+asyncpg://u@h/app").database == "app_gw3"
    assert iso.worker_database_url("sqlite+aiosqlite:///:memory:").database == ":memory:"  # one per process anyway


def test_create_worker_database_makes_the_database_and_its_schema_afresh(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", f"recipe{os.getpid()}")
    base = (f"sqlite+aiosqlite:///{tmp_path / 'recipe.sqlite'}" if BACKEND == "sqlite" else database_url)
    made = []

    def create_schema(connection):
        made.append(connection.dialect.name)
        Base.metadata.create_all(connection)
        connection.execute(Animal.__table__.insert().values(name="Left over", species="cat"))

    url = iso.create_worker_database(base, create_schema)
    url = iso.create_worker_database(base, create_schema)  # again: dropped and made afresh, no left-over
    assert url.database.endswith(f"_recipe{os.getpid()}") or url.database.endswith(f"_recipe{os.getpid()}.sqlite")
    assert made == [BACKEND, BACKEND]
    sync_url = url.set(drivername="sqlite") if BACKEND == "sqlite" else None
    if sync_url is not None:
        from sqlalchemy import create_engine

        engine = create_engine(sync_url)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= {"animals", "adopters", "adoptions"}
            assert conn.scalar(text("SELECT count(*) FROM animals")) == 1  # one run's row, not two
        engine.dispose()
    else:
        import asyncio

        async def check():
            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    names = await conn.run_sync(lambda c: inspect(c).get_table_names())
                    assert set(names) >= {"animals", "adopters", "adoptions"}
                    assert await conn.scalar(text("SELECT count(*) FROM animals")) == 1
            finally:
                await engine.dispose()
            admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
            try:
                async with admin.connect() as conn:
                    quoted = conn.dialect.identifier_preparer.quote_identifier(url.database)
                    await conn.exec_driver_sql(f"DROP DATABASE {quoted} WITH (FORCE)")
            finally:
                await admin.dispose()

        await_result = asyncio.run(check())
        assert await_result is None
