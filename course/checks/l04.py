"""Checks for lesson 04's exercise: a refused reservation sends no e-mail.

Every mutant serves ``POST /adoptions`` with a copy of the real route (``app/routes/adoptions.py``)
that gets the reservation e-mail wrong in one realistic way. The copy asks for the same
dependencies, so the learner's overrides (the isolated sessions, the recording notifier) apply to it.
"""

import sys
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession

from course.exercise import Mutant, check_test, replace_route

ROUTE = ("POST", "/adoptions")


@dataclass(frozen=True)
class ReserveBug:
    mail_first: bool = False  # the e-mail is sent at once, before the route knows the animal is free
    no_mail: bool = False  # the background task is never added
    mail_twice: bool = False  # the task is added twice
    fee_in_cents: bool = False  # the e-mail quotes the fee in cents


def reserve_variant(bug: ReserveBug):
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from app.config import get_settings
    from app.db import get_session
    from app.models import Adopter, Adoption, Animal, AnimalStatus
    from app.schemas import FEES_CENTS, AdoptionIn, AdoptionOut
    from app.services.notifications import get_notifier

    async def reserve(body: AdoptionIn, background: BackgroundTasks,
                      session: Annotated[AsyncSession, Depends(get_session)],
                      notifier: Annotated[object, Depends(get_notifier)]):
        animal = await session.get(Animal, body.animal_id)
        adopter = await session.get(Adopter, body.adopter_id)
        if animal is None or adopter is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such animal or adopter.")
        fee = FEES_CENTS[animal.species] if bug.fee_in_cents else FEES_CENTS[animal.species] / 100
        mail = (adopter.email, f"{animal.name} is reserved for you",
                f"Please pay the adoption fee of EUR {fee:.2f} within {get_settings().reservation_ttl_hours} hours.")
        if bug.mail_first:
            await notifier.send(*mail)
        claimed = await session.execute(
            update(Animal)
            .where(Animal.id == animal.id, Animal.status == AnimalStatus.AVAILABLE)
            .values(status=AnimalStatus.RESERVED)
        )
        if claimed.rowcount != 1:
            await session.refresh(animal)
            raise HTTPException(status.HTTP_409_CONFLICT, f"{animal.name} is not available (status: {animal.status}).")
        adoption = Adoption(animal=animal, adopter=adopter, fee_cents=FEES_CENTS[animal.species])
        session.add(adoption)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise HTTPException(status.HTTP_409_CONFLICT, f"{animal.name} is not available (already reserved).")
        if not (bug.mail_first or bug.no_mail):
            for _ in range(2 if bug.mail_twice else 1):
                background.add_task(notifier.send, *mail)
        return AdoptionOut.model_validate(adoption)

    return reserve


def reserve_mutant(app, description: str, bug: ReserveBug, hint: str = "") -> Mutant:
    return Mutant(description, lambda: replace_route(app, *ROUTE, reserve_variant(bug)), hint)


def refused_mutants(app) -> list[Mutant]:
    return [
        reserve_mutant(app, "the route e-mails the adopter before it knows the animal is free (Bob gets \"Rex is reserved for you\")",
                       ReserveBug(mail_first=True), "compare the whole list `notifier.sent`, not one address"),
        reserve_mutant(app, "the route sends no reservation e-mail at all",
                       ReserveBug(no_mail=True), "check that Ada's e-mail is there"),
        reserve_mutant(app, "the route sends Ada's e-mail twice",
                       ReserveBug(mail_twice=True), "compare the whole list `notifier.sent`"),
        reserve_mutant(app, "the e-mail quotes the fee in cents (EUR 15000.00)",
                       ReserveBug(fee_in_cents=True), "compare the whole e-mail: address, subject and text"),
    ]


def check_refused_reservation() -> None:
    """Exercise 1 of lesson 04: the learner's ``test_refused_reservation_sends_no_mail``."""
    __tracebackhide__ = True
    from app.main import app

    check_test("test_refused_reservation_sends_no_mail", mutants=refused_mutants(app),
               namespace=sys._getframe(1).f_globals,
               hint="assert both status codes, then the whole of `notifier.sent`, right after the second request.")
