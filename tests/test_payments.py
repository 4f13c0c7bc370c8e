"""Exactly-once payment (``app/checkout.py``): the attempt is committed before the provider is
called, nothing is held open during the call, and an attempt whose answer was lost is settled by
asking the provider for the charge made with its Idempotency-Key, never by charging again.

These tests need what production has (committed data, a real pool): they use the race tests'
database and fixtures (``tests/test_concurrency.py``). The provider is ``FakePaymentProvider``,
which honours idempotency keys as real providers do.
"""

import asyncio
import contextlib
from datetime import timedelta

import httpx
import pytest
import respx
from sqlalchemy import select, text, update

from app.checkout import reconcile_payments
from app.config import get_settings
from app.db import make_engine
from app.models import Adoption, Animal, utcnow
from app.services.payments import PaymentGateway
from tests.fakes import FakePaymentProvider
from tests.test_concurrency import committed_sessions, race_database_url, served  # noqa: F401


@pytest.fixture
def provider():
    fake = FakePaymentProvider()
    with respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False) as router:
        fake.router = router  # a test may put its own handler in front of the fake's
        yield fake.install(router)


async def _reservation(http) -> dict:
    number = len((await http.get("/animals")).json())
    animal = (await http.post("/animals", json={"name": f"Cat {number}", "species": "cat"})).json()
    adopter = (await http.post("/adopters", json={"name": "Ana", "email": f"ana{number}@example.org"})).json()
    response = await http.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]})
    assert response.status_code == 201, response.text
    return response.json()


async def _adoption(sessions, adoption_id: int) -> Adoption:
    async with sessions() as session:
        return await session.get(Adoption, adoption_id)


async def test_the_attempt_is_committed_and_nothing_is_locked_while_the_provider_charges(
    served, committed_sessions, provider, race_database_url
):
    adoption = await _reservation(served)
    seen = {}
    other = make_engine(race_database_url, sqlite_busy_timeout=0.5)  # another connection, as another request has

    async def look_from_another_connection(request):
        async with other.connect() as conn:
            # What another connection sees: the attempt, committed, with its key.
            seen["row"] = tuple((await conn.execute(
                select(Adoption.status, Adoption.payment_key).where(Adoption.id == adoption["id"])
            )).one())
            # And it can write: SQLite's write lock is free, PostgreSQL's row lock too.
            if conn.dialect.name == "postgresql":
                await conn.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")
            await conn.execute(update(Adoption).where(Adoption.id == adoption["id"]).values(fee_cents=Adoption.fee_cents))
            await conn.commit()
            seen["wrote"] = True
        return await provider.respond(request)

    provider.router.post("/v1/charges").side_effect = look_from_another_connection
    response = await served.post(f"/adoptions/{adoption['id']}/pay")
    await other.dispose()

    assert response.status_code == 200, response.text
    assert seen == {"row": ("paying", f"adoption-{adoption['id']}"), "wrote": True}
    paid = await _adoption(committed_sessions, adoption["id"])
    assert (paid.status, paid.payment_id, paid.payment_key, paid.payment_started_at) == ("paid", "ch_1", f"adoption-{adoption['id']}", None)


async def test_a_lost_answer_then_a_retry_charges_once(served, committed_sessions, provider):
    """The provider charges, then the connection drops before its answer arrives: a 502. The retry
    reuses the key, and the provider answers the first charge again."""
    adoption = await _reservation(served)
    real = provider.respond

    async def charge_then_drop(request):
        await real(request)
        raise httpx.ReadError("connection reset after the charge")

    provider.router.post("/v1/charges").side_effect = charge_then_drop
    lost = await served.post(f"/adoptions/{adoption['id']}/pay")
    provider.router.post("/v1/charges").side_effect = real
    assert lost.status_code == 502, lost.text
    after_loss = await _adoption(committed_sessions, adoption["id"])
    assert (after_loss.status, after_loss.payment_key) == ("reserved", f"adoption-{adoption['id']}")

    retried = await served.post(f"/adoptions/{adoption['id']}/pay")

    assert (retried.status_code, retried.json()["status"], retried.json()["payment_id"]) == (200, "paid", "ch_1")
    assert len(provider.charges) == 1
    assert [key for method, key in provider.requests if method == "POST"] == [f"adoption-{adoption['id']}"] * 2


