"""The scheduled jobs: expire reservations whose fee was not paid in time, and sweep payments.

The work is a plain async function of (session, now) so tests call it directly with any
``now``; the scheduler only decides *when* it runs (``EXPIRY_TRIGGER``, and every
``PAYMENT_SWEEP_MINUTES`` for the sweep) and is started by the lifespan only where
``SCHEDULER_ENABLED`` is true. Every worker that has it on runs both jobs: the sweep is safe to
run twice at once (``reconcile_payments`` claims an attempt with a conditional UPDATE and only
asks the provider, never charges), and so is the expiry (one UPDATE per reservation).
"""

from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.db import SessionLocal
from app.models import Adoption, AdoptionStatus, AnimalStatus, utcnow

#: Every hour, on the hour, in UTC.
EXPIRY_TRIGGER = CronTrigger(minute=0, timezone="UTC")


async def expire_unpaid_reservations(session: AsyncSession, *, now: datetime, ttl: timedelta) -> list[int]:
    """Expire reservations older than ``ttl`` at ``now``; their animals become available again.

    Returns the ids of the expired adoptions. The caller commits. Only ``reserved`` ones: a
    ``paying`` adoption's outcome is unknown (the provider may have charged it), the sweep settles it.
    """
    stale = await session.scalars(
        select(Adoption).where(Adoption.status == AdoptionStatus.RESERVED, Adoption.reserved_at <= now - ttl)
    )
    expired = []
    for adoption in stale:
        adoption.status = AdoptionStatus.EXPIRED
        adoption.animal.status = AnimalStatus.AVAILABLE
        expired.append(adoption.id)
    return expired


async def run_expiry_job() -> list[int]:
    """What the scheduler calls: its own session, the real clock, one commit."""
    async with SessionLocal() as session:
        expired = await expire_unpaid_reservations(
            session, now=utcnow(), ttl=timedelta(hours=get_settings().reservation_ttl_hours)
        )
        await session.commit()
    return expired


def build_scheduler() -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(run_expiry_job, EXPIRY_TRIGGER, id="expire-unpaid-reservations", replace_existing=True)
    scheduler.add_job(
        run_reconcile_job,
        IntervalTrigger(minutes=get_settings().payment_sweep_minutes, timezone="UTC"),
        id="reconcile-payments",
        max_instances=1,  # a sweep that is still running is not started again beside itself
        coalesce=True,  # runs missed while the process slept become one run, not a burst
        replace_existing=True,
    )
    return scheduler


async def run_reconcile_job() -> dict[int, str]:
    """The payment sweep (``app.checkout.reconcile_payments``) with the app's own sessions and
    provider, the real clock. The scheduler runs it every ``PAYMENT_SWEEP_MINUTES``; by hand:
    ``python -m app reconcile``."""
    import httpx

    from app.checkout import reconcile_payments
    from app.http import tls_context
    from app.services.payments import PaymentGateway

    settings = get_settings()
    async with httpx.AsyncClient(timeout=settings.payment_timeout_seconds, verify=tls_context()) as client:
        gateway = PaymentGateway(client, settings.payment_gateway_url, settings.payment_api_key)
        return await reconcile_payments(SessionLocal, gateway, now=utcnow())
