"""Checks for lesson 00's exercise: broken variants of ``GET /animals/{animal_id}``.

Each mutant serves the route with an endpoint that behaves like the real one for animals
that exist and gets unknown ids wrong in one realistic way.
"""

import sys
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from course.exercise import Mutant, check_test, replace_route

ROUTE = ("GET", "/animals/{animal_id}")


def _get_animal_variant(unknown):
    """A ``get_animal`` endpoint that calls ``unknown(animal_id)`` for ids it does not find."""
    from app.db import get_session
    from app.models import Animal
    from app.schemas import AnimalOut

    async def get_animal(animal_id: int, session: Annotated[AsyncSession, Depends(get_session)]):
        animal = await session.get(Animal, animal_id)
        if animal is None:
            return unknown(animal_id)
        return AnimalOut.model_validate(animal)

    return get_animal


def _empty_200(animal_id: int):
    return JSONResponse({}, status_code=200)


def _generic_404(animal_id: int):
    raise HTTPException(404, "Not Found")


def _other_message_404(animal_id: int):
    raise HTTPException(404, f"No adopter with id {animal_id}.")


def mutants(app) -> list[Mutant]:
    return [
        Mutant("the route answers 200 with an empty body for unknown ids",
               lambda: replace_route(app, *ROUTE, _get_animal_variant(_empty_200)),
               "check the status code"),
        Mutant("the route answers 404 with a generic body ({\"detail\": \"Not Found\"})",
               lambda: replace_route(app, *ROUTE, _get_animal_variant(_generic_404)),
               "check the whole JSON body"),
        Mutant("the route answers 404 with another route's message (\"No adopter with id ...\")",
               lambda: replace_route(app, *ROUTE, _get_animal_variant(_other_message_404)),
               "compare the body with the exact message"),
    ]


def check_unknown_animal_is_404() -> None:
    """Exercise 1 of lesson 00: the learner's ``test_unknown_animal_is_404``."""
    __tracebackhide__ = True
    from app.main import app

    check_test("test_unknown_animal_is_404", mutants=mutants(app), namespace=sys._getframe(1).f_globals,
               hint="assert both response.status_code and response.json().")
