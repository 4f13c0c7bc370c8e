"""Rollback isolation for tests of SQLAlchemy 2.x apps (FastAPI or not): one file, copy it.

Every test runs inside one outer transaction that is never committed. Sessions handed to
the app are joined to it with ``join_transaction_mode="create_savepoint"``: the app's
``commit()`` releases a SAVEPOINT and its ``rollback()`` rolls back to one, so app code
that commits, or retries after an ``IntegrityError``, behaves as in production while
nothing reaches the database for good. At exit the outer transaction is rolled back.

It imports nothing but SQLAlchemy and the standard library. Each recipe below is a test in
the course's repository (``tests/test_isolation*.py``), on SQLite and PostgreSQL.

Usage in a ``conftest.py`` (async app; the recommended shape: ``python -m bench.floor`` in the
course measures its CPU per test against no isolation at all)::

    from tests import isolation as iso        # a namespace: no clash with names of your own

    @pytest.fixture(scope="session")
    def database_url():                       # one database per pytest-xdist worker, or "_main"
        return iso.create_worker_database(    # without xdist; made afresh once per process
            "postgresql+asyncpg://app@localhost/app_test", Base.metadata.create_all)

    @pytest.fixture(scope="session")
    async def engine(database_url):
        engine = create_async_engine(database_url)
        yield engine
        await engine.dispose()

    @pytest.fixture(scope="session")
    async def started_client():               # lifespan and client once per process
        async with LifespanManager(app) as started:
            transport = ASGITransport(app=started.app)
            async with AsyncClient(transport=transport, base_url="http://test") as c:
                yield c

    @pytest.fixture
    async def sessions(engine):               # the one async fixture per test
        async with iso.isolated_async_sessions(engine) as factory:
            yield factory                     # factory() -> AsyncSession

    @pytest.fixture
    def client(started_client, sessions):     # sync: a dictionary entry, restored after the test
        with iso.override_dependency(app, get_session, iso.session_dependency(sessions)):
            yield started_client

(A test that needs a fresh ``app.state`` enters a lifespan of its own, on ``create_app()``.)
With Alembic, the schema step is ``lambda conn: upgrade(conn)`` where ``upgrade`` sets
``config.attributes["connection"] = conn`` and calls ``alembic.command.upgrade(config, "head")``,
and ``env.py`` migrates on that connection when it is set: ``context.configure(connection=conn,
target_metadata=...)`` (Alembic's cookbook, "Sharing a Connection across one or more programmatic
migration commands"). ``conn`` is a sync ``Connection``, with an async URL too, so an async
``env.py`` (``alembic init -t async``) hands it straight to its ``do_run_migrations`` (the
cookbook's "Programmatic API use (connection sharing) With Asyncio"): as generated, that env.py
calls ``asyncio.run`` (``RuntimeError``: a loop is running); ``conn.run_sync(...)`` raises
``AttributeError``. An ``env.py`` that opens an engine of its own migrates the database its
``sqlalchemy.url`` names, not the worker's: the tests then find no tables.
``create_worker_database`` names the database after ``PYTEST_XDIST_WORKER`` (``worker_database_url``),
so it needs no ``worker_id`` fixture and runs the same with pytest-xdist absent; on PostgreSQL it
drops and creates under an advisory lock.

A loud failure when the override does not apply. ``override_dependency`` with a replacement made
here (``session_dependency`` & co.) refuses any session bound to an engine that begins a
transaction while it is installed: the request fails with ``IsolationBreach``, before the write,
naming the dependency to override (a look-alike key) or the factory to replace (a route or job
that opens the app's own sessions). Nothing to turn on; a test's own ``Session(bind=connection)``
is never refused.

Sync tests on an async app (Starlette's ``TestClient``). The async fixture above cannot serve a
sync test (``TypeError: 'async_generator' object is not callable``); open the helper on the
client's own event loop instead, and write test data through a sync ``Session`` on the same connection::

    @pytest.fixture
    def client():
        engine = create_async_engine(url, poolclass=NullPool)      # usable from any loop
        with TestClient(app) as client:
            with iso.isolated_async_sessions_on(client.portal, engine) as factory:
                with iso.override_dependency(app, get_session, iso.session_dependency(factory)):
                    client.factory = factory
                    yield client

    def test_list(client):
        iso.run_sync_session(client.portal, client.factory, lambda s: s.add(Pet(name="Rex")))
        assert client.get("/pets").json() == [...]

A sync app uses ``isolated_sessions`` and ``sync_session_dependency`` the same way, with
``with TestClient(app) as c``.

Session class and options. ``isolated_sessions(engine, class_=..., **session_options)``
(and the async twin) make sessions of your class with your ``sessionmaker`` options;
``expire_on_commit`` defaults to False, ``bind`` and ``join_transaction_mode`` are the
helper's own. SQLModel apps call ``session.exec()``, which SQLAlchemy's sessions lack
(``AttributeError: 'Session' object has no attribute 'exec'``)::

    isolated_sessions(engine, class_=sqlmodel.Session)
    isolated_async_sessions(engine, class_=sqlmodel.ext.asyncio.session.AsyncSession)

The app's dependency comes in three shapes; override the one your routes ``Depends`` on:

1. A session per request (``yield session``): ``session_dependency(factory)`` (sync:
   ``sync_session_dependency``). SQLModel's tutorial shares the test's own session with the
   request instead, ``override_dependency(app, get_session, lambda: session)``: works too.
2. It hands out the factory and routes open sessions themselves:
   ``sessionmaker_dependency(factory)``. (``session_dependency`` there gives
   ``TypeError: 'AsyncSession' object is not callable``.)
3. It commits after the request (``yield session`` then ``await session.commit()``, routes
   only flush): any override skips that commit, the session closes uncommitted and the
   route's rows are gone by the next request. Keep the app's dependency and replace the
   factory it calls, where it looks it up: ``monkeypatch.setattr("yourapp.db.SessionLocal",
   factory)``; or override it with a copy that commits the same way::

       async def committing_test_session():
           async with factory() as session:
               yield session
               await session.commit()

Shared data written once (layers). A fixture that writes is normally function-scoped: data
created per test costs per test (a hashed password, a logged-in user, a catalogue). Write it
once instead, in a wider fixture, and give each test a SAVEPOINT on top, rolled back after
it: the idea of Django's ``TestCase.setUpTestData``::

    @pytest_asyncio.fixture(scope="module", loop_scope="session")     # or scope="session"
    async def shared(engine):
        async with isolated_async_sessions(engine) as outer:
            async with outer() as session:            # closed before the tests run
                session.add(User(email="admin@example.com", password_hash=hash_password("pw")))
                await session.commit()                # into the outer transaction, not the database
            yield outer

    @pytest.fixture
    async def sessions(shared):                       # what `client` above overrides with
        async with nested_async_sessions(shared) as factory:
            yield factory

Each test sees the shared rows, may change and delete them and commit, and the next test
finds them as written; nothing reaches the database. Each pytest-xdist worker writes the
shared data once, on its own database. Layers stack (``nested_*_sessions`` of
a layer's factory: session-wide, then module-wide data). Sync: ``nested_sessions``. Rules:

- Every session that writes during the layer must come from its factory (or another factory
  on the same connection). A session on another connection (a plain ``Session(engine)``,
  the app's own engine because an override did not apply) cannot see the shared rows; on
  PostgreSQL its commit is real and every later test sees it; on SQLite it cannot write at
  all: the layer holds the database's only write lock (``database is locked``). So on
  SQLite nothing else may write while a layer is open, not even another test's isolation:
  keep such tests in other modules, or layer the whole session. On PostgreSQL, if such a
  session writes a row with the unique key of a shared row, it waits for the layer's
  transaction to end: in the same process, that is never (a hung test).
- Close the session that wrote the shared data before the tests run. A session left open
  holds a SAVEPOINT below the layer; ``nested_*_sessions`` refuses it with a message.

Event loops (async). A connection belongs to the event loop that opened it, and the
layer's connection is opened by the widest fixture. Run that fixture, the per-test fixtures
and the tests on one loop: ``loop_scope="session"`` on session- or module-scoped async
fixtures (``@pytest_asyncio.fixture``) *and* both default loop scopes; ``loop_scope`` on the
engine fixture alone leaves the tests on their own loops (``... attached to a different loop``).
In ``pyproject.toml``, either spelling (not both: pytest 9 then stops with ``Cannot use both
[tool.pytest] (native TOML types) and [tool.pytest.ini_options]``)::

    [tool.pytest.ini_options]                 # any pytest; values are strings
    asyncio_default_fixture_loop_scope = "session"
    asyncio_default_test_loop_scope = "session"

    [tool.pytest]                             # pytest >= 9, native TOML: same two lines
    asyncio_default_fixture_loop_scope = "session"
    asyncio_default_test_loop_scope = "session"

Without ``loop_scope``, a session-scoped async fixture runs on the loop of
``asyncio_default_fixture_loop_scope``: set to ``function`` (or ``module``, anything narrower
than its scope) it stops at set-up (``ScopeMismatch: You tried to access the function scoped
fixture _function_scoped_runner ...``); set to ``session``, or unset (pytest-asyncio 1.x
then uses the fixture's own scope, with a deprecation warning), it runs. With the tests on
their own loops asyncpg fails (``... attached to a different loop``), while aiosqlite does
not, so a SQLite-only run hides it. The per-test helper needs the same when
the engine is session-scoped (its pooled connections keep their loop), or ``NullPool``.

Keys. ``override_dependency`` needs the very function the routes ``Depends`` on (see its
docstring): an ``import ... as`` alias works, a wrapper or a re-definition is ignored.

Your project. Copy this file to ``tests/isolation.py`` or, to import it from several test
packages, to ``yourproject/testing/isolation.py``; or install it: ``pip install
packaging/rollback-isolation`` from the course's repository gives the module ``rollback_isolation``,
this very file (``import rollback_isolation as iso``). It needs SQLAlchemy 2.x with its asyncio
extra (greenlet; tested with 2.0.0 and 2.1.9, pytest-asyncio 0.26.0 and 1.5.0). Import it as a
namespace (``from tests import isolation as iso``) when your tests have names of their own such
as ``override_dependency``. Coverage: measure the app, not the tests (``--cov=yourproject``: an
app uses about half of this file, so counting it lowers the total). If your gate measures
``tests/`` too, or the file is vendored inside the package, omit it::

    [tool.coverage.run]
    omit = ["*/tests/isolation.py"]           # or "*/testing/isolation.py"

No ``# pragma: no cover``. Your real session dependency, overridden in every test, needs one
test of its own.

Limits (see the course, notebooks 05 and 07): all sessions of one test share one
connection, so requests inside a test must not run concurrently, and a race between
requests cannot be shown; sequences (PostgreSQL ids) are not rolled back.
"""

