"""Reserve an animal (e-mail in the background), then pay the fee through the gateway."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, status
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import checkout
from app.config import get_settings
from app.db import get_session
from app.models import Adopter, Adoption, AdoptionStatus, Animal, AnimalStatus, utcnow
from app.routes.common import IdInPath, errors
from app.schemas import FEES_CENTS, AdoptionIn, AdoptionOut
from app.services.notifications import Notifier, get_notifier
from app.services.payments import PaymentDeclined, PaymentGateway, PaymentGatewayError, get_payment_gateway

router = APIRouter(prefix="/adoptions", tags=["adoptions"])
Session = Annotated[AsyncSession, Depends(get_session)]


async def _get_adoption(session: AsyncSession, adoption_id: int, *, for_update: bool = False) -> Adoption:
    query = select(Adoption).where(Adoption.id == adoption_id)
    if for_update:
        # Lock the adoption's row (not the joined animal/adopter rows) until commit.
        query = query.with_for_update(of=Adoption)
    adoption = await session.scalar(query)
    if adoption is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No adoption with id {adoption_id}.")
    return adoption


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AdoptionOut, responses=errors(400, 404, 409))
async def reserve(
    body: AdoptionIn,
    session: Session,
    background: BackgroundTasks,
    notifier: Annotated[Notifier, Depends(get_notifier)],
) -> Adoption:
    animal = await session.get(Animal, body.animal_id)
    if animal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No animal with id {body.animal_id}.")
    adopter = await session.get(Adopter, body.adopter_id)
    if adopter is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No adopter with id {body.adopter_id}.")

    # Check and write in ONE statement: the database changes the row only if it is still
    # available when the UPDATE runs. Of two concurrent requests, PostgreSQL makes the second
    # wait for the first's row lock, re-checks the condition and updates nothing.
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
    except IntegrityError:  # the index allowing one active adoption per animal
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"{animal.name} is not available (already reserved).")

    fee = adoption.fee_cents / 100
    background.add_task(
        notifier.send,
        adopter.email,
        f"{animal.name} is reserved for you",
        f"Please pay the adoption fee of EUR {fee:.2f} within {get_settings().reservation_ttl_hours} hours.",
    )
    return adoption


@router.get("/{adoption_id}", response_model=AdoptionOut, responses=errors(404))
async def get_adoption(adoption_id: IdInPath, session: Session) -> Adoption:
    return await _get_adoption(session, adoption_id)


@router.post("/{adoption_id}/pay", response_model=AdoptionOut, responses=errors(402, 404, 409, 502))
async def pay(
    adoption_id: IdInPath,
    session: Session,
    background: BackgroundTasks,
    gateway: Annotated[PaymentGateway, Depends(get_payment_gateway)],
    notifier: Annotated[Notifier, Depends(get_notifier)],
) -> Adoption:
    # Exactly once, even if this process or the database dies half-way (app/checkout.py):
    # 1. record the attempt ("paying", with its Idempotency-Key) and COMMIT; a concurrent
    #    payment of the same adoption cannot claim it too and answers 409;
    adoption = await _get_adoption(session, adoption_id)
    try:
        attempt = await checkout.begin_attempt(session, adoption, now=utcnow())
    except checkout.PaymentInProgress as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc), headers={"Retry-After": "5"})
    except checkout.NotPayable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc))
    # 2. call the provider with NO transaction open (no lock held while it works);
    try:
        charge = await checkout.charge_once(gateway, attempt)
    except PaymentDeclined as exc:
        await checkout.release(session, attempt, declined=True)
        raise HTTPException(status.HTTP_402_PAYMENT_REQUIRED, f"Payment declined: {exc}.")
    except PaymentGatewayError as exc:
        await checkout.release(session, attempt, declined=False)  # keeps the key: a retry cannot charge twice
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Payment failed, please retry later ({exc}).")
    # 3. write the outcome down in a second transaction.
    await checkout.record_charge(session, attempt, charge, now=utcnow())
    background.add_task(
        notifier.send,
        adoption.adopter.email,
        f"Welcome home, {adoption.animal.name}!",
        f"We received EUR {charge.amount_cents / 100:.2f} (payment {charge.id}).",
    )
    return adoption