async def test_a_declined_attempt_is_followed_by_one_with_a_new_key(served, committed_sessions, provider):
    adoption = await _reservation(served)
    provider.decline = "card expired"
    assert (await served.post(f"/adoptions/{adoption['id']}/pay")).status_code == 402
    declined = await _adoption(committed_sessions, adoption["id"])
    assert (declined.status, declined.payment_key, declined.payment_attempts) == ("reserved", None, 1)

    provider.decline = None
    response = await served.post(f"/adoptions/{adoption['id']}/pay")

    assert response.status_code == 200, response.text
    assert list(provider.charges) == [f"adoption-{adoption['id']}-2"]


async def _left_paying(sessions, adoption_id: int, *, started_ago: timedelta) -> None:
    """What a crash between the provider's charge and the commit leaves behind."""
    async with sessions() as session:
        await session.execute(update(Adoption).where(Adoption.id == adoption_id).values(
            status="paying", payment_key=f"adoption-{adoption_id}", payment_started_at=utcnow() - started_ago))
        await session.commit()


async def test_a_retry_of_an_attempt_that_died_reconciles_instead_of_charging(served, committed_sessions, provider):
    adoption = await _reservation(served)
    key = f"adoption-{adoption['id']}"
    provider.handle("POST", key, {"amount": 9000, "reference": key})  # the charge the dead request made
    await _left_paying(committed_sessions, adoption["id"], started_ago=timedelta(seconds=1))

    in_progress = await served.post(f"/adoptions/{adoption['id']}/pay")  # it could still be working on it
    assert (in_progress.status_code, in_progress.headers["Retry-After"]) == (409, "5")
    assert in_progress.json() == {"detail": f"A payment of adoption {adoption['id']} is in progress; retry in a few seconds."}

    await _left_paying(committed_sessions, adoption["id"], started_ago=timedelta(hours=1))  # it is dead
    response = await served.post(f"/adoptions/{adoption['id']}/pay")

    assert (response.status_code, response.json()["payment_id"]) == (200, "ch_1")
    assert provider.requests[-1] == ("GET", key) and len(provider.charges) == 1  # looked up, not charged


async def test_the_sweep_settles_dead_attempts_by_asking_the_provider(served, committed_sessions, provider):
    charged, not_charged, in_flight = [await _reservation(served) for _ in range(3)]
    for adoption in (charged, not_charged, in_flight):
        await _left_paying(committed_sessions, adoption["id"], started_ago=timedelta(hours=1))
    await _left_paying(committed_sessions, in_flight["id"], started_ago=timedelta(seconds=0))
    key = f"adoption-{charged['id']}"
    provider.handle("POST", key, {"amount": 9000, "reference": key})

    async with httpx.AsyncClient() as client:
        gateway = PaymentGateway(client, get_settings().payment_gateway_url, "test-key")
        outcomes = await reconcile_payments(committed_sessions, gateway, now=utcnow())

    assert outcomes == {charged["id"]: "paid", not_charged["id"]: "reserved"}
    assert len(provider.charges) == 1 and all(method == "GET" for method, _ in provider.requests[1:])
    async with committed_sessions() as session:
        rows = {a.id: (a.status, a.payment_id) for a in await session.scalars(select(Adoption))}
        adopted = await session.scalar(select(Animal.status).where(Animal.id == charged["animal_id"]))
    assert rows == {charged["id"]: ("paid", "ch_1"), not_charged["id"]: ("reserved", None), in_flight["id"]: ("paying", None)}
    assert adopted == "adopted"


