"""Races: 20 simultaneous requests for one animal or one payment, on committed data.

Rollback isolation cannot show a race (every session of a test shares one connection, so
requests run one after the other): these tests use a database of their own
(``..._test_race_<worker>``), separate connections from a real pool, data that is really
committed, and empty the tables afterwards. The invariant is asserted, not the timing:
exactly one reservation, exactly one charge, no 5xx, whatever the interleaving.
"""

import asyncio
import os

import httpx
import pytest
import respx
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.config import get_settings
from app.db import get_session, make_engine
from app.main import app as shelter_app
from app.models import Adopter, Adoption, Animal, Base
from course.database import prepare, selected_url, sibling_url
from tests.isolation import override_dependency

PARALLEL = 20


@pytest.fixture(scope="module")
def race_database_url() -> str:
    url = sibling_url(selected_url(), f"race_{os.environ.get('PYTEST_XDIST_WORKER', 'master')}")
    asyncio.run(prepare(url))
    return url


@pytest.fixture
async def committed_sessions(race_database_url):
    """Sessions on a real pool (one connection each), as the served app has; tables emptied after."""
    engine = make_engine(race_database_url)  # the app's own engine settings (SQLite: BEGIN IMMEDIATE)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    yield factory
    async with engine.begin() as conn:
        for table in (Adoption, Adopter, Animal):
            await conn.execute(delete(table))
    await engine.dispose()


@pytest.fixture
async def served(committed_sessions, notifier):
    async def real_session():
        async with committed_sessions() as session:
            yield session

    with override_dependency(shelter_app, get_session, real_session):
        async with LifespanManager(shelter_app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http


async def _count(sessions, model, *where) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def _animal_and_adopters(http, count):
    animal = (await http.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    adopters = [(await http.post("/adopters", json={"name": f"A{i}", "email": f"a{i}@example.org"})).json() for i in range(count)]
    return animal, adopters


async def test_parallel_reservations_of_one_animal_make_exactly_one(served, committed_sessions):
    animal, adopters = await _animal_and_adopters(served, PARALLEL)

    responses = await asyncio.gather(
        *(served.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": a["id"]}) for a in adopters)
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (PARALLEL - 1), codes
    assert await _count(committed_sessions, Adoption, Adoption.animal_id == animal["id"]) == 1


async def test_parallel_payments_of_one_adoption_charge_exactly_once(served, committed_sessions):
    animal, (adopter,) = await _animal_and_adopters(served, 1)
    adoption = (await served.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]})).json()
    charges = []

    async def provider(request):
        charges.append(request)
        await asyncio.sleep(0.05)  # a provider takes a moment: the other requests run meanwhile
        return httpx.Response(201, json={"id": f"ch_{len(charges)}", "amount": 9000})

    with respx.mock(base_url=get_settings().payment_gateway_url) as gateway:
        gateway.post("/v1/charges").side_effect = provider
        responses = await asyncio.gather(*(served.post(f"/adoptions/{adoption['id']}/pay") for _ in range(PARALLEL)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (PARALLEL - 1), codes
    assert len(charges) == 1
    assert await _count(committed_sessions, Adoption, Adoption.status == "paid") == 1


async def test_the_database_refuses_a_second_active_adoption_of_one_animal(committed_sessions):
    """The partial unique index: even code that skips the check cannot double-book."""
    from sqlalchemy.exc import IntegrityError

    async with committed_sessions() as session:
        animal, first, second = Animal(name="Rex", species="dog"), Adopter(name="A", email="a@x.org"), Adopter(name="B", email="b@x.org")
        session.add_all([animal, first, second, Adoption(animal=animal, adopter=first, fee_cents=1, status="expired")])
        session.add(Adoption(animal=animal, adopter=first, fee_cents=1))
        await session.commit()  # an expired and an active one: allowed
        session.add(Adoption(animal=animal, adopter=second, fee_cents=1))
        with pytest.raises(IntegrityError, match="(?i)unique"):
            await session.commit()