import asyncio
import inspect
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import PurePath
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "IsolationBreach",
    "create_worker_database",
    "fix_sqlite_savepoints",
    "isolated_sessions",
    "isolated_async_sessions",
    "isolated_async_sessions_on",
    "nested_sessions",
    "nested_async_sessions",
    "override_dependency",
    "run_sync_session",
    "session_dependency",
    "sessionmaker_dependency",
    "sync_session_dependency",
    "worker_database_url",
]

F = TypeVar("F")

#: What the helper sets itself: overriding either would undo the isolation.
_RESERVED_OPTIONS = ("bind", "binds", "join_transaction_mode")
#: The SAVEPOINT each layer opened, keyed by the factory it yielded (see nested_*_sessions).
_LAYER_ATTRIBUTE = "_isolation_layer"


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


def _session_options(function: str, class_: type, expected: type, session_options: dict[str, Any]) -> dict[str, Any]:
    if not (isinstance(class_, type) and issubclass(class_, expected)):
        hint = (
            " For SQLModel use sqlmodel.ext.asyncio.session.AsyncSession."
            if expected is AsyncSession
            else " For SQLModel use sqlmodel.Session."
        )
        raise TypeError(
            f"{function}(class_=...) needs a subclass of {expected.__module__}.{expected.__qualname__}, "
            f"got {class_!r}.{hint}"
        )
    reserved = sorted(set(session_options) & set(_RESERVED_OPTIONS))
    if reserved:
        raise TypeError(
            f"{function}() sets {', '.join(reserved)} itself (the test's connection, "
            '"create_savepoint"): pass only other session options, e.g. expire_on_commit=True, autoflush=False.'
        )
    return {"expire_on_commit": False, **session_options, "join_transaction_mode": "create_savepoint"}


