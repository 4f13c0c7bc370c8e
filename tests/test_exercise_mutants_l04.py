"""Lesson 04's exercise mutants break the reservation e-mail and nothing else.

A mutant that answered 422 or 500 would be "caught" by any test, also by one that never looks at
``notifier.sent``. These tests pin each mutant's status codes to the real route's (201, then 409
for the refused second reservation) and its e-mails to the bug its description names.
"""

import pytest

from app.main import app as shelter_app
from course.checks import l04

TEXT = "Please pay the adoption fee of EUR {} within 48 hours."
ADA = ("ada@example.com", "Rex is reserved for you", TEXT.format("150.00"))
BOB = ("bob@example.com", "Rex is reserved for you", TEXT.format("150.00"))
#: a phrase of each mutant's description -> what the recording notifier holds afterwards
EXPECTED = {
    "before it knows the animal is free": [ADA, BOB],
    "sends no reservation e-mail": [],
    "e-mail twice": [ADA, ADA],
    "fee in cents": [("ada@example.com", "Rex is reserved for you", TEXT.format("15000.00"))],
}
MUTANTS = l04.refused_mutants(shelter_app)


async def reserve_rex_twice(client) -> tuple[int, int]:
    """Rex reserved for Ada, then for Bob: the two status codes."""
    rex = (await client.post("/animals", json={"name": "Rex", "species": "dog"})).json()
    ada = (await client.post("/adopters", json={"name": "Ada", "email": "ada@example.com"})).json()
    bob = (await client.post("/adopters", json={"name": "Bob", "email": "bob@example.com"})).json()
    first = await client.post("/adoptions", json={"animal_id": rex["id"], "adopter_id": ada["id"]})
    second = await client.post("/adoptions", json={"animal_id": rex["id"], "adopter_id": bob["id"]})
    return first.status_code, second.status_code


async def test_the_real_route_mails_ada_only(client, notifier):
    assert await reserve_rex_twice(client) == (201, 409)
    assert notifier.sent == [ADA]


def test_every_mutant_has_its_expected_mails():
    assert sorted(next(p for p in EXPECTED if p in m.description) for m in MUTANTS) == sorted(EXPECTED)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.description[:40] for m in MUTANTS])
async def test_a_mutant_keeps_the_status_codes_and_breaks_only_the_mail(client, notifier, mutant):
    expected = next(mails for phrase, mails in EXPECTED.items() if phrase in mutant.description)
    with mutant.install():
        statuses = await reserve_rex_twice(client)

    assert statuses == (201, 409)
    assert notifier.sent == expected
