"""Exactly-once payment: the attempt is on record before the provider is called.

A database transaction cannot span a network call. If it did, the provider's charge could
succeed and the commit then fail (the database restarts, the process is killed): money taken,
no record of it, and a retry would charge again. And while it waited for the provider, the
transaction would hold its locks (on SQLite: the only write lock, so every other request waits).
So a payment is three short steps, none of them open across the provider call:

1. ``begin_attempt``: one transaction claims the adoption (``reserved`` -> ``paying``, with the
   attempt's Idempotency-Key and the time it started) and COMMITS. Of two concurrent requests
   only one can claim it (a conditional UPDATE); the other answers 409.
2. The provider is called with that key and no transaction open (``charge_once``).
3. ``record_charge`` (or ``release``) writes the outcome in a second transaction.

If the process or the database dies between 2 and 3, the adoption stays ``paying`` with its key.
A retry once the attempt is stale, or the sweep (``reconcile_payments``, a job), asks the
provider for the charge made with that key: found -> paid, without charging again. The provider
honours keys, so even charging again with the same key could not make a second charge; a new
key is only made after the provider declined (no charge exists for the old one).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import get_settings
from app.models import Adoption, AdoptionStatus, Animal, AnimalStatus
from app.services.payments import Charge, PaymentGateway, PaymentGatewayError


class NotPayable(Exception):
    """The adoption is paid or expired (409)."""


class PaymentInProgress(Exception):
    """Another request is paying this adoption right now (409, retry later)."""


@dataclass
class Attempt:
    adoption: Adoption
    key: str  #: the Idempotency-Key sent to the provider
    reconcile: bool  #: an earlier attempt died with this key: ask the provider before charging


def pending_timeout() -> timedelta:
    """How long an attempt counts as being worked on (longer than any provider call may take)."""
    return timedelta(seconds=get_settings().payment_pending_seconds)


def _new_key(adoption: Adoption) -> str:
    attempt = adoption.payment_attempts + 1
    return f"adoption-{adoption.id}" if attempt == 1 else f"adoption-{adoption.id}-{attempt}"


async def begin_attempt(session: AsyncSession, adoption: Adoption, *, now: datetime) -> Attempt:
    """Claim ``adoption`` for one payment attempt and COMMIT, so the attempt is on record."""
    seen_status, seen_started = adoption.status, adoption.payment_started_at
    if seen_status == AdoptionStatus.PAYING and seen_started is not None and seen_started > now - pending_timeout():
        raise PaymentInProgress(f"A payment of adoption {adoption.id} is in progress; retry in a few seconds.")
    if seen_status not in (AdoptionStatus.RESERVED, AdoptionStatus.PAYING):
        raise NotPayable(f"Adoption {adoption.id} is {seen_status}, not payable.")
    # A key whose outcome is unknown (a crash, a provider error) is reused, never replaced.
    key = adoption.payment_key or _new_key(adoption)
    same_started = Adoption.payment_started_at.is_(None) if seen_started is None else Adoption.payment_started_at == seen_started
    claimed = await session.execute(
        update(Adoption)
        .where(Adoption.id == adoption.id, Adoption.status == seen_status, same_started)
        .values(status=AdoptionStatus.PAYING, payment_key=key, payment_started_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(adoption)  # in the same transaction: what we claimed, or who beat us
    await session.commit()
    if claimed.rowcount != 1:  # another request claimed it between our read and our UPDATE
        if adoption.status == AdoptionStatus.PAYING:
            raise PaymentInProgress(f"A payment of adoption {adoption.id} is in progress; retry in a few seconds.")
        raise NotPayable(f"Adoption {adoption.id} is {adoption.status}, not payable.")
    return Attempt(adoption, key, reconcile=seen_status == AdoptionStatus.PAYING)


async def charge_once(gateway: PaymentGateway, attempt: Attempt) -> Charge:
    """The provider's charge for this attempt (no transaction may be open while this runs)."""
    if attempt.reconcile:
        charge = await gateway.find_charge(attempt.key)
        if charge is not None:
            return charge
    return await gateway.charge(amount_cents=attempt.adoption.fee_cents, reference=attempt.key)


async def record_charge(session: AsyncSession, attempt: Attempt, charge: Charge, *, now: datetime) -> None:
    """Write the charge down: the adoption is paid, the animal adopted. Commits."""
    adoption = attempt.adoption
    done = await session.execute(
        update(Adoption)
        .where(Adoption.id == adoption.id, Adoption.status == AdoptionStatus.PAYING, Adoption.payment_key == attempt.key)
        .values(status=AdoptionStatus.PAID, paid_at=now, payment_id=charge.id, payment_started_at=None)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount == 1:  # 0: a sweep recorded the same charge first
        await session.execute(update(Animal).where(Animal.id == adoption.animal_id).values(status=AnimalStatus.ADOPTED))
    await session.refresh(adoption)
    await session.refresh(adoption.animal)
    await session.commit()


async def release(session: AsyncSession, attempt: Attempt, *, declined: bool) -> None:
    """The attempt ended without a charge on record: the adoption is ``reserved`` again. Commits.

    ``declined``: the provider made no charge, the next attempt gets a new key. Otherwise the
    outcome is unknown (a timeout, an unreadable answer) and the key is kept, so that the next
    attempt gets the same charge back if there was one.
    """
    values = {"status": AdoptionStatus.RESERVED, "payment_started_at": None}
    if declined:
        values |= {"payment_key": None, "payment_attempts": Adoption.payment_attempts + 1}
    await session.execute(
        update(Adoption)
        .where(Adoption.id == attempt.adoption.id, Adoption.status == AdoptionStatus.PAYING, Adoption.payment_key == attempt.key)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(attempt.adoption)
    await session.commit()


async def reconcile_payments(sessions: async_sessionmaker, gateway: PaymentGateway, *, now: datetime) -> dict[int, str]:
    """The sweep: settle every attempt nobody is working on, by asking the provider, never charging.

    Candidates: adoptions left ``paying`` longer than ``pending_timeout()`` (their request died),
    and ``reserved`` ones that keep a key (an attempt whose outcome was unknown). The provider has
    a charge with the key -> ``paid``; it has none -> ``reserved`` (the key is kept). Returns
    ``{adoption id: "paid" | "reserved" | "unknown"}`` ("unknown": the provider did not answer).
    """
    async with sessions() as session:
        candidates = list(await session.scalars(
            select(Adoption.id).where(or_(
                (Adoption.status == AdoptionStatus.PAYING)
                & or_(Adoption.payment_started_at.is_(None), Adoption.payment_started_at <= now - pending_timeout()),
                (Adoption.status == AdoptionStatus.RESERVED) & Adoption.payment_key.is_not(None),
            )).order_by(Adoption.id)
        ))
    outcomes = {}
    for adoption_id in candidates:
        async with sessions() as session:
            adoption = await session.get(Adoption, adoption_id)
            try:
                attempt = await begin_attempt(session, adoption, now=now)
            except (PaymentInProgress, NotPayable):
                continue  # a request took it over meanwhile
            try:
                charge = await gateway.find_charge(attempt.key)
            except PaymentGatewayError:
                await release(session, attempt, declined=False)
                outcomes[adoption_id] = "unknown"
                continue
            if charge is None:
                await release(session, attempt, declined=False)
            else:
                await record_charge(session, attempt, charge, now=now)
            outcomes[adoption_id] = attempt.adoption.status
    return outcomes