@contextmanager
def isolated_sessions(engine: Engine, *, class_: type[Session] = Session, **session_options: Any) -> Iterator[sessionmaker]:
    """Sync: a session factory whose sessions all join one never-committed transaction.

    ``class_`` is the session class the factory makes (``sqlmodel.Session`` for SQLModel's
    ``exec()``); ``session_options`` go to ``sessionmaker`` (``expire_on_commit`` defaults to
    False, as a test reads objects after the app committed them).
    """
    options = _session_options("isolated_sessions", class_, Session, session_options)
    fix_sqlite_savepoints(engine)
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            yield sessionmaker(bind=connection, class_=class_, **options)
        finally:
            outer.rollback()


@asynccontextmanager
async def isolated_async_sessions(
    engine: AsyncEngine, *, class_: type[AsyncSession] = AsyncSession, **session_options: Any
) -> AsyncIterator[async_sessionmaker]:
    """Async: a session factory whose sessions all join one never-committed transaction.

    ``class_``: ``sqlmodel.ext.asyncio.session.AsyncSession`` for SQLModel; see
    :func:`isolated_sessions` for ``session_options``.
    """
    options = _session_options("isolated_async_sessions", class_, AsyncSession, session_options)
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:
        outer = await connection.begin()
        try:
            yield async_sessionmaker(bind=connection, class_=class_, **options)
        finally:
            await outer.rollback()


