"""The benchmark's app: the shelter app (all its routes) plus CRUD routes for the extra tables.

Every route takes its session from ``app.db.get_session``, the app's own dependency, so one
``dependency_overrides`` entry (what every strategy installs) covers the whole API.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.main import create_app
from app.models import Adopter, Animal
from bench.schema import (
    Donation,
    Donor,
    Event,
    EventRegistration,
    Kennel,
    KennelAssignment,
    MedicalRecord,
    Staff,
    Vaccination,
    metadata,
)

Session = Annotated[AsyncSession, Depends(get_session)]
router = APIRouter()


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class KennelIn(BaseModel):
    code: str = Field(min_length=1, max_length=20)
    building: str = Field(min_length=1, max_length=50)
    capacity: int = Field(gt=0, le=20)


class KennelOut(Out):
    id: int
    code: str
    building: str
    capacity: int
    occupants: list[int] = []


class AssignmentIn(BaseModel):
    animal_id: int = Field(gt=0)


class AssignmentOut(Out):
    id: int
    kennel_id: int
    animal_id: int
    since: datetime


class StaffIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    email: EmailStr
    role: str = Field(pattern="^(vet|keeper|office)$")


class StaffOut(Out):
    id: int
    name: str
    email: str
    role: str


class MedicalRecordIn(BaseModel):
    vet_id: int = Field(gt=0)
    weight_grams: int = Field(gt=0)
    diagnosis: str = Field(min_length=1, max_length=200)
    notes: str = ""


class MedicalRecordOut(Out):
    id: int
    animal_id: int
    vet_id: int
    weight_grams: int
    diagnosis: str
    notes: str
    recorded_at: datetime


class VaccinationIn(BaseModel):
    vaccine: str = Field(min_length=1, max_length=50)
    batch: str = Field(min_length=1, max_length=30)
    given_by: int | None = None


class VaccinationOut(Out):
    id: int
    animal_id: int
    vaccine: str
    batch: str
    given_by: int | None
    given_at: datetime


class DonorIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    email: EmailStr


class DonorOut(Out):
    id: int
    name: str
    email: str
    total_cents: int = 0
    donations: int = 0


class DonationIn(BaseModel):
    donor_id: int = Field(gt=0)
    amount_cents: int = Field(gt=0)
    earmarked_animal_id: int | None = None
    note: str = ""


class DonationOut(Out):
    id: int
    donor_id: int
    amount_cents: int
    earmarked_animal_id: int | None
    note: str


class EventIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    starts_at: datetime
    location: str = Field(min_length=1, max_length=100)
    capacity: int = Field(gt=0)


class EventOut(Out):
    id: int
    title: str
    starts_at: datetime
    location: str
    capacity: int
    registered: int = 0


class RegistrationIn(BaseModel):
    adopter_id: int = Field(gt=0)


class RegistrationOut(Out):
    id: int
    event_id: int
    adopter_id: int


async def _get(session: AsyncSession, model, ident: int):
    row = await session.get(model, ident)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No {model.__tablename__} row with id {ident}.")
    return row


async def _commit_or_409(session: AsyncSession, what: str) -> None:
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"{what} already exists.")


@router.post("/kennels", status_code=201, response_model=KennelOut)
async def create_kennel(body: KennelIn, session: Session) -> Kennel:
    kennel = Kennel(**body.model_dump())
    session.add(kennel)
    await _commit_or_409(session, f"Kennel {body.code!r}")
    return kennel


@router.get("/kennels/{kennel_id}", response_model=KennelOut)
async def get_kennel(kennel_id: int, session: Session) -> KennelOut:
    kennel = await _get(session, Kennel, kennel_id)
    occupants = await session.scalars(
        select(KennelAssignment.animal_id)
        .where(KennelAssignment.kennel_id == kennel_id, KennelAssignment.until.is_(None))
        .order_by(KennelAssignment.id)
    )
    return KennelOut(id=kennel.id, code=kennel.code, building=kennel.building, capacity=kennel.capacity,
                     occupants=list(occupants))


@router.post("/kennels/{kennel_id}/assignments", status_code=201, response_model=AssignmentOut)
async def assign_kennel(kennel_id: int, body: AssignmentIn, session: Session) -> KennelAssignment:
    kennel = await _get(session, Kennel, kennel_id)
    await _get(session, Animal, body.animal_id)
    occupied = await session.scalar(
        select(func.count()).where(KennelAssignment.kennel_id == kennel_id, KennelAssignment.until.is_(None))
    )
    if occupied >= kennel.capacity:
        raise HTTPException(status.HTTP_409_CONFLICT, f"Kennel {kennel.code} is full.")
    assignment = KennelAssignment(kennel_id=kennel_id, animal_id=body.animal_id)
    session.add(assignment)
    await session.commit()
    return assignment


@router.post("/staff", status_code=201, response_model=StaffOut)
async def create_staff(body: StaffIn, session: Session) -> Staff:
    member = Staff(name=body.name, email=body.email.lower(), role=body.role)
    session.add(member)
    await _commit_or_409(session, f"Staff member {member.email!r}")
    return member


@router.get("/staff/{staff_id}", response_model=StaffOut)
async def get_staff(staff_id: int, session: Session) -> Staff:
    return await _get(session, Staff, staff_id)


@router.post("/animals/{animal_id}/medical-records", status_code=201, response_model=MedicalRecordOut)
async def add_medical_record(animal_id: int, body: MedicalRecordIn, session: Session) -> MedicalRecord:
    await _get(session, Animal, animal_id)
    vet = await _get(session, Staff, body.vet_id)
    if vet.role != "vet":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{vet.name} is not a vet.")
    record = MedicalRecord(animal_id=animal_id, **body.model_dump())
    session.add(record)
    await session.commit()
    return record


@router.get("/animals/{animal_id}/medical-records", response_model=list[MedicalRecordOut])
async def list_medical_records(animal_id: int, session: Session) -> list[MedicalRecord]:
    await _get(session, Animal, animal_id)
    rows = await session.scalars(
        select(MedicalRecord).where(MedicalRecord.animal_id == animal_id).order_by(MedicalRecord.id)
    )
    return list(rows)


@router.post("/animals/{animal_id}/vaccinations", status_code=201, response_model=VaccinationOut)
async def add_vaccination(animal_id: int, body: VaccinationIn, session: Session) -> Vaccination:
    await _get(session, Animal, animal_id)
    if body.given_by is not None:
        await _get(session, Staff, body.given_by)
    vaccination = Vaccination(animal_id=animal_id, **body.model_dump())
    session.add(vaccination)
    await _commit_or_409(session, f"Vaccination {body.vaccine}/{body.batch}")
    return vaccination


@router.get("/animals/{animal_id}/vaccinations", response_model=list[VaccinationOut])
async def list_vaccinations(animal_id: int, session: Session) -> list[Vaccination]:
    await _get(session, Animal, animal_id)
    rows = await session.scalars(select(Vaccination).where(Vaccination.animal_id == animal_id).order_by(Vaccination.id))
    return list(rows)


@router.post("/donors", status_code=201, response_model=DonorOut)
async def create_donor(body: DonorIn, session: Session) -> Donor:
    donor = Donor(name=body.name, email=body.email.lower())
    session.add(donor)
    await _commit_or_409(session, f"Donor {donor.email!r}")
    return donor


@router.get("/donors/{donor_id}", response_model=DonorOut)
async def get_donor(donor_id: int, session: Session) -> DonorOut:
    donor = await _get(session, Donor, donor_id)
    count, total = (
        await session.execute(
            select(func.count(Donation.id), func.coalesce(func.sum(Donation.amount_cents), 0)).where(
                Donation.donor_id == donor_id
            )
        )
    ).one()
    return DonorOut(id=donor.id, name=donor.name, email=donor.email, total_cents=total, donations=count)


@router.post("/donations", status_code=201, response_model=DonationOut)
async def create_donation(body: DonationIn, session: Session) -> Donation:
    await _get(session, Donor, body.donor_id)
    if body.earmarked_animal_id is not None:
        await _get(session, Animal, body.earmarked_animal_id)
    donation = Donation(**body.model_dump())
    session.add(donation)
    await session.commit()
    return donation


@router.post("/events", status_code=201, response_model=EventOut)
async def create_event(body: EventIn, session: Session) -> Event:
    event = Event(**body.model_dump())
    session.add(event)
    await session.commit()
    return event


@router.get("/events/{event_id}", response_model=EventOut)
async def get_event(event_id: int, session: Session) -> EventOut:
    event = await _get(session, Event, event_id)
    registered = await session.scalar(select(func.count()).where(EventRegistration.event_id == event_id))
    return EventOut(id=event.id, title=event.title, starts_at=event.starts_at, location=event.location,
                    capacity=event.capacity, registered=registered)


@router.post("/events/{event_id}/registrations", status_code=201, response_model=RegistrationOut)
async def register(event_id: int, body: RegistrationIn, session: Session) -> EventRegistration:
    event = await _get(session, Event, event_id)
    await _get(session, Adopter, body.adopter_id)
    registered = await session.scalar(select(func.count()).where(EventRegistration.event_id == event_id))
    if registered >= event.capacity:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{event.title} is fully booked.")
    registration = EventRegistration(event_id=event_id, adopter_id=body.adopter_id)
    session.add(registration)
    await _commit_or_409(session, "This registration")
    return registration


@router.get("/bench/row-counts")
async def row_counts(session: Session) -> dict[str, int]:
    """Rows per table, as the app's session sees them: the suite's isolation checks read this."""
    return {t.name: await session.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


def create_bench_app() -> FastAPI:
    app = create_app()
    app.title = "Paws & Whiskers (benchmark edition, 12 tables)"
    app.include_router(router)
    return app
