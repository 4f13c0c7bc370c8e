"""Lesson 06's exercise: the learner's test must hold with ids from 1 and from 1001, and catch broken versions of the app."""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event

from app.main import app as shelter
from app.models import Animal
from app.schemas import AnimalIn
from course.exercise import Condition, Mutant, attempted, check_test, replace_route
from course.notebook import reset_schema, run_async


# --- Exercise 1: a test that holds on every backend -------------------------------------------------

@contextlib.contextmanager
def _ids_start_at_1001() -> Iterator[None]:
    """Every new animal gets an id from 1001 on, as if earlier tests had used the first ones."""
    ids = itertools.count(1001)

    def take_an_id(mapper, connection, target):
        if target.id is None:
            target.id = next(ids)

    event.listen(Animal, "before_insert", take_an_id)
    try:
        yield
    finally:
        event.remove(Animal, "before_insert", take_an_id)


async def _get_answers_with_another_animal(animal_id: int) -> dict[str, Any]:
    return {"id": animal_id, "name": "Bella", "species": "dog"}


def _another_animal_returned():
    return replace_route(shelter, "GET", "/animals/{animal_id}", _get_answers_with_another_animal)


async def _create_that_stores_nothing(body: AnimalIn) -> dict[str, Any]:
    return {"id": 1, "name": body.name, "species": body.species}


def _nothing_stored():
    return replace_route(shelter, "POST", "/animals", _create_that_stores_nothing)


BY_ID_MUTANTS = [
    Mutant("GET /animals/{animal_id} answers 200 with another animal", _another_animal_returned,
           hint="check the name in the GET response"),
    Mutant("POST /animals answers 201 but stores nothing", _nothing_stored,
           hint="fetch the animal you created and check the GET answers 200"),
]
IDS_FROM_1001 = "ids do not start at 1 (as on PostgreSQL after earlier tests)"


def check_get_rex_by_his_id(database_url: str) -> None:
    """Exercise 1: the test passes on fresh ids AND on ids from 1001, and fails against each mutant."""
    __tracebackhide__ = True
    namespace = _caller_globals()
    test = namespace.get("test_get_rex_by_his_id")
    if test is not None and attempted(test):
        run_async(reset_schema(database_url))  # fresh ids: the first animal gets id 1 on both databases
    check_test("test_get_rex_by_his_id", mutants=BY_ID_MUTANTS, namespace=namespace,
               hint="use the id in `created.json()` and compare the name",
               conditions=[Condition(IDS_FROM_1001, _ids_start_at_1001, advice=(
                   "Fetch the animal by the id the POST response returned (`created.json()['id']`), never a literal."))])


def _caller_globals() -> dict[str, Any]:
    return sys._getframe(2).f_globals