@contextmanager
def isolated_async_sessions_on(portal: Any, engine: AsyncEngine, **options: Any) -> Iterator[async_sessionmaker]:
    """Sync tests on an async app: :func:`isolated_async_sessions` opened on another thread's loop.

    ``portal`` runs coroutine functions on the loop that serves the app: Starlette's
    ``client.portal`` inside ``with TestClient(app) as client`` (anyio's blocking portal). The
    factory's connection then lives on the loop the requests run on. Use an engine whose pool
    does not outlive that loop (``poolclass=NullPool``, or an engine per test): a pooled asyncpg
    connection is tied to the loop that opened it (``... attached to a different loop``).
    """
    manager = isolated_async_sessions(engine, **options)
    factory = portal.call(manager.__aenter__)
    try:
        yield factory
    except BaseException:
        if not portal.call(manager.__aexit__, *sys.exc_info()):
            raise
    else:
        portal.call(manager.__aexit__, None, None, None)


def run_sync_session(portal: Any, factory: async_sessionmaker, function: Callable[..., F], *args: Any) -> F:
    """Write test data (or read it) through a *sync* ``Session`` of an async factory, from a sync test; commit; return.

    ``function(session, *args)`` gets the plain ``Session`` behind one ``AsyncSession`` of
    ``factory`` (SQLAlchemy's ``run_sync``), on the portal's loop, so it is on the test's
    connection: the app's requests see what it committed, and the test's rollback removes it.
    """

    async def run() -> F:
        async with factory() as session:
            result = await session.run_sync(function, *args)
            await session.commit()
            return result

    return portal.call(run)


