"""Which database the tests and notebooks use, and a clear answer when it is not there.

One environment variable picks the database: ``DATABASE_URL`` (the app's own setting).
Unset, it is a SQLite file under ``.data/``; ``postgresql+asyncpg://...`` selects PostgreSQL
(``scripts/postgres start`` prints such a URL). Tests and notebooks never touch that database
itself but a sibling named after them (``shelter_test_master``, ``shelter_test_gw0`` ...),
so a test run cannot damage the data of a running dev server and each pytest-xdist worker
gets its own database.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from sqlalchemy import text
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


def selected_url() -> str:
    """The database the user chose (``DATABASE_URL``, else the SQLite default)."""
    return os.environ.get(SELECTED_VAR) or os.environ.get(ENV_VAR) or DEFAULT_DATABASE_URL


def remember_selection() -> str:
    """Record the user's choice once per process tree, before DATABASE_URL is repointed."""
    return os.environ.setdefault(SELECTED_VAR, selected_url())


def backend(url: str | URL) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return make_url(url).get_backend_name()


def sibling_url(url: str, suffix: str) -> str:
    """The URL of a database next to ``url`` whose name ends with ``_test_<suffix>``."""
    parsed = make_url(url)
    if backend(parsed) == "sqlite":
        path = Path(parsed.database or "shelter.sqlite")
        return parsed.set(database=str(path.with_name(f"{path.stem}{TEST_PREFIX}{suffix}{path.suffix}"))).render_as_string(hide_password=False)
    return parsed.set(database=f"{parsed.database}{TEST_PREFIX}{suffix}").render_as_string(hide_password=False)


def test_database_url(worker: str | None = None) -> str:
    """The database for this test process: one per pytest-xdist worker (``master`` when serial)."""
    worker = worker or os.environ.get("PYTEST_XDIST_WORKER", "master")
    return sibling_url(selected_url(), worker)


def _unreachable_message(url: str, error: BaseException) -> str:
    parsed = make_url(url)
    return (
        f"PostgreSQL is not reachable at {parsed.host}:{parsed.port or 5432} "
        f"({error.__class__.__name__}: {error}).\n"
        f"  {ENV_VAR}={parsed.render_as_string(hide_password=True)}\n"
        "Start the course's throwaway server:   export DATABASE_URL=$(scripts/postgres start)\n"
        "or fall back to SQLite:                 unset DATABASE_URL"
    )


async def prepare(url: str) -> None:
    """Make sure the database in ``url`` exists (create it if needed), or explain why not."""
    parsed = make_url(url)
    if backend(parsed) == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
            if not exists:
                await conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    except (OSError, asyncio.TimeoutError) as exc:
        raise DatabaseUnavailable(_unreachable_message(url, exc)) from exc
    finally:
        await admin.dispose()


def describe(url: str) -> str:
    """A one-line, password-free description for humans."""
    parsed = make_url(url)
    if backend(parsed) == "sqlite":
        return f"SQLite (aiosqlite), file {Path(parsed.database).name}"
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
    """``python -m course.database check-empty | describe``."""
    command = argv[0] if argv else "describe"
    if command == "describe":
        print(describe(selected_url()))
        return 0
    if command == "check-empty":
        return asyncio.run(_check_empty())
    print("usage: python -m course.database [describe|check-empty]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
