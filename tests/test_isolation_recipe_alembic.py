"""The helper docstring's Alembic recipe, run as a project of its own (a fresh pytest, subprocess).

The project builds its Alembic ``Config`` in code (no alembic.ini), writes a ``script_location``
with an ``env.py`` and two migrations (``pets``, then a unique index on its name), and its
conftest does exactly what the docstring says::

    iso.create_worker_database(url, lambda conn: upgrade(conn))
    # upgrade: config.attributes["connection"] = conn; command.upgrade(config, "head")

Its tests then run under rollback isolation on that schema: each writes the same unique name and
commits, the next finds the table empty, and after the run the worker's database holds no row and
is stamped at the head revision. Two ``env.py`` that use the shared connection pass, on the active
database (async URL: aiosqlite or asyncpg):

* ``generic-shared``: the cookbook's "Sharing a Connection across one or more programmatic
  migration commands": ``context.configure(connection=config.attributes["connection"], ...)``.
* ``async-shared``: ``alembic init -t async``'s env.py with the cookbook's asyncio variant: the
  shared connection goes straight to ``do_run_migrations`` (no ``asyncio.run``, no ``run_sync``).
* ``generic-shared-sync-url``: the first with a sync URL (pysqlite, psycopg) given to
  ``create_worker_database``; the project's tests keep their async engine.

What ``upgrade`` receives is logged and checked: a sync ``sqlalchemy.engine.Connection`` (async
URLs too: ``create_worker_database`` runs it through ``AsyncConnection.run_sync``), not yet in a
transaction. Negative controls, each failing the way the test states:

* ``async-template``: the async env.py as ``alembic init -t async`` writes it ignores the shared
  connection and calls ``asyncio.run`` inside the running loop: ``RuntimeError``; no schema.
* ``async-run-sync``: an env.py that treats the shared connection as an ``AsyncConnection``
  (``connection.run_sync(...)``): ``AttributeError``, as it is a sync ``Connection``.
* ``own-engine``: an env.py that ignores the shared connection and opens its own engine on
  ``sqlalchemy.url`` (what an alembic.ini names: the app's database, not the worker's): the
  schema lands in that database, the worker's stays empty and the tests fail on the missing table.
"""

import asyncio
import importlib.util
import os
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.isolation import worker_database_url
from tests.test_isolation_recipes_projects import BACKEND, HELPER, INI_OPTIONS, drop_databases, recipe_url, run_pytest

pytestmark = pytest.mark.subprocess

MODELS = '''
from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()  # what the migrations make: env.py's target_metadata
pets = Table("pets", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), nullable=False, index=True, unique=True))
'''

REVISION_1 = '''
"""pets"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("pets", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50), nullable=False))


def downgrade():
    op.drop_table("pets")
'''

REVISION_2 = '''
"""a pet's name is unique"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_pets_name", "pets", ["name"], unique=True)


def downgrade():
    op.drop_index("ix_pets_name", table_name="pets")
'''

# The cookbook's env.py: the connection handed over in config.attributes, else (the command line)
# an engine of its own.
GENERIC_SHARED = '''
from alembic import context
from sqlalchemy import engine_from_config, pool

from models import metadata

config = context.config


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic upgrade head` from a shell
        engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool)
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=metadata)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
'''

# Ignores the shared connection: opens its own engine on sqlalchemy.url.
OWN_ENGINE = '''
from alembic import context
from sqlalchemy import engine_from_config, pool

from models import metadata

config = context.config
engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
'''

TEMPLATE_RUN_ONLINE = '''def run_migrations_online() -> None:
    """Run migrations in 'online' mode."""

    asyncio.run(run_async_migrations())
'''

# The cookbook's "Programmatic API use (connection sharing) With Asyncio".
COOKBOOK_RUN_ONLINE = '''def run_migrations_online() -> None:
    """Run migrations in 'online' mode."""

    connectable = config.attributes.get("connection", None)
    if connectable is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connectable)
'''

# Takes the shared connection for an AsyncConnection.
RUN_SYNC_RUN_ONLINE = '''def run_migrations_online() -> None:
    """Run migrations in 'online' mode."""

    connectable = config.attributes.get("connection", None)
    if connectable is None:
        asyncio.run(run_async_migrations())
    else:
        connectable.run_sync(do_run_migrations)
'''