def worker_database_url(url: str | URL, worker: str | None = None) -> URL:
    """This test process's own database: ``<name>_<worker>`` (SQLite: ``<stem>_<worker>.sqlite``).

    ``worker`` defaults to ``PYTEST_XDIST_WORKER`` (``gw0``, ``gw1``, ...), set by pytest-xdist in
    its workers, else ``main``: the same code runs with and without pytest-xdist installed (no
    ``worker_id`` fixture needed).
    """
    parsed = make_url(url)
    worker = worker or os.environ.get("PYTEST_XDIST_WORKER") or "main"
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return parsed
        path = PurePath(parsed.database)
        return parsed.set(database=str(path.with_name(f"{path.stem}_{worker}{path.suffix}")))
    return parsed.set(database=f"{parsed.database}_{worker}")


def create_worker_database(url: str | URL, create_schema: Callable[[Connection], None]) -> URL:
    """Create this worker's database (see :func:`worker_database_url`) afresh and its schema; once per worker.

    Call it from a session-scoped fixture. ``create_schema(connection)`` gets a sync ``Connection``
    (async URLs too: it runs inside ``AsyncConnection.run_sync``) with no transaction begun yet;
    what it leaves uncommitted is committed when it returns: ``Base.metadata.create_all``, or
    Alembic's ``command.upgrade(config, "head")`` with ``config.attributes["connection"] =
    connection`` and an ``env.py`` that migrates on it (see the module's docstring). PostgreSQL:
    the database is dropped (``WITH (FORCE)``) and created from the ``postgres`` database, under an
    advisory lock (workers that start together do not race on the template); the name is quoted.
    SQLite: the file is removed. Async URLs (asyncpg, aiosqlite) are driven on a private event
    loop, so call it from a *sync* fixture. Returns the worker's URL.
    """
    target = worker_database_url(url)
    is_async = target.get_dialect().is_async
    run = asyncio.run if is_async else (lambda result: result)

    if target.get_backend_name() == "sqlite":
        if target.database and target.database != ":memory:" and os.path.exists(target.database):
            os.remove(target.database)
    else:
        admin_url = target.set(database="postgres")

        def recreate(conn: Connection) -> None:
            name = conn.dialect.identifier_preparer.quote_identifier(target.database)
            conn.execute(text("SELECT pg_advisory_lock(2026120723)"))
            try:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(2026120723)"))

        run(_on_engine(admin_url, is_async, recreate, isolation_level="AUTOCOMMIT"))

    def schema(conn: Connection) -> None:
        create_schema(conn)
        conn.commit()

    run(_on_engine(target, is_async, schema))
    return target


def _on_engine(url: URL, is_async: bool, work: Callable[[Connection], None], **options: Any) -> Any:
    if not is_async:
        engine = create_engine(url, **options)
        try:
            with engine.connect() as conn:
                work(conn)
        finally:
            engine.dispose()
        return None

    async def run() -> None:
        engine = create_async_engine(url, **options)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(work)
        finally:
            await engine.dispose()

    return run()


def _layer_connection(function: str, factory: Any, maker: type, connection_type: type) -> Any:
    bind = getattr(factory, "kw", {}).get("bind")
    if not isinstance(factory, maker) or not isinstance(bind, connection_type) or factory.kw.get(
        "join_transaction_mode"
    ) != "create_savepoint":
        source = "isolated_async_sessions" if maker is async_sessionmaker else "isolated_sessions"
        raise TypeError(
            f"{function}() needs the factory yielded by {source}() or by {function}() itself "
            f"(sessions bound to one connection with create_savepoint), got {factory!r}."
        )
    return bind


