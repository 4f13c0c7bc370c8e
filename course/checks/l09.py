"""Lesson 09 (retry routes): the exercise's broken routes.

``check_intake_test(intake_api, naive_route=intake_naive)`` runs the learner's
``test_intake_keeps_the_contact`` against the savepoint intake route (it must pass), then with
the route replaced by each mutant (it must fail). (Lesson 10's throwaway database per test,
``fresh_database``, is in :mod:`course.checks.l10`.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, HTTPException
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Adopter, Animal
from course.exercise import Mutant, check_test, replace_route

#: -vvv (with the -q of the notebook runs: verbosity 2): pytest prints the failed assertion of the summary line in full, not cut to the terminal width
SUMMARY_IN_FULL = ("-vvv",)

INTAKE_ROUTE = ("POST", "/savepoint/intake")
Session = Annotated[AsyncSession, Depends(get_session)]


async def intake_without_contact(body: Annotated[dict, Body()], session: Session) -> dict:
    """Names the animal with a savepoint per attempt, but never stores the contact."""
    for name in body["candidates"]:
        try:
            async with session.begin_nested():
                session.add(Animal(name=name, species=body["species"]))
        except IntegrityError:
            continue
        await session.commit()
        return {"animal": name, "contact": body["contact_name"]}
    raise HTTPException(409, "All candidate names are taken.")


async def intake_that_gives_up(body: Annotated[dict, Body()], session: Session) -> dict:
    """Stores the contact, but answers 409 at the first taken name instead of retrying."""
    session.add(Adopter(name=body["contact_name"], email=body["contact_email"]))
    try:
        async with session.begin_nested():
            session.add(Animal(name=body["candidates"][0], species=body["species"]))
    except IntegrityError:
        await session.commit()
        raise HTTPException(409, "All candidate names are taken.") from None
    await session.commit()
    return {"animal": body["candidates"][0], "contact": body["contact_name"]}


def intake_mutants(app: Any, naive_route: Callable) -> list[Mutant]:
    method, path = INTAKE_ROUTE
    return [
        Mutant("the route calls session.rollback() after the failed Max (the naive intake)",
               lambda: replace_route(app, method, path, naive_route),
               hint="assert that Ada is stored, read back in a new session"),
        Mutant("the route never stores the contact", lambda: replace_route(app, method, path, intake_without_contact)),
        Mutant("the route gives up at the first taken name instead of retrying",
               lambda: replace_route(app, method, path, intake_that_gives_up),
               hint="make Max exist first, and check the answer names Cody"),
    ]


def check_intake_test(app: Any, *, naive_route: Callable) -> None:
    """Exercise 1: the learner's test must pass on the savepoint intake and fail on each mutant."""
    __tracebackhide__ = True
    check_test(
        "test_intake_keeps_the_contact",
        mutants=intake_mutants(app, naive_route),
        hint="add Max in a session from intake_sessions() and commit(); post the intake; then read "
        "select(Adopter.name) in a new session from intake_sessions().",
        args=SUMMARY_IN_FULL,
        namespace=sys._getframe(1).f_globals,
    )