CONFTEST = '''
import json
import os
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from tests import isolation as iso

ROOT = Path(__file__).resolve().parent.parent
config = Config()  # no alembic.ini: built in code
config.set_main_option("script_location", str(ROOT / "migrations"))
# What an alembic.ini names: the app's database (not the worker's); only an env.py that opens its own engine reads it.
config.set_main_option("sqlalchemy.url", os.environ["RECIPE_URL"].replace("%", "%%"))


def upgrade(conn):
    with open(os.environ["RECIPE_LOG"], "a") as log:
        log.write(json.dumps({"type": f"{type(conn).__module__}.{type(conn).__qualname__}",
                              "in_transaction": conn.in_transaction(), "has_run_sync": hasattr(conn, "run_sync")}) + "\\n")
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def database_url():  # sync: create_worker_database drives async URLs on a private loop
    url = iso.create_worker_database(os.environ["RECIPE_URL"], lambda conn: upgrade(conn))
    return url.set(drivername=os.environ.get("RECIPE_ASYNC_DRIVER", url.drivername))  # the tests' engine is async


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(database_url):
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine):
    async with iso.isolated_async_sessions(engine) as factory:
        yield factory
'''

TESTS = '''
import pytest
from sqlalchemy import func, insert, select

from models import pets


@pytest.mark.parametrize("n", range(3))
async def test_each_test_finds_the_table_empty_and_writes_a_unique_name(n, sessions):
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(pets)) == 0  # the previous test's row is gone
        await session.execute(insert(pets).values(name="Rex"))  # unique (revision 0002): a leak would collide
        await session.commit()
    async with sessions() as session:
        assert await session.scalar(select(pets.c.name)) == "Rex"  # committed, for the rest of this test
'''


def async_template() -> str:
    return (Path(importlib.util.find_spec("alembic").origin).parent / "templates" / "async" / "env.py").read_text()


def env_py(variant: str) -> str:
    if variant == "generic-shared":
        return GENERIC_SHARED
    if variant == "own-engine":
        return OWN_ENGINE
    template = async_template().replace("target_metadata = None", "from models import metadata as target_metadata")
    assert TEMPLATE_RUN_ONLINE in template, "alembic's async template changed: update TEMPLATE_RUN_ONLINE"
    replacement = {"async-template": TEMPLATE_RUN_ONLINE, "async-shared": COOKBOOK_RUN_ONLINE, "async-run-sync": RUN_SYNC_RUN_ONLINE}
    return template.replace(TEMPLATE_RUN_ONLINE, replacement[variant])


