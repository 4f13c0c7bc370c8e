"""Fixtures for the reference suite: one test database per process, rollback isolation per test.

The database comes from ``DATABASE_URL`` (see ``course.database``): unset means SQLite.
Each process (each pytest-xdist worker) gets its own database ``<name>_test_<worker>``; the
schema is recreated once per run; every test then runs inside a rolled-back transaction.
"""

import asyncio
import os
import sys

import pytest

from course.database import (
    DatabaseUnavailable,
    describe,
    lost_connection,
    lost_connection_message,
    prepare,
    remember_selection,
    selected_url,
    test_database_url,
)

# The app reads its settings at import time: point its own engine at this process's test
# database before anything imports `app`, so even a test that bypasses the override
# (the negative controls) can never write to the dev database.
remember_selection()  # xdist workers inherit it, and derive shelter_test_gwN from the user's choice
TEST_DATABASE_URL = test_database_url()
os.environ["DATABASE_URL"] = TEST_DATABASE_URL

import respx  # noqa: E402
from asgi_lifespan import LifespanManager  # noqa: E402
from httpx import ASGITransport, AsyncClient, MockTransport  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from app.config import get_settings  # noqa: E402
from app.db import get_session  # noqa: E402
from app.main import app as shelter_app  # noqa: E402
from app.models import Base  # noqa: E402
from app.services.notifications import get_notifier  # noqa: E402
from tests.fakes import RecordingNotifier  # noqa: E402
from tests.isolation import (  # noqa: E402
    fix_sqlite_savepoints,
    isolated_async_sessions,
    override_dependency,
    session_dependency,
)


def pytest_sessionstart(session):
    """Stop at once, with instructions, when the selected database is not there.

    The message names the DATABASE_URL the user set (not this run's derived ``..._test_master``)
    and appears once: pytest.exit's own reason is printed twice, so it stays one short line.
    """
    try:
        asyncio.run(prepare(TEST_DATABASE_URL, user_url=selected_url()))
    except DatabaseUnavailable as exc:
        print(f"\n{exc}\n", file=sys.stderr)
        pytest.exit("the run stopped before its first test: the database is not usable (see above)", returncode=3)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A server that goes away mid-run stops the run with one message, not one error per test."""
    report = yield
    if call.excinfo is not None and lost_connection(call.excinfo.value, TEST_DATABASE_URL):
        item.session.shouldstop = lost_connection_message(TEST_DATABASE_URL)
    return report


#: Modules that cost collection the most (nbformat compiles a grammar at import): only the tests
#: that use them import them, when they run. ``test_startup.py`` checks the list stays empty.
IMPORTED_WHILE_COLLECTING = pytest.StashKey[list[str]]()
SLOW_IMPORTS = ("nbformat", "jupytext", "nbclient", "jsonschema")


def pytest_collection_finish(session):
    session.config.stash[IMPORTED_WHILE_COLLECTING] = [name for name in SLOW_IMPORTS if name in sys.modules]


def pytest_report_header(config):
    return f"database: {describe(TEST_DATABASE_URL)}"


@pytest.fixture(scope="session")
def database_url() -> str:
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
async def engine(database_url):
    """The test engine, with a fresh schema, shared by the whole run (one event loop)."""
    engine = create_async_engine(database_url)
    fix_sqlite_savepoints(engine)
    if engine.dialect.name == "sqlite":  # as the app does: SQLite enforces foreign keys only when asked
        event.listen(engine.sync_engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON"))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine):
    """Factory of sessions joined to this test's never-committed transaction."""
    async with isolated_async_sessions(engine) as factory:
        yield factory


@pytest.fixture
async def session(sessions):
    """A session for the test's own reads and writes (it sees what requests committed)."""
    async with sessions() as session:
        yield session


@pytest.fixture
def notifier():
    fake = RecordingNotifier()
    with override_dependency(shelter_app, get_notifier, lambda: fake):
        yield fake


#: The payment provider as the app sees it in tests: every request must match a route a test
#: added through the ``payments`` fixture (an unexpected call fails with respx's "not mocked").
PAYMENTS = respx.Router(base_url=get_settings().payment_gateway_url, assert_all_called=False)


@pytest.fixture
def payments():
    """The payment provider, mocked at the HTTP transport: add routes; removed after the test."""
    try:
        yield PAYMENTS
    finally:
        PAYMENTS.clear()
        PAYMENTS.reset()


@pytest.fixture(scope="session")
async def started_client():
    """An HTTP client for the app, its lifespan entered once per process.

    The app's outgoing HTTP client (made by the lifespan) is swapped for one whose transport is
    the ``PAYMENTS`` router: no patching of httpx per test, nothing else in the process affected.
    A test that needs a lifespan of its own (a fresh ``app.state``) enters one itself.
    """
    async with LifespanManager(shelter_app) as started:
        real = shelter_app.state.http_client
        shelter_app.state.http_client = AsyncClient(
            transport=MockTransport(PAYMENTS.handler), timeout=get_settings().payment_timeout_seconds
        )
        await real.aclose()
        STARTED_STATE.update(http_client=shelter_app.state.http_client, scheduler=shelter_app.state.scheduler)
        transport = ASGITransport(app=started.app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
        restore_started_state()  # a test's own lifespan may have removed them: the exit deletes them


#: What the once-per-process lifespan put on ``app.state``. A test that enters the app's lifespan
#: itself ends it by deleting those attributes; ``client`` puts them back (two assignments).
STARTED_STATE: dict = {}


def restore_started_state() -> None:
    state = shelter_app.state
    if getattr(state, "http_client", None) is not STARTED_STATE["http_client"]:
        state.http_client, state.scheduler = STARTED_STATE["http_client"], STARTED_STATE["scheduler"]


@pytest.fixture
def client(started_client, sessions, notifier):
    """An HTTP client for the app: sessions isolated (and guarded), mail faked, payments mocked.

    The recommended shape: one async fixture per test (``sessions``), the lifespan and the
    client once per process, the override a dictionary entry (``override_dependency``, whose
    guard fails any request served by the app's own engine, naming the dependency). Its CPU
    per test against no isolation at all: ``python -m bench.floor`` (bench/results/floor.md).
    """
    restore_started_state()
    with override_dependency(shelter_app, get_session, session_dependency(sessions)):
        yield started_client
