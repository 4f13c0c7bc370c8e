"""Request and response bodies. Pydantic answers malformed input with 422 before any route runs."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Species = Literal["dog", "cat", "rabbit", "bird"]

#: Adoption fee per species, in cents.
FEES_CENTS: dict[str, int] = {"dog": 15000, "cat": 9000, "rabbit": 4000, "bird": 2500}


class AnimalIn(BaseModel):
    name: Name
    species: Species


class ArrivalIn(BaseModel):
    """A new arrival gets the first free name from ``candidates``."""

    species: Species
    candidates: list[Name] = Field(min_length=1, max_length=10)


class AnimalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    species: str
    status: str
    arrived_at: datetime


class AdopterIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    email: EmailStr


class AdopterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str


class AdoptionIn(BaseModel):
    animal_id: int = Field(gt=0)
    adopter_id: int = Field(gt=0)


class AdoptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    animal_id: int
    adopter_id: int
    fee_cents: int
    status: str
    reserved_at: datetime
    paid_at: datetime | None
    payment_id: str | None
