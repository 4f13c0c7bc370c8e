"""The benchmark's schema: the shelter's own 3 tables plus 9 that a real shelter also has.

A cleanup strategy's cost grows with the number of tables (DELETE, TRUNCATE and drop/create
touch every one of them; a rollback does not care), so measuring on the app's 3 tables
would flatter the slow strategies. ``metadata`` holds 12 tables:

* ``animals``, ``adopters``, ``adoptions``: copies of ``app.models.Base.metadata``'s tables
  (same names, columns and constraints), so the app's own routes and models work unchanged;
* kennels, kennel assignments, staff, medical records, vaccinations, donors, donations,
  events and event registrations, with foreign keys, unique constraints and indexes.

It is a separate ``MetaData`` on purpose: importing this module never adds tables to the
app's ``Base.metadata`` (the reference suite creates and drops exactly the app's tables).
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.models import Base as AppBase
from app.models import UTCDateTime, utcnow

metadata = MetaData()
for _table in AppBase.metadata.sorted_tables:
    _table.to_metadata(metadata)

APP_TABLES = tuple(t.name for t in AppBase.metadata.sorted_tables)


class BenchBase(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime}


class Kennel(BenchBase):
    __tablename__ = "kennels"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    building: Mapped[str] = mapped_column(String(50))
    capacity: Mapped[int] = mapped_column(Integer)


class KennelAssignment(BenchBase):
    __tablename__ = "kennel_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    kennel_id: Mapped[int] = mapped_column(ForeignKey("kennels.id"), index=True)
    animal_id: Mapped[int] = mapped_column(ForeignKey("animals.id"), index=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime | None] = mapped_column(default=None)


class Staff(BenchBase):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(20))


class MedicalRecord(BenchBase):
    __tablename__ = "medical_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    animal_id: Mapped[int] = mapped_column(ForeignKey("animals.id"), index=True)
    vet_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    weight_grams: Mapped[int] = mapped_column(Integer)
    diagnosis: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")


class Vaccination(BenchBase):
    __tablename__ = "vaccinations"
    __table_args__ = (UniqueConstraint("animal_id", "vaccine", "batch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    animal_id: Mapped[int] = mapped_column(ForeignKey("animals.id"), index=True)
    vaccine: Mapped[str] = mapped_column(String(50))
    batch: Mapped[str] = mapped_column(String(30))
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    given_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), default=None)


class Donor(BenchBase):
    __tablename__ = "donors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)


class Donation(BenchBase):
    __tablename__ = "donations"

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    earmarked_animal_id: Mapped[int | None] = mapped_column(ForeignKey("animals.id"), default=None)
    note: Mapped[str] = mapped_column(String(200), default="")


class Event(BenchBase):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_starts_at", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime]
    location: Mapped[str] = mapped_column(String(100))
    capacity: Mapped[int] = mapped_column(Integer)


class EventRegistration(BenchBase):
    __tablename__ = "event_registrations"
    __table_args__ = (UniqueConstraint("event_id", "adopter_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    adopter_id: Mapped[int] = mapped_column(ForeignKey("adopters.id"), index=True)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


TABLES = tuple(t.name for t in metadata.sorted_tables)
assert len(TABLES) >= 10 and set(APP_TABLES) <= set(TABLES), TABLES
