from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Animal
from app.routes.common import IdInPath, errors
from app.schemas import AnimalIn, AnimalOut, ArrivalIn, Species

router = APIRouter(prefix="/animals", tags=["animals"])
Session = Annotated[AsyncSession, Depends(get_session)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AnimalOut, responses=errors(400, 409))
async def create_animal(body: AnimalIn, session: Session) -> Animal:
    animal = Animal(name=body.name, species=body.species)
    session.add(animal)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"An animal named {body.name!r} already exists.")
    return animal


@router.post("/arrivals", status_code=status.HTTP_201_CREATED, response_model=AnimalOut, responses=errors(400, 409))
async def register_arrival(body: ArrivalIn, session: Session) -> Animal:
    """Register a new arrival under the first candidate name nobody has yet.

    Each attempt runs in its own SAVEPOINT (``begin_nested``): a duplicate name rolls back
    only that attempt, and the session, its transaction and earlier work stay usable.
    """
    for name in body.candidates:
        animal = Animal(name=name, species=body.species)
        try:
            async with session.begin_nested():
                session.add(animal)
        except IntegrityError:
            continue  # the savepoint is rolled back; try the next name
        await session.commit()
        return animal
    raise HTTPException(
        status.HTTP_409_CONFLICT, f"All candidate names are taken: {', '.join(body.candidates)}."
    )


@router.get("", response_model=list[AnimalOut])
async def list_animals(session: Session, species: Species | None = None) -> list[Animal]:
    query = select(Animal).order_by(Animal.name)
    if species is not None:
        query = query.where(Animal.species == species)
    return list(await session.scalars(query))


@router.get("/{animal_id}", response_model=AnimalOut, responses=errors(404))
async def get_animal(animal_id: IdInPath, session: Session) -> Animal:
    animal = await session.get(Animal, animal_id)
    if animal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No animal with id {animal_id}.")
    return animal
