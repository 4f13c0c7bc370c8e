"""Kept for the lessons: the retry route as it is often written, WITHOUT a savepoint per attempt.

It calls ``session.rollback()`` after the ``IntegrityError``. In production that "works"
(it throws away the whole transaction, including any earlier work of the request). Under a
test fixture that owns the transaction it breaks the test: see notebook 05.
The real app does not mount this router; a notebook includes it into its own app.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Animal
from app.schemas import AnimalOut, ArrivalIn

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
