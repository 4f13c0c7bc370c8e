"""Checks for lesson 01's exercise: a test that creates the data it reads.

The mutants are the two ways a suite lies to a test that borrows data: a row left behind
by another test, and a list route that shows more than the database holds; and one app
bug a listing test must catch: a create route that forgets to commit.
"""

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from course.exercise import Mutant, check_test, replace_route


@contextlib.contextmanager
def leftover_rex() -> Iterator[None]:
    """Commit a Rex into the notebook's database (another test's leftover), delete it at exit."""
    from app.models import Animal
    from course.notebook import run_async

    url = os.environ["DATABASE_URL"]  # setup() pointed it at this notebook's database

    async def execute(statement) -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(statement)
        finally:
            await engine.dispose()

    run_async(execute(Animal.__table__.insert().values(name="Rex", species="dog", status="available")))
    try:
        yield
    finally:
        run_async(execute(Animal.__table__.delete().where(Animal.name == "Rex")))


def _list_with_a_stranger():
    from app.db import get_session
    from app.models import Animal
    from app.schemas import AnimalOut
    from sqlalchemy import select

    async def list_animals(session: Annotated[AsyncSession, Depends(get_session)]):
        animals = [AnimalOut.model_validate(a).model_dump(mode="json") for a in await session.scalars(select(Animal))]
        stranger = {"id": 10_000, "name": "Bella", "species": "cat", "status": "available",
                    "arrived_at": "2026-01-01T00:00:00Z"}
        return sorted([*animals, stranger], key=lambda animal: animal["name"])

    return list_animals


def _create_without_commit():
    from app.db import get_session
    from app.models import Animal
    from app.schemas import AnimalIn, AnimalOut

    async def create_animal(body: AnimalIn, session: Annotated[AsyncSession, Depends(get_session)]):
        animal = Animal(name=body.name, species=body.species)
        session.add(animal)
        await session.flush()  # gets an id, but nothing commits: the row goes when the session closes
        return AnimalOut.model_validate(animal)

    return create_animal


def mutants(app) -> list[Mutant]:
    return [
        Mutant("the shelter already holds another test's Rex", leftover_rex,
               "check the status code of your POST: a leftover Rex makes it 409"),
        Mutant("the list route also returns an animal that is not in the database",
               lambda: replace_route(app, "GET", "/animals", _list_with_a_stranger()),
               "compare the whole list of names, not just `in`"),
        Mutant("the create route answers 201 but forgets to commit",
               lambda: replace_route(app, "POST", "/animals", _create_without_commit()),
               "read the list after creating Rex"),
    ]


def check_rex_is_listed_on_its_own() -> None:
    """Exercise 1 of lesson 01: the learner's ``test_rex_is_listed_on_its_own``."""
    __tracebackhide__ = True
    from app.main import app

    check_test("test_rex_is_listed_on_its_own", mutants=mutants(app), namespace=sys._getframe(1).f_globals,
               hint="create Rex through the client (and check the 201), then compare the names with ['Rex'].")