def _check_layer_entry(function: str, factory: Any, sync_connection: Connection) -> None:
    if not sync_connection.in_transaction():
        raise RuntimeError(
            f"{function}(): the outer transaction of this factory has ended. The fixture that made it "
            "must outlive every test that layers on it (scope='module' or 'session', and still open)."
        )
    expected = getattr(factory, _LAYER_ATTRIBUTE, None)
    if sync_connection.get_nested_transaction() is not expected:
        raise RuntimeError(
            f"{function}(): a SAVEPOINT opened after this factory's layer is still open on its connection: "
            "a session of the outer factory was left open (a fixture that yields the session instead of "
            "closing it), or another layer on this factory has not ended. Write the shared data in "
            "`with factory() as session: ... session.commit()` and let that block end before the tests run."
        )


def _broken_layer(function: str, error: Exception) -> RuntimeError:
    return RuntimeError(
        f"{function}(): this test's SAVEPOINT is gone, so its writes could not be rolled back ({error}). "
        "Something on the connection released or rolled back past it: raw SQL (RELEASE, ROLLBACK TO, "
        "COMMIT) or a session bound to the connection by hand with another join mode. Use only "
        "sessions of the factory this layer yields."
    )


@contextmanager
def nested_sessions(factory: sessionmaker) -> Iterator[sessionmaker]:
    """Sync: one more layer on an isolated factory: a SAVEPOINT for one test, rolled back at exit.

    ``factory`` comes from :func:`isolated_sessions` (or from this function, to stack layers).
    The yielded factory makes sessions like ``factory`` does, joined to the SAVEPOINT.
    """
    connection = _layer_connection("nested_sessions", factory, sessionmaker, Connection)
    _check_layer_entry("nested_sessions", factory, connection)
    savepoint = connection.begin_nested()
    layer = sessionmaker(class_=factory.class_, **factory.kw)
    setattr(layer, _LAYER_ATTRIBUTE, savepoint)
    try:
        yield layer
    finally:
        if savepoint.is_active:
            try:
                savepoint.rollback()
            except DBAPIError as error:
                raise _broken_layer("nested_sessions", error) from error


@asynccontextmanager
async def nested_async_sessions(factory: async_sessionmaker) -> AsyncIterator[async_sessionmaker]:
    """Async twin of :func:`nested_sessions`; ``factory`` from :func:`isolated_async_sessions`."""
    connection = _layer_connection("nested_async_sessions", factory, async_sessionmaker, AsyncConnection)
    _check_layer_entry("nested_async_sessions", factory, connection.sync_connection)
    savepoint = await connection.begin_nested()
    layer = async_sessionmaker(class_=factory.class_, **factory.kw)
    setattr(layer, _LAYER_ATTRIBUTE, savepoint.sync_transaction)
    try:
        yield layer
    finally:
        if savepoint.is_active:
            try:
                await savepoint.rollback()
            except DBAPIError as error:
                raise _broken_layer("nested_async_sessions", error) from error


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


def sessionmaker_dependency(factory: F) -> Callable[[], F]:
    """A replacement for a dependency that hands out the session *factory* (the route opens sessions).

    Overriding such a dependency with :func:`session_dependency` gives the route a session
    where it expects a factory: ``TypeError: 'AsyncSession' object is not callable``.
    Works for sync and async factories alike.
    """

    def get_test_sessionmaker() -> F:
        return factory

    return get_test_sessionmaker


