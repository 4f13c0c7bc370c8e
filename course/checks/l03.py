"""Checks for lesson 03's exercise: the payment provider is unreachable.

The mutants are copies of the pay route (``course.checks.l02.pay_variant``) that handle a
provider they cannot reach in one wrong way each.
"""

from __future__ import annotations

import sys

from course.checks.l02 import PayBug, pay_mutant
from course.exercise import Mutant, check_test


def unreachable_mutants(app) -> list[Mutant]:
    return [
        pay_mutant(app, "the route answers 500 when the provider is unreachable",
                PayBug(failure=(500, "Internal Server Error")), "check the exact status code, 502"),
        pay_mutant(app, "the route answers 502 with a generic message (\"Bad gateway\")",
                PayBug(failure=(502, "Bad gateway")), "compare the whole detail"),
        pay_mutant(app, "the route marks the adoption paid although the charge failed",
                PayBug(mark_paid_anyway=True), "read the adoption back: GET /adoptions/{id}"),
    ]


def check_unreachable_provider() -> None:
    """Exercise 1 of lesson 03: the learner's ``test_unreachable_provider_answers_502``."""
    __tracebackhide__ = True
    from app.main import app

    check_test("test_unreachable_provider_answers_502", mutants=unreachable_mutants(app),
               namespace=sys._getframe(1).f_globals,
               hint="assert the status code, the detail and the adoption's status.")
