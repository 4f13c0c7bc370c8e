"""Kept for the lessons: the retry route as it is often written, WITHOUT a savepoint per attempt.

It calls ``session.rollback()`` after the ``IntegrityError``. In production that "works"
(it throws away the whole transaction, including any earlier work of the request). Under a
test fixture that owns the transaction it breaks the test: see notebook 07.
The real app does not mount this router; a notebook includes it into its own app.
``POST /naive/adoptions`` is the reservation without the database's guarantees (notebook 11).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Adoption, Animal, AnimalStatus
from app.schemas import FEES_CENTS, AdoptionIn, AdoptionOut, AnimalOut, ArrivalIn

router = APIRouter(prefix="/naive", tags=["naive (for the lessons)"])


@router.post("/arrivals", status_code=status.HTTP_201_CREATED, response_model=AnimalOut)
async def register_arrival_naive(body: ArrivalIn, session: Annotated[AsyncSession, Depends(get_session)]) -> Animal:
    for name in body.candidates:
        animal = Animal(name=name, species=body.species)
        session.add(animal)
        try:
            await session.flush()
        except IntegrityError:
            await session.rollback()  # <- rolls back everything, not just this attempt
            continue
        await session.commit()
        return animal
    raise HTTPException(status.HTTP_409_CONFLICT, f"All candidate names are taken: {', '.join(body.candidates)}.")


# --- check-then-write: the reservation as it is often written (lesson 11 races it) ----------
#
# Two steps, each a plain function so a lesson can run them for two sessions in a chosen order.
# Between the check and the write nothing stops another request from passing the same check:
# the real route (app/routes/adoptions.py) checks and writes in one conditional UPDATE.


async def check_available(session: AsyncSession, animal_id: int) -> Animal:
    """Step 1: read the animal; 409 unless it is available."""
    animal = await session.get(Animal, animal_id)
    if animal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No animal with id {animal_id}.")
    if animal.status != AnimalStatus.AVAILABLE:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{animal.name} is not available (status: {animal.status}).")
    return animal


async def write_reservation(session: AsyncSession, animal: Animal, adopter_id: int) -> Adoption:
    """Step 2: mark the animal reserved, add the adoption, commit."""
    animal.status = AnimalStatus.RESERVED
    adoption = Adoption(animal_id=animal.id, adopter_id=adopter_id, fee_cents=FEES_CENTS[animal.species])
    session.add(adoption)
    await session.commit()
    return adoption


@router.post("/adoptions", status_code=status.HTTP_201_CREATED, response_model=AdoptionOut)
async def reserve_naive(body: AdoptionIn, session: Annotated[AsyncSession, Depends(get_session)]) -> Adoption:
    animal = await check_available(session, body.animal_id)
    return await write_reservation(session, animal, body.adopter_id)