@contextmanager
def override_dependency(app: Any, dependency: Callable, replacement: Callable) -> Iterator[None]:
    """Install ``app.dependency_overrides[dependency] = replacement``; restore at exit.

    FastAPI looks the key up in a plain dict: it must be the very function the routes pass
    to ``Depends`` (for a bound method: the same method of the same instance).
    ``from app.db import get_session as get_db`` is that function under another name and
    works. A *different* callable is silently ignored by FastAPI and the app keeps its real
    dependency: a wrapper (``functools.wraps`` copies the name, not the identity), a copy, a
    function re-defined in a notebook cell, or the bound method of another instance. The dict
    is global to the app, so the override is always restored, even when the test fails.

    Guard: when ``replacement`` closes over a session factory bound to a connection (those
    made by :func:`session_dependency`, :func:`sync_session_dependency` and
    :func:`sessionmaker_dependency` from the helper's factories do), a session bound to an
    engine (not to the test's connection) that begins a transaction while the override is
    installed, in a request or anywhere in the process, raises :class:`IsolationBreach`
    (its writes would be real) naming the dependency or factory to replace; the breach is
    raised again at exit, in case the app swallowed it. Sessions bound to a connection (the
    helper's, or a test's own ``Session(bind=connection)``) are never refused.
    """
    overrides = app.dependency_overrides
    missing = object()
    previous = overrides.get(dependency, missing)
    overrides[dependency] = replacement
    guard = _Guard.for_replacement(app, dependency, replacement)
    try:
        yield
    finally:
        if previous is missing:
            overrides.pop(dependency, None)
        else:
            overrides[dependency] = previous
        if guard is not None:
            _GUARDS.remove(guard)
            if guard.breaches:
                raise IsolationBreach(guard.breaches[0])


class IsolationBreach(AssertionError):
    """A session outside the test's connection began a transaction while an override was installed."""


_GUARDS: list["_Guard"] = []


class _Guard:
    """One installed override of a helper-made replacement: which app, key and connection."""

    __slots__ = ("app", "dependency", "connection", "breaches")

    def __init__(self, app: Any, dependency: Callable, connection: Connection) -> None:
        self.app, self.dependency, self.connection, self.breaches = app, dependency, connection, []

    @classmethod
    def for_replacement(cls, app: Any, dependency: Callable, replacement: Callable) -> "_Guard | None":
        bind = _isolated_connection(replacement)
        if bind is None:
            return None  # no factory on a test's connection behind it: nothing to compare with
        if not event.contains(Session, "after_begin", _refuse_foreign_sessions):
            event.listen(Session, "after_begin", _refuse_foreign_sessions)
        guard = cls(app, dependency, bind)
        _GUARDS.append(guard)
        return guard


def _isolated_connection(replacement: Callable) -> Connection | None:
    """The connection of the session factory a replacement closes over (session_dependency & co. do)."""
    function = getattr(replacement, "__func__", replacement)
    for cell in getattr(function, "__closure__", None) or ():
        value = cell.cell_contents if _filled(cell) else None
        bind = value.kw.get("bind") if isinstance(value, (sessionmaker, async_sessionmaker)) else None
        if isinstance(bind, AsyncConnection):
            bind = bind.sync_connection
        if isinstance(bind, Connection):
            return bind
    return None


def _refuse_foreign_sessions(session: Session, _transaction: Any, connection: Connection) -> None:
    if not _GUARDS or isinstance(session.bind, Connection):
        return  # no override installed, or a session bound to a connection by the test itself
    if any(connection is guard.connection for guard in _GUARDS):
        return  # a session of the test's connection (bound through `binds`, say)
    message = _breach_message(_GUARDS[-1], connection.engine)
    for guard in _GUARDS:
        guard.breaches.append(message)
    raise IsolationBreach(message)


def _engine_of(value: Any) -> Engine | None:
    if isinstance(value, (sessionmaker, async_sessionmaker)):
        value = value.kw.get("bind")
    if isinstance(value, AsyncEngine):
        value = value.sync_engine
    return value if isinstance(value, Engine) else None


def _name(function: Any) -> str:
    function = getattr(function, "__func__", function)
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


