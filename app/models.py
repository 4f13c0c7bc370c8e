"""Tables: animals, adopters, adoptions (a reservation that becomes an adoption when paid)."""

from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend.

    PostgreSQL keeps the time zone (``timestamptz``); SQLite has no such type and hands
    back naive datetimes. Store UTC everywhere and mark what comes back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class AnimalStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    ADOPTED = "adopted"


class AdoptionStatus(StrEnum):
    RESERVED = "reserved"  # waiting for the fee
    PAYING = "paying"  # a payment attempt is recorded; the provider's answer is not (yet) written down
    PAID = "paid"
    EXPIRED = "expired"  # unpaid for too long; the animal is available again


class Animal(Base):
    __tablename__ = "animals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    species: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=AnimalStatus.AVAILABLE)
    arrived_at: Mapped[datetime] = mapped_column(default=utcnow)


class Adopter(Base):
    __tablename__ = "adopters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)


class Adoption(Base):
    __tablename__ = "adoptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    animal_id: Mapped[int] = mapped_column(ForeignKey("animals.id"))
    adopter_id: Mapped[int] = mapped_column(ForeignKey("adopters.id"))
    fee_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=AdoptionStatus.RESERVED)
    reserved_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    payment_id: Mapped[str | None] = mapped_column(String(100), default=None)
    #: The Idempotency-Key of the current payment attempt, committed BEFORE the provider is
    #: called: after a crash, the provider is asked for the charge with this key instead of
    #: being charged again. Cleared only when the provider declined (no charge was made).
    payment_key: Mapped[str | None] = mapped_column(String(100), default=None)
    #: When a request took the attempt over (NULL: nobody is working on it). An attempt left
    #: "paying" longer than the provider's timeout belongs to a request that died.
    payment_started_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Attempts that the provider declined: each new attempt needs a new key.
    payment_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    animal: Mapped[Animal] = relationship(lazy="joined")
    adopter: Mapped[Adopter] = relationship(lazy="joined")

    __table_args__ = (
        # At most one active (reserved or paid) adoption per animal, enforced by the database
        # itself: two requests that both saw the animal available cannot both insert one.
        # A partial unique index: expired adoptions do not count (SQLite and PostgreSQL both
        # support `WHERE` on an index).
        Index(
            "uq_adoptions_one_active_per_animal",
            "animal_id",
            unique=True,
            sqlite_where=text("status != 'expired'"),
            postgresql_where=text("status != 'expired'"),
        ),
    )
