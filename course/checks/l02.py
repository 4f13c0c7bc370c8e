"""Checks for lesson 02's exercise, a declined card (lesson 03 reuses the broken pay routes).

Every mutant serves ``POST /adoptions/{adoption_id}/pay`` with a copy of the real route that
gets failed charges wrong in one realistic way. The copy asks for the same dependencies, so
the learner's overrides (and respx) still apply to it.
"""

import sys
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from course.exercise import Mutant, check_test, replace_route

ROUTE = ("POST", "/adoptions/{adoption_id}/pay")


@dataclass(frozen=True)
class PayBug:
    declined: tuple[int, str] | None = None  # (status, detail) answered for a declined card
    failure: tuple[int, str] | None = None  # (status, detail) answered when the provider is down
    mark_paid_anyway: bool = False  # a failed charge still marks the adoption paid
    welcome_anyway: bool = False  # a failed charge still sends the "Welcome home" e-mail
    accept_every_card: bool = False  # the route builds its own gateway, which accepts everything


class _AcceptingGateway:
    async def charge(self, *, amount_cents: int, reference: str):
        from app.services.payments import Charge

        return Charge(id="ch_accepted", amount_cents=amount_cents)


def pay_variant(bug: PayBug):
    from app.db import get_session
    from app.models import AdoptionStatus, AnimalStatus, utcnow
    from app.routes.adoptions import _get_adoption
    from app.services.notifications import get_notifier
    from app.services.payments import PaymentDeclined, PaymentGatewayError, get_payment_gateway

    async def pay(adoption_id: int, background: BackgroundTasks,
                  session: Annotated[AsyncSession, Depends(get_session)],
                  notifier: Annotated[object, Depends(get_notifier)],
                  gateway: Annotated[object, Depends(get_payment_gateway)]):
        if bug.accept_every_card:
            gateway = _AcceptingGateway()
        adoption = await _get_adoption(session, adoption_id)
        error = None
        try:
            charge = await gateway.charge(amount_cents=adoption.fee_cents, reference=f"adoption-{adoption.id}")
        except PaymentDeclined as exc:
            error = HTTPException(*(bug.declined or (402, f"Payment declined: {exc}.")))
        except PaymentGatewayError as exc:
            error = HTTPException(*(bug.failure or (502, f"Payment failed, please retry later ({exc}).")))
        if error is None or bug.mark_paid_anyway:
            adoption.status = AdoptionStatus.PAID
            adoption.animal.status = AnimalStatus.ADOPTED
            adoption.paid_at = utcnow()
            await session.commit()
        welcome = (adoption.adopter.email, f"Welcome home, {adoption.animal.name}!", "")
        if error is None:
            background.add_task(notifier.send, *welcome)
        else:
            if bug.welcome_anyway:  # an error response runs no background task: send it right away
                await notifier.send(*welcome)
            raise error
        from app.schemas import AdoptionOut

        return AdoptionOut.model_validate(adoption)

    return pay


def pay_mutant(app, description: str, bug: PayBug, hint: str = "") -> Mutant:
    return Mutant(description, lambda: replace_route(app, *ROUTE, pay_variant(bug)), hint)


def declined_mutants(app) -> list[Mutant]:
    return [
        pay_mutant(app, "the route answers 400 with a generic message when the card is declined",
                PayBug(declined=(400, "Bad request")), "check the exact status code, 402"),
        pay_mutant(app, "the route answers 402 but says \"Payment declined.\" without the provider's reason",
                PayBug(declined=(402, "Payment declined.")), "compare the whole detail"),
        pay_mutant(app, "the route marks the adoption paid although the charge was declined",
                PayBug(mark_paid_anyway=True), "read the adoption back: GET /adoptions/{id}"),
        pay_mutant(app, "the route sends the welcome e-mail although the charge was declined",
                PayBug(welcome_anyway=True), "check notifier.sent"),
        pay_mutant(app, "the route ignores your override and uses a gateway that accepts every card",
                PayBug(accept_every_card=True)),
    ]


def check_declined_payment() -> None:
    """Exercise 1 of lesson 02: the learner's ``test_declined_payment_keeps_the_reservation``."""
    __tracebackhide__ = True
    from app.main import app

    check_test("test_declined_payment_keeps_the_reservation", mutants=declined_mutants(app),
               namespace=sys._getframe(1).f_globals,
               hint="assert the status code, the detail, the adoption's status and the e-mails sent.")