def _route_dependencies(app: Any) -> list[Callable]:
    """Every callable the app's routes Depends on, directly or through other dependencies (FastAPI)."""
    found: dict[int, Callable] = {}
    routes, dependants, seen = list(getattr(app, "routes", ())), [], set()
    while routes:  # included routers and mounts nest (FastAPI >= 0.16x wraps each include_router)
        route = routes.pop()
        if id(route) in seen:
            continue
        seen.add(id(route))
        dependants.append(getattr(route, "dependant", None))
        for holder in (route, getattr(route, "original_router", None), getattr(route, "router", None)):
            routes.extend(getattr(holder, "routes", None) or ())
        for depends in getattr(getattr(route, "include_context", None), "dependencies", None) or ():
            if getattr(depends, "dependency", None) is not None:
                found.setdefault(id(depends.dependency), depends.dependency)
    while dependants:
        dependant = dependants.pop()
        for sub in getattr(dependant, "dependencies", None) or ():
            if sub.call is not None:
                found.setdefault(id(sub.call), sub.call)
            dependants.append(sub)
    return list(found.values())


def _uses_engine(function: Callable, engine: Engine) -> bool:
    function = getattr(function, "__func__", function)
    code, namespace = getattr(function, "__code__", None), getattr(function, "__globals__", {})
    if code is None:
        return False
    closed_over = [cell.cell_contents for cell in function.__closure__ or () if _filled(cell)]
    return any(_engine_of(namespace.get(name)) is engine for name in code.co_names if name in namespace) or any(
        _engine_of(value) is engine for value in closed_over
    )


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a variable not assigned yet
        return False
    return True


def _factories_of(engine: Engine) -> list[str]:
    """Where module-level session factories (or the engine itself) bound to ``engine`` live."""
    names = []
    for module_name, module in list(sys.modules.items()):
        if module_name.rpartition(".")[2].startswith(("test_", "conftest")):
            continue  # a test module that imported it: patching there changes nothing in the app
        for name, value in list(getattr(module, "__dict__", {}).items()):
            if isinstance(value, (sessionmaker, async_sessionmaker)) and _engine_of(value) is engine:
                names.append(f"{module_name}.{name}")
    return sorted(names)


def _breach_message(guard: _Guard, engine: Engine) -> str:
    used = _route_dependencies(guard.app)
    overridden = guard.app.dependency_overrides
    url = engine.url.render_as_string(hide_password=True)
    lines = [
        f"a session of another engine ({url}), not of the test's connection, began a transaction while "
        f"the test's sessions were installed for {_name(guard.dependency)}; its writes would be real, so it "
        "was stopped."
    ]
    if used and not any(call is guard.dependency for call in used):
        candidates = [call for call in used if _uses_engine(call, engine) and call not in overridden]
        candidates = candidates or [
            call for call in used if getattr(call, "__name__", None) == getattr(guard.dependency, "__name__", "")
        ]
        candidates = candidates or [  # last resort: the dependencies that yield (sessions usually do)
            call for call in used if inspect.isasyncgenfunction(call) or inspect.isgeneratorfunction(call)
        ]
        hint = ", ".join(_name(call) for call in candidates) or "the function the routes pass to Depends()"
        lines.append(
            f"The override never applied: no route depends on the key {guard.dependency!r} (that very object; "
            "a name is not enough). "
            f"Override the dependency the routes use: {hint} (import it from where it is defined; "
            "a copy or a wrapper is a different key)."
        )
    else:
        leftover = [call for call in used if _uses_engine(call, engine) and call not in overridden]
        factories = _factories_of(engine)
        if leftover:
            lines.append(f"Override these dependencies too, they open sessions of that engine: "
                         f"{', '.join(_name(call) for call in leftover)}.")
        lines.append(
            "Code calls the app's own session factory directly (a route, a background task, a job): "
            + (f"replace it for the test, e.g. monkeypatch.setattr(\"{factories[0]}\", factory)"
               f"{' (also: ' + ', '.join(factories[1:]) + ')' if factories[1:] else ''}."
               if factories else "replace that factory for the test with the test's factory.")
        )
    return "\n".join(lines)
