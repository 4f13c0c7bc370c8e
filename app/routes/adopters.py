from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Adopter
from app.routes.common import IdInPath, errors
from app.schemas import AdopterIn, AdopterOut

router = APIRouter(prefix="/adopters", tags=["adopters"])
Session = Annotated[AsyncSession, Depends(get_session)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AdopterOut, responses=errors(400, 409))
async def create_adopter(body: AdopterIn, session: Session) -> Adopter:
    adopter = Adopter(name=body.name, email=body.email.lower())
    session.add(adopter)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"An adopter with e-mail {adopter.email!r} already exists.")
    return adopter


@router.get("/{adopter_id}", response_model=AdopterOut, responses=errors(404))
async def get_adopter(adopter_id: IdInPath, session: Session) -> Adopter:
    adopter = await session.get(Adopter, adopter_id)
    if adopter is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No adopter with id {adopter_id}.")
    return adopter
