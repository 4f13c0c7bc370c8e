"""Lesson 08's exercise: run the rollback fixture's recipe on the learner's test engine, on both databases.

``make_test_engine(url)`` must return an engine on which lesson 05's fixture (an outer transaction,
a session joined with ``create_savepoint`` that commits, the outer rollback) leaves no row. The
check runs it on the notebook's database and, when that is PostgreSQL, on a scratch SQLite file as
well: the SQLite driver quirk only shows on SQLite, and the default database is PostgreSQL.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.models import Animal
from course.exercise import attempted, not_attempted, report
from course.notebook import reset_schema
from tests.isolation import fix_sqlite_savepoints

NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
FIX = "install the driver fix on the engine you return, before its first connection: `fix_sqlite_savepoints(engine)`"


async def check_make_test_engine(make_test_engine: Callable[[str], Any], database_url: str) -> None:
    """No row left behind by the fixture's recipe, on this database and on SQLite; on SQLite a real BEGIN."""
    __tracebackhide__ = True
    if not attempted(make_test_engine):
        not_attempted("`make_test_engine` still holds the placeholder.")
        return
    problems: list[str] = []
    seen: list[str] = []
    with tempfile.TemporaryDirectory(prefix="course-l08-") as scratch:
        urls = {make_url(database_url).get_backend_name(): database_url}
        if "sqlite" not in urls:
            urls["sqlite"] = f"sqlite+aiosqlite:///{Path(scratch) / 'check.sqlite'}"
            await reset_schema(urls["sqlite"])
        for backend, url in urls.items():  # the notebook's database first (PostgreSQL by default)
            problem, what = await _one_database(make_test_engine, backend, url)
            if problem:
                problems.append(problem)
            else:
                seen.append(what)
    report(problems, "the rollback fixture left no row behind: " + "; ".join(seen) + ".")


async def _one_database(make_test_engine: Callable[[str], Any], backend: str, url: str) -> tuple[str | None, str]:
    where = NAMES[backend]
    await _delete_animals(url)
    try:
        engine = make_test_engine(url)
    except Exception as exc:  # the learner's code failing is the answer we grade
        return f"on {where}, make_test_engine(url) raised {_first_line(exc)}", ""
    if not isinstance(engine, AsyncEngine):
        return (f"on {where}, make_test_engine(url) returned {type(engine).__name__}, not an AsyncEngine: "
                "return the engine you made with create_async_engine(url)"), ""
    if engine.url.get_backend_name() != backend or engine.url.database != make_url(url).database:
        await engine.dispose()
        return (f"on {where}, the engine you returned points at {engine.url.render_as_string(hide_password=True)}, "
                "not at the url it was given: build it from `url`"), ""
    try:
        try:
            sent, still_open, driver_mode = await _recipe(engine)
        finally:
            await engine.dispose()
    except Exception as exc:
        text = _first_line(exc)
        if "transaction block" in text:
            return (f"on {where} the fixture's SAVEPOINT failed ({text}): the engine runs in AUTOCOMMIT, so the "
                    "fixture's outer transaction never began and each statement commits on its own. Leave the "
                    f"isolation level alone and {FIX}"), ""
        if backend == "sqlite" and "autocommit" in text:
            return (f"on SQLite the engine could not connect ({text}): on Python 3.11 sqlite3 has no `autocommit` "
                    f"argument (it is new in 3.12); {FIX}"), ""
        return f"on {where}, the fixture could not run on your engine: {text}", ""
    leaked = await _delete_animals(url)
    if backend == "sqlite" and "BEGIN" not in sent and (leaked or not still_open):
        said = ", ".join(sent)
        if driver_mode is None:
            why = ("the driver no longer begins transactions itself (its isolation_level is None), but nothing sends "
                   "BEGIN in its place, so the session's SAVEPOINT opened the transaction and its RELEASE committed it")
        else:
            why = ("the driver was still in its legacy mode (it sends BEGIN only before INSERT/UPDATE/DELETE, never on "
                   "SQLAlchemy's begin()), so the session's SAVEPOINT opened the transaction and its RELEASE committed it")
        level = _isolation_level(engine)  # what the engine was made with, if any
        if level == "AUTOCOMMIT":
            why += ': the engine runs in AUTOCOMMIT, which hands the driver no transaction at all'
        elif level:
            why += f': isolation_level="{level}" changes how SQLite reads, not when the driver begins'
        what = f"left {leaked} behind" if leaked else "was out of any transaction after the session's commit()"
        return (f"on SQLite the fixture {what}: your engine sent {said}, no BEGIN before the SAVEPOINT; {why}. "
                f"{FIX[0].upper()}{FIX[1:]} (for a sqlite+aiosqlite URL too)"), ""
    if leaked:
        return (f"on {where} the fixture left {leaked} behind: the session's commit() reached the database "
                f"({', '.join(sent)}). Build the engine with create_async_engine(url) and {FIX}"), ""
    if not still_open:
        return f"on {where} the driver was out of any transaction after the session's commit() ({', '.join(sent)})", ""
    begin = "a BEGIN before the SAVEPOINT, " if backend == "sqlite" else ""
    return None, f"on {where} {begin}the transaction still open after the session's commit()"


async def _recipe(engine: AsyncEngine) -> tuple[list[str], bool, Any]:
    """Lesson 05's fixture in a few lines; what was sent, and the driver's state after the session's commit()."""
    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        sent.append(" ".join(statement.split()[:3]) if statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))
                    else statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with engine.connect() as conn:
            outer = await conn.begin()
            async with AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as session:
                session.add(Animal(name="Leaky", species="rabbit"))
                await session.commit()
            driver = (await conn.get_raw_connection()).driver_connection
            if conn.dialect.name == "sqlite":
                still_open, mode = driver.in_transaction, driver.isolation_level
            else:
                still_open, mode = driver.is_in_transaction(), "n/a"
            await outer.rollback()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    return sent, still_open, mode


async def _delete_animals(url: str) -> list[str]:
    """The animal names committed at ``url`` (what a new connection sees), then deleted."""
    engine = create_async_engine(url)
    fix_sqlite_savepoints(engine)
    try:
        async with engine.begin() as conn:
            left = sorted(await conn.scalars(select(Animal.name)))
            await conn.execute(delete(Animal))
    finally:
        await engine.dispose()
    return left


def comparison_sqlite_url() -> str:
    """The SQLite file lesson 08 compares with when it runs on PostgreSQL: one file in the course's
    ``.data/`` (where its SQLite databases live), reused by every run, so none piles up in /tmp."""
    path = Path(__file__).resolve().parents[2] / ".data" / "lesson08-compare.sqlite"
    path.parent.mkdir(exist_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def _isolation_level(engine: AsyncEngine) -> str | None:
    """The ``isolation_level`` given to create_async_engine (SQLAlchemy 2.1 keeps it on the dialect)."""
    return getattr(engine.sync_engine.dialect, "_on_connect_isolation_level", None)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}"
