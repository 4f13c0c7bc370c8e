"""The broken adopters routes of lesson 16's exercise (see :mod:`course.checks.l16_mutants`).

A module of its own, imported only when a mutant is installed: importing the app's routes imports
``app.db``, whose engine takes ``DATABASE_URL`` at that moment, and the plugin is loaded before the
capstone's conftest has pointed ``DATABASE_URL`` at the worker's database.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy.exc import IntegrityError

from app.models import Adopter
from app.routes.adopters import Session
from app.routes.common import IdInPath
from app.schemas import AdopterIn


async def _create(session, name: str, stored: str, shown: str, conflict: int = status.HTTP_409_CONFLICT) -> dict:
    """The real route's steps, with the e-mail stored, the e-mail shown and the conflict status as given."""
    adopter = Adopter(name=name, email=stored)
    session.add(adopter)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(conflict, f"An adopter with e-mail {stored!r} already exists.")
    return {"id": adopter.id, "name": adopter.name, "email": shown}


async def create_adopter_without_lowercasing(body: AdopterIn, session: Session) -> dict:
    return await _create(session, body.name, stored=body.email, shown=body.email)  # the .lower() is gone


async def create_adopter_case_sensitive(body: AdopterIn, session: Session) -> dict:
    # stored as sent, so "ANA@..." and "ana@..." are different rows, but shown lower-cased
    return await _create(session, body.name, stored=body.email, shown=body.email.lower())


async def create_adopter_conflict_is_400(body: AdopterIn, session: Session) -> dict:
    email = body.email.lower()
    return await _create(session, body.name, stored=email, shown=email, conflict=status.HTTP_400_BAD_REQUEST)


async def get_adopter_or_a_placeholder(adopter_id: IdInPath, session: Session) -> dict:
    adopter = await session.get(Adopter, adopter_id)
    if adopter is None:
        return {"id": adopter_id, "name": "unknown", "email": "unknown@example.org"}  # 200 instead of 404
    return {"id": adopter.id, "name": adopter.name, "email": adopter.email}