def write_project(root: Path, variant: str) -> None:
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "isolation.py").write_bytes(HELPER.read_bytes())
    (root / "tests" / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (root / "tests" / "test_pets.py").write_text(textwrap.dedent(TESTS))
    (root / "models.py").write_text(MODELS)
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(env_py(variant))
    (root / "migrations" / "versions" / "0001_pets.py").write_text(REVISION_1)
    (root / "migrations" / "versions" / "0002_unique_name.py").write_text(REVISION_2)
    (root / "pyproject.toml").write_text(INI_OPTIONS)


def received(root: Path) -> list[str]:
    log = root / "created.log"
    return log.read_text().splitlines() if log.exists() else []


def database_state(url: str) -> dict:
    """Tables, rows of pets, alembic's revision and the pets indexes of the database at ``url``."""

    def read(conn):
        inspector = inspect(conn)
        tables = set(inspector.get_table_names())
        state = {"tables": tables}
        if "pets" in tables:
            state["rows"] = conn.scalar(text("SELECT count(*) FROM pets"))
            state["unique_indexes"] = sorted(i["name"] for i in inspector.get_indexes("pets") if i["unique"])
        if "alembic_version" in tables:
            state["revision"] = conn.scalar(text("SELECT version_num FROM alembic_version"))
        return state

    async def run():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def create_database(url: str) -> None:
    """PostgreSQL: the app's database an alembic.ini would name (SQLite makes its file itself)."""
    if BACKEND == "sqlite":
        return

    async def create():
        admin = create_async_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                quoted = conn.dialect.identifier_preparer.quote_identifier(make_url(url).database)
                await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
                await conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
        finally:
            await admin.dispose()

    asyncio.run(create())


@pytest.fixture(autouse=True)
def _alembic_installed():
    assert importlib.util.find_spec("alembic"), "alembic is not installed: it is pinned in requirements-ci.txt (run scripts/bootstrap --ci)"


def worker_url(url: str) -> str:
    """The database create_worker_database makes for ``url`` in a run without pytest-xdist."""
    return worker_database_url(url, "main").render_as_string(hide_password=False)


@pytest.mark.parametrize(
    "variant, sync_url",
    [
        pytest.param("generic-shared", False, id="generic-shared"),
        pytest.param("async-shared", False, id="async-shared"),
        pytest.param("generic-shared", True, id="generic-shared-sync-url"),  # pysqlite, psycopg: no run_sync involved
    ],
)
def test_the_alembic_recipe_builds_the_schema_the_isolated_tests_run_on(tmp_path, database_url, monkeypatch, variant, sync_url):
    write_project(tmp_path, variant)
    url = recipe_url(tmp_path, database_url, f"alembic_{variant.replace('-', '_')}{'_sync' if sync_url else ''}")
    given = url  # what the project's conftest hands create_worker_database
    if sync_url:  # the sync URL; the project's tests keep their async engine
        monkeypatch.setenv("RECIPE_ASYNC_DRIVER", make_url(url).drivername)
        given = make_url(url).set(drivername="sqlite" if BACKEND == "sqlite" else "postgresql+psycopg").render_as_string(hide_password=False)
    done = run_pytest(tmp_path, given, "-p", "no:xdist")
    try:
        assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout + done.stderr
        # What the docstring's lambda receives, async URL included: a sync Connection, not yet in a transaction.
        assert received(tmp_path) == ['{"type": "sqlalchemy.engine.base.Connection", "in_transaction": false, "has_run_sync": false}']
        state = database_state(worker_url(url))
        assert state == {"tables": {"pets", "alembic_version"}, "rows": 0, "revision": "0002", "unique_indexes": ["ix_pets_name"]}
    finally:
        drop_databases(url, [make_url(worker_url(url)).database])


@pytest.mark.negative_control
@pytest.mark.parametrize(
    "variant, error",
    [
        pytest.param("async-template", "RuntimeError: asyncio.run() cannot be called from a running event loop", id="async-template"),
        pytest.param("async-run-sync", "AttributeError: 'Connection' object has no attribute 'run_sync'", id="async-run-sync"),
    ],
)
def test_an_env_py_that_does_not_run_on_the_sync_shared_connection_stops_the_session(tmp_path, database_url, variant, error):
    write_project(tmp_path, variant)
    url = recipe_url(tmp_path, database_url, f"alembic_{variant.replace('-', '_')}")
    done = run_pytest(tmp_path, url, "-p", "no:xdist")
    try:
        assert done.returncode != 0 and "3 error" in done.stdout, done.stdout + done.stderr
        assert error in done.stdout, done.stdout
        assert database_state(worker_url(url))["tables"] == set()  # the worker's database: no schema at all
    finally:
        drop_databases(url, [make_url(worker_url(url)).database])


@pytest.mark.negative_control
def test_an_env_py_with_its_own_engine_puts_the_schema_in_the_configured_database_not_the_workers(tmp_path, database_url):
    write_project(tmp_path, "own-engine")
    url = recipe_url(tmp_path, database_url, "alembic_own_engine")
    create_database(url)  # the app's database, as an alembic.ini names it
    done = run_pytest(tmp_path, url, "-p", "no:xdist")
    try:
        assert done.returncode != 0 and "3 failed" in done.stdout, done.stdout + done.stderr
        missing = "no such table: pets" if BACKEND == "sqlite" else 'relation "pets" does not exist'
        assert missing in done.stdout, done.stdout
        assert database_state(worker_url(url))["tables"] == set()  # the worker's database stayed empty
        assert database_state(url) == {"tables": {"pets", "alembic_version"}, "rows": 0, "revision": "0002",
                                       "unique_indexes": ["ix_pets_name"]}  # the schema went here instead
    finally:
        drop_databases(url, [make_url(url).database, make_url(worker_url(url)).database])
