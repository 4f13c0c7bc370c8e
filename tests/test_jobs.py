"""The expiry job, the payment sweep's schedule, their triggers and the lifespan-managed scheduler,
tested without waiting."""

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from apscheduler.triggers.interval import IntervalTrigger
from asgi_lifespan import LifespanManager

from app import jobs
from app.config import Settings, get_settings
from app.main import app as shelter_app
from app.models import Adopter, Adoption, AdoptionStatus, Animal

TTL = timedelta(hours=48)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


async def _reserve(session, name: str, reserved_at: datetime, status: str = AdoptionStatus.RESERVED) -> Adoption:
    adopter = Adopter(name=f"{name}'s adopter", email=f"{name.lower()}@example.org")
    adoption = Adoption(
        animal=Animal(name=name, species="dog", status="reserved"),
        adopter=adopter,
        fee_cents=15000,
        reserved_at=reserved_at,
        status=status,
    )
    session.add(adoption)
    await session.flush()
    return adoption


async def test_expires_only_unpaid_reservations_older_than_the_ttl(session):
    old = await _reserve(session, "Old", NOW - TTL - timedelta(minutes=1))
    fresh = await _reserve(session, "Fresh", NOW - TTL + timedelta(minutes=1))
    paid = await _reserve(session, "Paid", NOW - TTL * 2, status=AdoptionStatus.PAID)

    expired = await jobs.expire_unpaid_reservations(session, now=NOW, ttl=TTL)

    assert expired == [old.id]
    assert (old.status, old.animal.status) == ("expired", "available")
    assert (fresh.status, paid.status) == ("reserved", "paid")


async def test_a_payment_whose_outcome_is_unknown_is_never_expired(session):
    """``paying``: the provider may have charged it. Expiring it would free an animal someone paid for."""
    paying = await _reserve(session, "Paying", NOW - TTL * 2, status=AdoptionStatus.PAYING)
    paying.payment_key, paying.payment_started_at = f"adoption-{paying.id}", NOW - TTL * 2
    control = await _reserve(session, "Control", NOW - TTL * 2)  # as old, only reserved: expired

    assert await jobs.expire_unpaid_reservations(session, now=NOW, ttl=TTL) == [control.id]
    assert (paying.status, paying.animal.status) == ("paying", "reserved")


async def test_exactly_at_the_ttl_counts_as_expired(session):
    edge = await _reserve(session, "Edge", NOW - TTL)
    assert await jobs.expire_unpaid_reservations(session, now=NOW, ttl=TTL) == [edge.id]


async def test_scheduled_entry_point_uses_the_clock_and_commits(sessions, session, monkeypatch):
    """run_expiry_job opens its own session: give it an isolated one and move the clock."""
    adoption = await _reserve(session, "Clocky", NOW)
    await session.commit()  # releases the test's savepoint; still inside the outer transaction
    monkeypatch.setattr(jobs, "SessionLocal", sessions)

    with time_machine.travel(NOW + timedelta(hours=47), tick=False):
        assert await jobs.run_expiry_job() == []
    with time_machine.travel(NOW + timedelta(hours=49), tick=False):
        assert await jobs.run_expiry_job() == [adoption.id]

    await session.refresh(adoption)
    assert adoption.status == "expired"


def test_trigger_fires_every_hour_on_the_hour():
    at = datetime(2026, 11, 20, 12, 34, 56, tzinfo=timezone.utc)

    first = jobs.EXPIRY_TRIGGER.get_next_fire_time(None, at)
    second = jobs.EXPIRY_TRIGGER.get_next_fire_time(first, first + timedelta(seconds=1))

    assert first == datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc)
    assert second - first == timedelta(hours=1)


@pytest.fixture
def settings_env(monkeypatch):
    """Change settings through the environment for one test; the cache is reset both ways."""

    def apply(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


async def test_scheduler_is_off_unless_enabled():
    async with LifespanManager(shelter_app):
        assert shelter_app.state.scheduler is None


async def test_lifespan_starts_and_stops_the_scheduler_when_enabled(settings_env):
    settings_env(SCHEDULER_ENABLED="true")

    async with LifespanManager(shelter_app):
        scheduler = shelter_app.state.scheduler
        assert scheduler.running
        assert {job.id for job in scheduler.get_jobs()} == {"expire-unpaid-reservations", "reconcile-payments"}
        job = scheduler.get_job("expire-unpaid-reservations")
        assert job.func is jobs.run_expiry_job
        assert job.next_run_time.minute == 0 and job.next_run_time > datetime.now(timezone.utc)
        assert scheduler.get_job("reconcile-payments").func is jobs.run_reconcile_job
    assert not scheduler.running


def test_the_payment_sweep_runs_every_configured_interval_one_at_a_time(settings_env):
    settings_env(PAYMENT_SWEEP_MINUTES="7")
    sweep = jobs.build_scheduler().get_job("reconcile-payments")

    assert sweep.func is jobs.run_reconcile_job
    assert isinstance(sweep.trigger, IntervalTrigger) and sweep.trigger.interval == timedelta(minutes=7)
    assert (sweep.max_instances, sweep.coalesce) == (1, True)
    at = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    first = sweep.trigger.get_next_fire_time(None, at)
    assert sweep.trigger.get_next_fire_time(first, first) - first == timedelta(minutes=7)


def test_the_payment_sweep_runs_every_five_minutes_by_default(monkeypatch):
    monkeypatch.delenv("PAYMENT_SWEEP_MINUTES", raising=False)
    assert Settings().payment_sweep_minutes == 5


@pytest.mark.parametrize("minutes", ["0", "-1", "nan", "inf"])
def test_a_sweep_interval_that_is_not_positive_is_refused_with_a_readable_message(monkeypatch, minutes):
    monkeypatch.setenv("PAYMENT_SWEEP_MINUTES", minutes)
    with pytest.raises(ValueError, match=r"PAYMENT_SWEEP_MINUTES must be a finite number more than 0 \(the minutes between two payment sweeps\)"):
        Settings()



async def test_health_is_503_before_the_lifespan_and_after_it(client):
    from httpx import ASGITransport, AsyncClient

    from app.main import create_app

    assert (await client.get("/health")).json() == {"status": "ok", "scheduler": False}

    fresh = create_app()
    async with AsyncClient(transport=ASGITransport(app=fresh), base_url="http://test") as raw:
        assert (await raw.get("/health")).status_code == 503  # ASGITransport runs no lifespan
        async with LifespanManager(fresh):
            assert (await raw.get("/health")).status_code == 200
        assert (await raw.get("/health")).status_code == 503  # a stopped app must not look started
