"""Lesson 07's exercise: run the learner's ``import_animals`` on a real session and check what it kept."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Animal
from course.exercise import attempted, not_attempted, report
from tests.isolation import isolated_async_sessions

BATCH = [{"name": "Tom", "species": "cat"}, {"name": "Rex", "species": "cat"}, {"name": "Luna", "species": "cat"}]


async def check_import_animals(import_animals: Callable[..., Any], database_url: str) -> None:
    """Rex exists before the batch; the batch holds a second Rex between Tom and Luna.

    Right: ``["Rex"]`` is returned, Luna, Rex and Tom are in the session's transaction, and the
    session still works. Everything runs inside a transaction that is rolled back.
    """
    __tracebackhide__ = True
    if not attempted(import_animals):
        not_attempted("`import_animals` still holds the placeholder.")
        return
    problems: list[str] = []
    engine = create_async_engine(database_url)
    try:
        async with isolated_async_sessions(engine) as sessions, sessions() as session:
            session.add(Animal(name="Rex", species="dog"))
            await session.flush()
            failed: Exception | None = None
            with _watching(engine) as sent:
                try:
                    skipped = await import_animals(session, [dict(row) for row in BATCH])
                except Exception as exc:  # the learner's code failing is the answer we grade
                    failed = exc
            if failed is not None:
                problems.append(_explain(failed))
            else:
                problems += await _check_outcome(session, skipped)
    finally:
        await engine.dispose()
    if not problems:
        problems += _technique(sent)
    report(problems, f"one savepoint per row ({sent['savepoints']} SAVEPOINTs for {len(BATCH)} rows, "
                     f"{sent['rolled_back']} rolled back): the duplicate was skipped, Tom, Luna and the earlier Rex "
                     "were kept.")


@contextlib.contextmanager
def _watching(engine) -> Iterator[dict[str, int]]:
    """Count, while active, the SAVEPOINTs opened and rolled back, and the SELECTs sent, on ``engine``."""
    sent = {"savepoints": 0, "rolled_back": 0, "selects": 0}

    def savepoint(conn, name):
        sent["savepoints"] += 1

    def rollback_savepoint(conn, name, context):
        sent["rolled_back"] += 1

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        sent["selects"] += statement.lstrip().upper().startswith("SELECT")

    listeners = [("savepoint", savepoint), ("rollback_savepoint", rollback_savepoint),
                 ("before_cursor_execute", before_cursor_execute)]
    for name, fn in listeners:
        event.listen(engine.sync_engine, name, fn)
    try:
        yield sent
    finally:
        for name, fn in listeners:
            event.remove(engine.sync_engine, name, fn)


def _technique(sent: dict[str, int]) -> list[str]:
    """The result is right; was it reached with a savepoint per row?"""
    if sent["savepoints"] >= len(BATCH) and sent["rolled_back"] >= 1:
        return []
    if sent["savepoints"] == 0:
        how = (f"it sent {sent['selects']} SELECT(s) and no SAVEPOINT at all: it looked the names up before inserting"
               if sent["selects"] else "it sent no SAVEPOINT at all")
        return [f"the result is right, but {how}. That works here, where nobody else writes; between a SELECT and "
                "the INSERT another session can take the name, and the INSERT still fails. This exercise is about "
                "letting the database refuse the row and undoing only that row: put each row in its own "
                "`async with session.begin_nested():` inside a `try` / `except IntegrityError`."]
    return [f"the result is right, but it opened {sent['savepoints']} SAVEPOINT(s) for {len(BATCH)} rows and rolled "
            f"back {sent['rolled_back']}: the duplicate was never refused by the database inside a savepoint of its "
            "own. Give each row its own `async with session.begin_nested():` and let the INSERT fail there."]


def _explain(exc: Exception) -> str:
    name = type(exc).__name__
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if name in {"PendingRollbackError", "IntegrityError", "InternalError", "DBAPIError"}:
        return (f"import_animals raised {name} ({first_line[:160]}): after a failed INSERT the session (on "
                "PostgreSQL the whole transaction) refuses to go on. Put each row in its own "
                "`async with session.begin_nested():` and catch IntegrityError around that block.")
    return f"import_animals raised {name}: {first_line[:200]}"


async def _check_outcome(session: Any, skipped: Any) -> list[str]:
    problems = []
    if skipped != ["Rex"]:
        problems.append(f"it returned {skipped!r}; the batch's only taken name is Rex, so it should return ['Rex']")
    try:
        kept = sorted(await session.scalars(select(Animal.name)))
    except Exception as exc:
        return [*problems, f"the session cannot be used after the import ({type(exc).__name__}): "
                           "roll back only the failed row, with a savepoint per row"]
    lost = [name for name in ("Luna", "Rex", "Tom") if name not in kept]
    if "Rex" in lost:
        problems.append(f"{' and '.join(lost)} got lost, Rex from before the batch too: a session.rollback() undoes "
                        "the whole transaction (or the session's own savepoint), not just the failed row. Roll back "
                        "to a savepoint of that row only: `async with session.begin_nested():`")
    elif lost:
        problems.append(f"the batch's good rows {' and '.join(lost)} got lost: give each row its own savepoint "
                        "(`async with session.begin_nested():` inside the loop), not one for the whole batch")
    return problems
