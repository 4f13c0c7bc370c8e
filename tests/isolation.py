"""Rollback isolation for tests of SQLAlchemy 2.x apps: copy this file into your project.

Every test runs inside one outer transaction that is never committed. Sessions handed to
the app are joined to it with ``join_transaction_mode="create_savepoint"``: the app's
``commit()`` releases a SAVEPOINT and its ``rollback()`` rolls back to one, so app code
that commits, or retries after an ``IntegrityError``, behaves as in production while
nothing reaches the database for good. At exit the outer transaction is rolled back.

It imports nothing from your app. Usage in a ``conftest.py`` (async app)::

    from tests.isolation import isolated_async_sessions, override_dependency, session_dependency

    @pytest.fixture
    async def sessions(engine):                       # engine: your test AsyncEngine
        async with isolated_async_sessions(engine) as factory:
            yield factory                             # factory() -> AsyncSession

    @pytest.fixture
    async def client(sessions):
        with override_dependency(app, get_session, session_dependency(sessions)):
            async with LifespanManager(app) as started:
                transport = ASGITransport(app=started.app)
                async with AsyncClient(transport=transport, base_url="http://test") as c:
                    yield c

A sync app uses ``isolated_sessions`` and ``sync_session_dependency`` the same way.

Limits (see the course, notebook 05): all sessions of one test share one connection, so
requests inside a test must not run concurrently; fixtures that write must be
function-scoped; sequences (PostgreSQL ids) are not rolled back.
"""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "fix_sqlite_savepoints",
    "isolated_sessions",
    "isolated_async_sessions",
    "override_dependency",
    "session_dependency",
    "sync_session_dependency",
]


def _sqlite_autocommit_driver(dbapi_connection, _connection_record) -> None:
    dbapi_connection.isolation_level = None  # the driver stops issuing BEGIN/COMMIT itself


def _sqlite_emit_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN")  # ... so SQLAlchemy does it, and SAVEPOINTs nest inside


def fix_sqlite_savepoints(engine: Engine | AsyncEngine) -> None:
    """Make SAVEPOINT work with the stdlib SQLite driver (pysqlite, aiosqlite).

    Without it the driver never emits BEGIN, the first SAVEPOINT opens the transaction and
    its RELEASE commits it: rows leak. Idempotent; does nothing for other databases.
    Install it before the engine's first connection (pooled connections keep their mode).
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    if sync_engine.dialect.name != "sqlite" or event.contains(sync_engine, "begin", _sqlite_emit_begin):
        return
    event.listen(sync_engine, "connect", _sqlite_autocommit_driver)
    event.listen(sync_engine, "begin", _sqlite_emit_begin)


@contextmanager
def isolated_sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sync: a session factory whose sessions all join one never-committed transaction."""
    fix_sqlite_savepoints(engine)
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        finally:
            outer.rollback()


@asynccontextmanager
async def isolated_async_sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Async: a session factory whose sessions all join one never-committed transaction."""
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:
        outer = await connection.begin()
        try:
            yield async_sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        finally:
            await outer.rollback()


def session_dependency(factory: async_sessionmaker[AsyncSession]) -> Callable[[], AsyncIterator[AsyncSession]]:
    """A replacement for the app's session dependency: a fresh joined session per request.

    It takes no parameters on purpose: FastAPI would turn them into request parameters.
    """

    async def get_test_session() -> AsyncIterator[AsyncSession]:
        async with factory() as session:
            yield session

    return get_test_session


def sync_session_dependency(factory: sessionmaker[Session]) -> Callable[[], Iterator[Session]]:
    """Sync twin of :func:`session_dependency`."""

    def get_test_session() -> Iterator[Session]:
        with factory() as session:
            yield session

    return get_test_session


@contextmanager
def override_dependency(app: Any, dependency: Callable, replacement: Callable) -> Iterator[None]:
    """Install ``app.dependency_overrides[dependency] = replacement``; restore at exit.

    The key must be the very callable the routes pass to ``Depends`` (a wrapper or a
    re-import under another name is silently ignored), and the dict is global to the app,
    so it is always restored, even when the test fails.
    """
    overrides = app.dependency_overrides
    missing = object()
    previous = overrides.get(dependency, missing)
    overrides[dependency] = replacement
    try:
        yield
    finally:
        if previous is missing:
            overrides.pop(dependency, None)
        else:
            overrides[dependency] = previous
