"""Lesson 12 (mocking): broken versions of the payment path for the declined-card exercise.

``check_declined_card_test(app)`` runs the learner's ``test_declined_payment_is_402_and_changes_nothing``
against the real app (it must pass), then with each mutant installed (it must fail): a gateway
that accepts every card, a pay route that marks the adoption paid although the charge was
declined, and one that sends the welcome mail anyway.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any
from unittest.mock import patch

from fastapi import BackgroundTasks, Depends, HTTPException, status

from app.models import AdoptionStatus
from app.routes.adoptions import Session, _get_adoption
from app.services.notifications import Notifier, get_notifier
from app.services.payments import Charge, PaymentDeclined, PaymentGateway, PaymentGatewayError, get_payment_gateway
from course.exercise import Mutant, check_test, replace_route

#: -vvv (with the -q of the notebook runs: verbosity 2): pytest prints the failed assertion of the summary line in full, not cut to the terminal width
SUMMARY_IN_FULL = ("-vvv",)

PAY_ROUTE = ("POST", "/adoptions/{adoption_id}/pay")
Gateway = Annotated[PaymentGateway, Depends(get_payment_gateway)]
Mailer = Annotated[Notifier, Depends(get_notifier)]


async def accept_every_card(self: PaymentGateway, *, amount_cents: int, reference: str) -> Charge:
    return Charge(id="ch_accepted", amount_cents=amount_cents)


async def pay_marks_paid_anyway(adoption_id: int, session: Session, background: BackgroundTasks,
                                gateway: Gateway, notifier: Mailer):
    adoption = await _get_adoption(session, adoption_id)
    try:
        await gateway.charge(amount_cents=adoption.fee_cents, reference=f"adoption-{adoption.id}")
    except PaymentDeclined as exc:
        adoption.status = AdoptionStatus.PAID  # <- the bug
        await session.commit()
        raise HTTPException(status.HTTP_402_PAYMENT_REQUIRED, f"Payment declined: {exc}.") from None
    except PaymentGatewayError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Payment failed, please retry later ({exc}).") from None
    raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, "this broken version only handles declined cards")


async def pay_mails_anyway(adoption_id: int, session: Session, background: BackgroundTasks,
                           gateway: Gateway, notifier: Mailer):
    adoption = await _get_adoption(session, adoption_id)
    try:
        await gateway.charge(amount_cents=adoption.fee_cents, reference=f"adoption-{adoption.id}")
    except PaymentDeclined as exc:
        await notifier.send(adoption.adopter.email, f"Welcome home, {adoption.animal.name}!", "We received your payment.")
        raise HTTPException(status.HTTP_402_PAYMENT_REQUIRED, f"Payment declined: {exc}.") from None
    except PaymentGatewayError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Payment failed, please retry later ({exc}).") from None
    raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, "this broken version only handles declined cards")


def declined_card_mutants(app: Any) -> list[Mutant]:
    method, path = PAY_ROUTE
    return [
        Mutant("the gateway accepts every card", lambda: patch.object(PaymentGateway, "charge", accept_every_card),
               hint="assert the status code and the detail of the answer"),
        Mutant("the route marks the adoption paid although the charge was declined",
               lambda: replace_route(app, method, path, pay_marks_paid_anyway),
               hint="read the adoption back in a new session and check its status"),
        Mutant("the route sends the welcome mail anyway", lambda: replace_route(app, method, path, pay_mails_anyway),
               hint="check the subjects in notifier.sent"),
    ]


def check_declined_card_test(app: Any) -> None:
    """Exercise 1: the learner's test must pass on the real app and fail on each mutant."""
    __tracebackhide__ = True
    check_test(
        "test_declined_payment_is_402_and_changes_nothing",
        mutants=declined_card_mutants(app),
        hint="a declined card changes nothing: check the answer, the adoption's status and the mails sent.",
        args=SUMMARY_IN_FULL,
        namespace=sys._getframe(1).f_globals,
    )
