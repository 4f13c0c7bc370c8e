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


def _name(dependency) -> str:
    return getattr(dependency, "__name__", repr(dependency))


def leftover_overrides(app, before: dict):
    """An ``after_run`` hook: the overrides a run left behind are put back as they were, and named.

    The technique of the exercise is an override that is *always* removed: a test that sets
    ``app.dependency_overrides[...]`` and never removes it (or removes it only when it passes)
    changes every later request of the notebook. The check restores the dictionary itself, so the
    cells after the exercise run as they would after a right answer.
    """

    def inspect(when: str) -> str | None:
        overrides = app.dependency_overrides
        changed = [key for key in set(overrides) | set(before)
                   if overrides.get(key, None) is not before.get(key, None)]
        if not changed:
            return None
        overrides.clear()
        overrides.update(before)
        names = ", ".join(f"app.dependency_overrides[{_name(key)}]" for key in sorted(changed, key=_name))
        failed = "" if when == "against the real app" else (
            f" It happened in the run {when}, where your test failed before reaching its clean-up line:"
            " a `del` or `.clear()` at the end of a test does not run when an assertion fails.")
        return (f"your test set {names} and the override was left in place after the test ended "
                f"(run {when}), so every later request in this notebook would still get your replacement; "
                f"the check removed it.{failed} Install it with `with override_dependency(app, "
                f"get_payment_gateway, lambda: DecliningGateway()):` around the request: the block puts the "
                "dictionary back whatever happens.")

    return inspect


def check_declined_payment() -> None:
    """Exercise 1 of lesson 02: the learner's ``test_declined_payment_keeps_the_reservation``.

    Technique: an override keyed by the very dependency, installed for one request and always
    removed. Mutants catch weak assertions and an override the route never sees; the
    ``after_run`` hook catches an override left in the global dictionary.
    """
    __tracebackhide__ = True
    from app.main import app

    check_test("test_declined_payment_keeps_the_reservation", mutants=declined_mutants(app),
               namespace=sys._getframe(1).f_globals,
               hint="assert the status code, the detail, the adoption's status and the e-mails sent.",
               after_run=leftover_overrides(app, dict(app.dependency_overrides)))