async def test_two_sweeps_at_once_record_a_dead_payment_once_and_charge_nothing(served, committed_sessions, provider):
    """Two workers, each with a scheduler, sweep at the same moment. Both list the dead attempt
    before either claims it (they meet after listing), then both try to claim it: the claim is a
    conditional UPDATE, so one records the charge and the other skips it, and neither charges."""
    adoption = await _reservation(served)
    key = f"adoption-{adoption['id']}"
    provider.handle("POST", key, {"amount": 9000, "reference": key})  # the charge the dead request made
    await _left_paying(committed_sessions, adoption["id"], started_ago=timedelta(hours=1))
    requests_before = len(provider.requests)
    both_listed = asyncio.Barrier(2)

    def one_worker():
        opened = []

        @contextlib.asynccontextmanager
        async def sessions():
            opened.append(True)
            async with committed_sessions() as session:
                yield session
            if len(opened) == 1:  # this sweep has its candidates: wait until the other has them too
                await asyncio.wait_for(both_listed.wait(), timeout=60)

        return sessions, opened

    (first, first_opened), (second, second_opened) = one_worker(), one_worker()
    async with httpx.AsyncClient() as client:
        gateway = PaymentGateway(client, get_settings().payment_gateway_url, "test-key")
        outcomes = await asyncio.gather(
            reconcile_payments(first, gateway, now=utcnow()), reconcile_payments(second, gateway, now=utcnow())
        )

    assert len(first_opened) == len(second_opened) == 2  # each listed it and opened a session to claim it
    assert sorted(outcomes, key=len) == [{}, {adoption["id"]: "paid"}]  # one recorded it, one skipped it
    assert [method for method, _ in provider.requests[requests_before:]] == ["GET"]  # one look-up, no charge
    assert len(provider.charges_for(key)) == 1
    async with committed_sessions() as session:
        paid = await session.get(Adoption, adoption["id"])
        animal = await session.get(Animal, adoption["animal_id"])
    assert (paid.status, paid.payment_id, paid.payment_key, animal.status) == ("paid", "ch_1", key, "adopted")


async def test_without_the_fix_a_transaction_spans_the_provider_call(committed_sessions, race_database_url):
    """Negative control for the first test: the old route's shape (lock, call, commit) keeps the
    attempt invisible to other connections until after the call, and keeps its lock meanwhile."""
    engine = make_engine(race_database_url, sqlite_busy_timeout=0.2)
    async with committed_sessions() as session:
        session.add(animal := Animal(name="Rex", species="dog"))
        await session.commit()
    async with engine.connect() as holder, engine.connect() as other:
        await holder.begin()
        await holder.execute(update(Animal).where(Animal.id == animal.id).values(status="reserved"))
        # ... the provider would be called here, with the transaction open ...
        if other.dialect.name == "postgresql":
            await other.exec_driver_sql("SET lock_timeout = '200ms'")
        with pytest.raises(Exception, match="(?i)database is locked|lock timeout"):
            await other.execute(text("UPDATE animals SET status = 'adopted' WHERE id = :id"), {"id": animal.id})
        await holder.rollback()
        await other.rollback()
    await engine.dispose()


async def test_a_database_made_before_the_payment_attempt_columns_gets_them(tmp_path):
    """``python -m app`` on a learner's existing database: create_all alone would leave the
    adoptions table without the new columns, and every adoption request would fail."""
    from sqlalchemy import inspect as inspect_schema

    from app.db import create_schema

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite'}")
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "CREATE TABLE adoptions (id INTEGER PRIMARY KEY, animal_id INTEGER, adopter_id INTEGER, fee_cents INTEGER,"
            " status VARCHAR(20), reserved_at DATETIME, paid_at DATETIME, payment_id VARCHAR(100))")
        await conn.exec_driver_sql("INSERT INTO adoptions (id, fee_cents, status) VALUES (1, 9000, 'reserved')")

    await create_schema(engine)

    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect_schema(c).get_columns("adoptions")})
        old_row = (await conn.execute(select(Adoption.payment_key, Adoption.payment_attempts).where(Adoption.id == 1))).one()
    await engine.dispose()
    assert {"payment_key", "payment_started_at", "payment_attempts"} <= columns
    assert tuple(old_row) == (None, 0)
