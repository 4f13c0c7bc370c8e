"""Lesson 05's exercise: broken versions of the app the learner's seeding test must catch."""

from __future__ import annotations

import sys
from typing import Annotated, Any
from unittest.mock import patch

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.main import app as shelter
from app.routes.animals import list_animals
from app.schemas import AnimalOut
from course.database import count_rows
from course.exercise import ExerciseIncomplete, Mutant, attempted, check_test, not_attempted, record_calls, replace_route
from course.notebook import reset_schema, run_async

Session = Annotated[AsyncSession, Depends(get_session)]


# --- Exercise 1: seed data the app can see ----------------------------------------------------------

async def _commit_that_rolls_back(self: AsyncSession) -> None:
    await self.rollback()


def _seeded_row_never_committed():
    return patch.object(AsyncSession, "commit", _commit_that_rolls_back)


async def _list_with_a_stray_animal(session: Session) -> list[dict[str, Any]]:
    animals = [AnimalOut.model_validate(a).model_dump(mode="json") for a in await list_animals(session)]
    return [{"id": 999_999, "name": "Stray", "species": "dog"}, *animals]


def _stray_animal_listed():
    return replace_route(shelter, "GET", "/animals", _list_with_a_stray_animal)


SEEDED_MUTANTS = [
    Mutant("the seeded row is never committed (its session's commit() rolls back)", _seeded_row_never_committed,
           hint="compare the whole list of names with the one you seeded"),
    Mutant("the list route also shows an animal nobody seeded", _stray_animal_listed,
           hint="check the list is exactly ['Luna'], not just that Luna is in it"),
]


def check_seeded_animal_is_listed(database_url: str) -> None:
    """check_test for Exercise 1, then: nothing the test seeded may be left in the database.

    Technique: rows seeded through the test's isolated session factory (``sessions()``), committed
    (a savepoint release), visible to the app's session, gone after the test. Mutants catch a weak
    assertion and a missing commit; ``POST /animals`` is watched, so Luna created through the API
    is named; the row count afterwards catches a seeding session outside the test's transaction.
    """
    __tracebackhide__ = True
    namespace = _caller_globals()
    test = namespace.get("test_seeded_animal_is_listed")
    if test is not None and not attempted(test):
        not_attempted("`test_seeded_animal_is_listed` still holds the placeholder.")
        return
    verdict: ExerciseIncomplete | None = None
    with record_calls(shelter, "POST", "/animals") as created:

        def seeded_not_posted(when: str) -> str | None:
            if not created:
                return None
            names = sorted({getattr(call.get("body"), "name", "?") for call in created})
            created.clear()
            return (
                f"your test created {', '.join(names)} through `POST /animals`. That gets the list right, but this "
                "exercise is about seeding: putting rows in place *before* the request, through the test's own "
                "sessions, as you must for data no route creates (a past adoption, an animal in a given state). "
                "Add Luna with `async with sessions() as session:`, `session.add(...)` and `await session.commit()`, "
                "then make only the GET request."
            )

        try:
            check_test("test_seeded_animal_is_listed", mutants=SEEDED_MUTANTS, namespace=namespace,
                       hint="seed through `sessions()`, commit, then compare `await animal_names(client)` with ['Luna']",
                       after_run=seeded_not_posted)
        except ExerciseIncomplete as exc:
            verdict = exc
    left = {table: n for table, n in run_async(count_rows(database_url)).items() if n}
    if left:
        run_async(reset_schema(database_url))  # so the rest of the notebook starts clean
        raise ExerciseIncomplete(
            f"your test left rows in the database ({left}; they are deleted now): the seeding session was not "
            "one of the test's. Open it with `async with sessions() as session:`, so the teardown rolls it back."
        )
    if verdict is not None:
        raise verdict


def _caller_globals() -> dict[str, Any]:
    return sys._getframe(2).f_globals
