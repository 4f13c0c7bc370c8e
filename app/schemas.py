"""Request and response bodies. Pydantic answers malformed input with 422 before any route runs."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

#: The largest id the database can hold on every backend: ids are PostgreSQL ``integer``
#: (32-bit) columns. A larger id in a path or body is answered 422 before any query runs.
MAX_ID = 2**31 - 1


def storable_text(value: str) -> str:
    """Reject text that no database column can store, with a message that says why.

    PostgreSQL refuses the NUL character in text; a lone surrogate (e.g. ``"\\ud800"`` in
    JSON) has no UTF-8 form, so no driver can send it.
    """
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it contains a lone surrogate such as \\ud800)") from None
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), AfterValidator(storable_text)]
Id = Annotated[int, Field(gt=0, le=MAX_ID)]
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
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(storable_text)]
    email: Annotated[EmailStr, AfterValidator(storable_text)]


class AdopterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str


class AdoptionIn(BaseModel):
    animal_id: Id
    adopter_id: Id


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


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer the routes give themselves: one readable sentence."""

    detail: str
