"""Lesson 05's exercise: run the learner's ``import_animals`` on a real session and check what it kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
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
            try:
                skipped = await import_animals(session, [dict(row) for row in BATCH])
            except Exception as exc:  # the learner's code failing is the answer we grade
                problems.append(_explain(exc))
            else:
                problems += await _check_outcome(session, skipped)
    finally:
        await engine.dispose()
    report(problems, "one savepoint per row: the duplicate was skipped, Tom, Luna and the earlier Rex were kept.")


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
