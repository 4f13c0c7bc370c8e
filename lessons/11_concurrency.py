# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · Concurrency against a real database

# %% [markdown] tags=["overview"]
# **Teaching:** 39 min · **Exercises:** 13 min
#
# **Prerequisites:** 05 · Rollback fixtures, 07 · Savepoints, 08 · When savepoints break, 09 · Retry routes
#
# **You will be able to**
# - explain why a test under rollback isolation cannot show a race: all its sessions share one
#   connection, so its requests run one after another;
# - reproduce a double booking on PostgreSQL by running the two steps of a check-then-write route
#   for two sessions in a chosen order, and say why SQLite hides it;
# - fix a race with guarantees the database enforces (a conditional `UPDATE`, a partial unique
#   index) and prove the fix with parallel requests on committed data;
# - write a test that fails when a payment route can charge twice, and explain why a transaction
#   cannot span a call to a payment provider; test the pattern that replaces it: a pending record with
#   an idempotency key, committed first, reconciled after a crash.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer
from course.exercise import Mutant, check_test, replace_route

nb = setup("11")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("11")` has pointed `DATABASE_URL` at this notebook's
# own database, so importing `app` now is safe.

# %%
import asyncio
import inspect

import httpx
import pytest
import respx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app import naive
from app.config import get_settings
from app.db import get_session, make_engine
from app.main import app as shelter_app
from app.models import Adopter, Adoption, Animal
from app.routes import adoptions
from tests.isolation import isolated_async_sessions, override_dependency, session_dependency

# %% [markdown]
# Helpers for committed data: this notebook's database is its own, so the demonstrations commit
# for real and clean up by deleting every row (and by putting back the unique index that part 2
# removes for a moment). Not what the lesson teaches, so the cell is collapsed.

# %% jupyter={"source_hidden": true}
ACTIVE_INDEX = next(i for i in Adoption.__table__.indexes if i.name == "uq_adoptions_one_active_per_animal")


async def delete_everything() -> None:
    engine = create_async_engine(nb.database_url)
    try:
        async with engine.begin() as conn:
            for table in (Adoption, Adopter, Animal):
                await conn.execute(delete(table))
            await conn.run_sync(lambda sync_conn: ACTIVE_INDEX.create(sync_conn, checkfirst=True))
    finally:
        await engine.dispose()


async def luna_ana_and_bo(*, unique_index: bool = True) -> dict[str, int]:
    """Commit a cat (Luna) and two adopters; without the index if asked. Returns their ids."""
    await delete_everything()
    engine = create_async_engine(nb.database_url)
    try:
        async with engine.begin() as conn:
            if not unique_index:
                await conn.run_sync(ACTIVE_INDEX.drop)
            ids = {"luna": await conn.scalar(insert(Animal).values(name="Luna", species="cat").returning(Animal.id))}
            for name in ("Ana", "Bo"):
                ids[name.lower()] = await conn.scalar(
                    insert(Adopter).values(name=name, email=f"{name.lower()}@example.org").returning(Adopter.id))
        return ids
    finally:
        await engine.dispose()

# %% jupyter={"source_hidden": true}
async def reservations_of(animal_id: int) -> int:
    engine = create_async_engine(nb.database_url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(select(func.count()).select_from(Adoption).where(Adoption.animal_id == animal_id))
    finally:
        await engine.dispose()

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~28 min teaching + 13 min exercise).** Run it on PostgreSQL,
# the default (`DATABASE_URL` unset): the race only shows there, and the stored outputs are
# PostgreSQL's. The cells whose output differs on SQLite say so and assert each backend's outcome. Part 1 (~3 min) is the bridge from <!-- ref:one-connection-per-test -->lesson 08<!-- /ref -->; part 2 (~8 min) is the
# heart: let the room predict Quiz 11.1 before running the cell, then draw the timeline. Part 3
# (~5 min) shows the fix and the test that proves it; the claim check (~4 min) answers the
# question "but can my rollback tests run in parallel?" that always comes up here. Part 4 (~8 min)
# is the payment that survives a crash: before the lost-answer cell, ask the room what the retry
# should send, and what happens to the charge when the commit fails.

# %% [markdown]
# ## 1. Why rollback isolation cannot show a race
#
# The shelter's rules are simple: an animal has at most one active reservation, and an adoption
# fee is charged once. Both are broken by the same pattern, **check then write**: read the row,
# decide in Python, write. Two requests that run at the same time can both pass the check.
#
# A [race](../GLOSSARY.md#race) needs two transactions open at once. Under the rollback fixture of <!-- ref:rollback-fixture,sqlite-savepoint-fix -->lessons 05 and 08<!-- /ref -->,
# every session a test hands to the app joins **one** transaction on **one** connection. Ask two
# of its sessions which database connection they use:

# %%
engine = create_async_engine(nb.database_url)
async with isolated_async_sessions(engine) as sessions:
    async with sessions() as first, sessions() as second:
        first_raw = await (await first.connection()).get_raw_connection()
        second_raw = await (await second.connection()).get_raw_connection()
        same = first_raw.driver_connection is second_raw.driver_connection
await engine.dispose()

print("both sessions talk through the same connection:", same)
assert same

# %% [markdown]
# One connection runs one statement at a time, inside one transaction: two requests of such a test
# can only take turns, and the second one always sees what the first one wrote. The race cannot
# happen there, so a rolled-back test of a racy route passes. (<!-- ref:one-connection-per-test -->Lesson 08<!-- /ref --> showed the other half:
# the [savepoints](../GLOSSARY.md#savepoint) that make this fixture work are all on that one connection.)
#
# To test a race you need what production has: **committed data**, in a database of its own
# (cleaned another way: here `delete_everything()` deletes every row), and **several connections**
# from a real pool, one per request.
#
# ## 2. The race, step by step
# <!-- topic:races -->
#
# `app/naive.py` keeps the reservation as it is often written, in two steps:

# %%
print(inspect.getsource(naive.check_available))
print(inspect.getsource(naive.write_reservation))

# %% [markdown]
# Instead of hoping that two real requests happen to interleave badly, we run the two steps for two
# sessions, A (for Ana) and B (for Bo), **in the worst order**, by hand: A checks, B checks, A
# writes, B writes. Each session has its own connection from the app's own engine settings
# (`make_engine`). The schedule is fixed, so the outcome is too.

# %%
async def race_by_hand(ids: dict[str, int]) -> list[str]:
    """A checks, B checks, A writes, B writes: two sessions, two connections."""
    engine = make_engine(nb.database_url, sqlite_busy_timeout=0.5)  # SQLite: wait at most 0.5 s for a lock
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    log = []
    async with sessions() as a, sessions() as b:
        luna_for_a = await naive.check_available(a, ids["luna"])
        log.append(f"A checked: Luna is {luna_for_a.status}")
        try:
            luna_for_b = await naive.check_available(b, ids["luna"])
            log.append(f"B checked: Luna is {luna_for_b.status}")
        except OperationalError as exc:
            luna_for_b = None
            log.append(f"B cannot check: {exc.orig}")
        await naive.write_reservation(a, luna_for_a, ids["ana"])
        log.append("A reserved Luna")
        if luna_for_b is not None:
            try:
                await naive.write_reservation(b, luna_for_b, ids["bo"])
                log.append("B reserved Luna")
            except IntegrityError as exc:
                log.append("B refused: " + str(exc.orig).splitlines()[0].split(": ")[-1])
    await engine.dispose()
    return log

# %% [markdown]
# First on the schema as it was before the fix: no unique index on adoptions.
#
# **Quiz 11.1.** On PostgreSQL, with no unique index, A checks, B checks, A writes and commits, then
# B writes and commits. How many reservations of Luna are there afterwards?
# - **a)** One: B's commit fails, because A changed and committed Luna's row after B had read it.
# - **b)** Two: both read "available" before either wrote, and nothing forbids it.
# - **c)** None: the two transactions deadlock and PostgreSQL rolls both back.
# - **d)** One: B's `UPDATE` of Luna waits for A's row lock, re-reads the row and changes nothing.

# %% tags=["quiz-answer"]
answer("11.1", "b")

# %% tags=["output-per-database"] jupyter={"source_hidden": true}
ids = await luna_ana_and_bo(unique_index=False)
print(*await race_by_hand(ids), sep="\n")
double = await reservations_of(ids["luna"])
print("reservations of Luna:", double)

assert double == {"postgresql": 2, "sqlite": 1}[nb.backend]

# %% [markdown]
# On PostgreSQL (the output above): both checks say "available", both writes succeed, **two
# reservations** of one cat. Under PostgreSQL's default
# isolation level (Read Committed) each statement sees what was committed when it started; B's
# check ran before A committed, and B's writes do not look at Luna's status again.

# %% [markdown]
# ```mermaid
# sequenceDiagram
#     participant A as Session A (Ana)
#     participant DB as PostgreSQL
#     participant B as Session B (Bo)
#     A->>DB: SELECT Luna
#     DB-->>A: available
#     B->>DB: SELECT Luna
#     DB-->>B: available
#     A->>DB: UPDATE Luna reserved, INSERT adoption, COMMIT
#     B->>DB: UPDATE Luna reserved, INSERT adoption, COMMIT
#     Note over DB: two active adoptions of Luna
# ```
#
# **Quiz 11.2.** The same schedule on SQLite, with the app's engine settings (`BEGIN IMMEDIATE`: a
# transaction takes SQLite's single write lock when it begins). What happens when B checks?
# - **a)** B reads "available", as on PostgreSQL, and both sessions go on to reserve Luna.
# - **b)** B reads "reserved": SQLite shows A's uncommitted change to every other connection.
# - **c)** B waits for A's write lock; after the busy timeout, `database is locked`.
# - **d)** B's read works, and its write later fails with `IntegrityError`.

# %% tags=["quiz-answer"]
answer("11.2", "c")

# %% [markdown]
# That is what the cell above prints on SQLite (run with a SQLite `DATABASE_URL` and the course
# compares it with SQLite's recorded output): `B cannot check: database is locked`, then A
# reserves alone, one reservation. SQLite lets one transaction write at a time, and the app's
# engine takes that lock at `BEGIN`, so the interleaving that breaks PostgreSQL cannot even start.
# **A suite that only runs on SQLite never sees this race.** (It would see others: the app's engine
# waits up to 30 s for the lock, so two real requests simply queue.)
#
# ## 3. Let the database enforce the rule
#
# The first guarantee is the **partial unique index** the app's model now declares: at most one
# adoption per animal that is not expired. The helper dropped it above; with it in place, the same
# schedule again:

# %% tags=["output-per-database"]
ids = await luna_ana_and_bo(unique_index=True)
log = await race_by_hand(ids)
print(*log, sep="\n")
guarded = await reservations_of(ids["luna"])
print("reservations of Luna:", guarded)

assert guarded == 1
assert log[-1] == {
    "postgresql": 'B refused: duplicate key value violates unique constraint "uq_adoptions_one_active_per_animal"',
    "sqlite": "A reserved Luna",
}[nb.backend]

# %% [markdown]
# On PostgreSQL, B's `INSERT` now fails (a unique violation on the new index): one reservation,
# whatever the order. The naive route would answer that with a 500, though. The app's real route checks and
# writes in **one statement**, so the database decides at the moment of the write:

# %%
source = inspect.getsource(adoptions.reserve)
print(source[source.index("    # Check and write"):source.index("    adoption = Adoption(")])

# %% [markdown]
# `UPDATE ... WHERE status = 'available'` changes Luna only if she is still available when the
# `UPDATE` runs. On PostgreSQL the second of two such updates waits for the first one's [row lock](../GLOSSARY.md#row-lock),
# then re-checks the condition on the committed row and changes nothing: `rowcount` 0, a clean 409.
# The index stays as the last line of defence. The payment route claims the adoption the same way
# (`UPDATE ... SET status = 'paying' WHERE status = 'reserved'`) and commits that before it calls
# the provider, so a second payment finds "paying" and gets a 409 (part 4 says why it commits first).
#
# Now the proof through the app: 20 simultaneous requests, each on its own pooled connection, via
# `asyncio.gather`. Whatever the interleaving, the invariant must hold, so we assert the invariant.

# %%
async def send_in_parallel(requests_for) -> list[int]:
    """Serve the real app on a real pool; send the requests returned by ``requests_for(http)`` at once."""
    engine = make_engine(nb.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    with override_dependency(shelter_app, get_session, session_dependency(sessions)):
        async with LifespanManager(shelter_app) as started:
            transport = ASGITransport(app=started.app, raise_app_exceptions=False)  # a crash is a 500
            async with AsyncClient(transport=transport, base_url="http://test") as http:
                responses = await asyncio.gather(*await requests_for(http))
    await engine.dispose()
    return sorted(r.status_code for r in responses)

# %%
ids = await luna_ana_and_bo()


async def twenty_reservations(http):
    adopters = [(await http.post("/adopters", json={"name": f"A{i}", "email": f"a{i}@example.org"})).json()
                for i in range(20)]
    return [http.post("/adoptions", json={"animal_id": ids["luna"], "adopter_id": a["id"]}) for a in adopters]


codes = await send_in_parallel(twenty_reservations)
print({code: codes.count(code) for code in codes}, "| reservations of Luna:", await reservations_of(ids["luna"]))
assert codes == [201] + [409] * 19
assert await reservations_of(ids["luna"]) == 1

# %% [markdown]
# One 201, nineteen clean 409s, one reservation, on both databases. This cell would pass on SQLite
# with the naive route too (SQLite queues the requests): prove a fix against races on PostgreSQL.
#
# ### Exercise 1: charge once, whatever the timing
#
# Write `test_parallel_payments_charge_once`. Through `race_client` (the real app on a real pool,
# committed data, rows deleted afterwards), create a cat, an adopter and a reservation, then send
# **ten payments of that adoption at the same time**. Assert what must hold whatever the order:
# exactly one payment succeeds, the others get 409, and the provider was charged once.
# `provider` is the list of charge requests the fake payment provider received (it takes 50 ms per
# charge and, as real providers do, answers a repeated Idempotency-Key with the first charge).
# The check then runs your test against the real app and against [broken versions](../GLOSSARY.md#broken-version) of the route.
#
# > Hint: `await asyncio.gather(*(race_client.post(f"/adoptions/{adoption_id}/pay") for _ in range(10)))`;
# > compare the sorted status codes with `[200] + [409] * 9`, and `len(provider)` with 1.

# %%
@pytest.fixture
async def race_client():
    await delete_everything()  # committed data: start from empty tables, end with them
    engine = make_engine(nb.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    with override_dependency(shelter_app, get_session, session_dependency(sessions)):
        async with LifespanManager(shelter_app) as started:
            transport = ASGITransport(app=started.app, raise_app_exceptions=False)
            async with AsyncClient(transport=transport, base_url="http://test") as http:
                yield http
    await engine.dispose()
    await delete_everything()


@pytest.fixture
def provider():
    charges = []  # every charge request the provider received
    made = {}  # Idempotency-Key -> charge id: like a real provider, one key never charges twice

    async def charge(request):
        charges.append(request)
        made.setdefault(request.headers["Idempotency-Key"], f"ch_{len(made) + 1}")
        await asyncio.sleep(0.05)
        return httpx.Response(201, json={"id": made[request.headers["Idempotency-Key"]], "amount": 9000})

    with respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False) as mock:
        mock.post("/v1/charges").side_effect = charge
        yield charges

# %% [markdown]
# The broken versions the check installs, one at a time (collapsed: reading them gives the answer
# away). One ends its transaction before calling the provider without putting anything on record
# first (the reflex "never hold a transaction open across an HTTP call", half applied: part 4 shows
# the other half), one answers 200 to the payments that lost, one forgets the status check.

# %% jupyter={"source_hidden": true}
from typing import Annotated

from fastapi import Depends, HTTPException

from app.models import utcnow
from app.services.payments import PaymentGateway, get_payment_gateway

# %% jupyter={"source_hidden": true}
def _broken_pay(end_transaction_before_charge: bool, lost_is_200: bool, check_status: bool):
    """A broken copy of the app's payment route."""
    both_checked = asyncio.Barrier(2)  # new per run: each pytest run has its own event loop

    async def pay(adoption_id: int, session: adoptions.Session,
                  gateway: Annotated[PaymentGateway, Depends(get_payment_gateway)]):
        adoption = await adoptions._get_adoption(session, adoption_id, for_update=not end_transaction_before_charge)
        if check_status and adoption.status != "reserved":
            if lost_is_200:
                return adoption
            raise HTTPException(409, f"Adoption {adoption_id} is {adoption.status}, not payable.")
        if end_transaction_before_charge:
            await session.commit()  # the check's transaction (and any lock) ends here
            try:  # let two payments pass the check before either writes: the race, forced
                await asyncio.wait_for(both_checked.wait(), 2)
            except (TimeoutError, asyncio.BrokenBarrierError):
                pass
        charge = await gateway.charge(amount_cents=adoption.fee_cents, reference=f"adoption-{adoption.id}")
        adoption.status, adoption.payment_id, adoption.paid_at = "paid", charge.id, utcnow()
        await session.commit()
        return adoption

    return pay

# %% jupyter={"source_hidden": true}
def _pay_route(*, end_transaction_before_charge=False, lost_is_200=False, check_status=True):
    """Installs the broken route while the check runs the learner's test once."""
    return lambda: replace_route(shelter_app, "POST", "/adoptions/{adoption_id}/pay",
                                 _broken_pay(end_transaction_before_charge, lost_is_200, check_status))


PAYMENT_MUTANTS = [
    Mutant("the route ends its transaction before calling the provider, with no attempt on record",
           _pay_route(end_transaction_before_charge=True)),
    Mutant("the route answers 200 instead of 409 to the payments that lost", _pay_route(lost_is_200=True)),
    Mutant("the route does not check the adoption's status", _pay_route(check_status=False)),
]

# %%
async def test_parallel_payments_charge_once(race_client, provider):
    # BEGIN SOLUTION
    animal = (await race_client.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    adopter = (await race_client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()
    reserved = await race_client.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]})
    adoption_id = reserved.json()["id"]

    responses = await asyncio.gather(*(race_client.post(f"/adoptions/{adoption_id}/pay") for _ in range(10)))

    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    assert len(provider) == 1
    # END SOLUTION


check_test(
    "test_parallel_payments_charge_once",
    mutants=PAYMENT_MUTANTS,
    hint="send the ten payments with asyncio.gather, then assert the status codes and len(provider)",
)

# %% [markdown]
# A test that pays twice, one payment after the other, would pass against the first broken
# version: a race needs requests that overlap. And a test that counts only the charges misses the
# second: the losers must be told they lost.
#
# **Quiz 11.3.** A teammate's payment route reads the adoption `FOR UPDATE`, checks "reserved",
# ends its transaction, calls the provider, and writes "paid" in a second transaction; nothing is
# written before the call. On PostgreSQL, ten payments of one adoption arrive at once. What can the
# provider see?
# - **a)** Exactly one charge: the `FOR UPDATE` lock still orders all requests.
# - **b)** Exactly one charge, but nine requests answer 500.
# - **c)** No charge: the second transaction cannot see the first one's lock.
# - **d)** Several: the lock ends with the first transaction, before the provider call.

# %% tags=["quiz-answer"]
answer("11.3", "d")

# %% [markdown]
# ### Claim check: rollback isolation lets tests run in parallel, each one isolated by its own rollback
#
# "Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks" (a
# Python-upgrade consultancy's blog, 2025) recommends the rollback fixture partly because it
# "supports parallel execution" (`pytest -n auto`). In our words: tests that each roll back their
# own transaction can run at the same time against the same database. Two such tests, on two
# connections of one database, both creating an animal named Rex, neither ever committing:

# %% tags=["output-per-database"]
engine = make_engine(nb.database_url, sqlite_busy_timeout=0.5)
async with engine.connect() as test_1, engine.connect() as test_2:
    await test_1.begin()
    await test_1.execute(insert(Animal).values(name="Rex", species="dog"))  # test 1: not committed, ever
    try:
        await test_2.begin()
        if nb.backend == "postgresql":
            await test_2.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")  # give up after 0.5 s
        await test_2.execute(insert(Animal).values(name="Rex", species="dog"))  # test 2: the same data
        outcome = "inserted"
    except DBAPIError as exc:
        outcome = str(exc.orig).split(":")[-1].strip()
    print("test 2:", outcome)
    await test_1.rollback()
    await test_2.rollback()
await engine.dispose()

assert outcome == {"postgresql": "canceling statement due to lock timeout", "sqlite": "database is locked"}[nb.backend]

# %% [markdown]
# Test 2 could not even insert: on PostgreSQL it **waits** for test 1's transaction (the unique
# index must know whether test 1's Rex will be committed), here until the 0.5 s lock timeout; with
# no timeout it would wait until test 1 ends, and two tests waiting for each other deadlock. On
# SQLite one transaction writes at a time, so test 2 waits for the lock (`database is locked` after
# the busy timeout).
#
# **Quiz 11.4.** Which setup lets rollback-isolated tests really run in parallel?
# - **a)** One database per pytest-xdist worker (`..._test_gw0`, `..._test_gw1`).
# - **b)** One database for all workers, with `isolation_level="SERIALIZABLE"`.
# - **c)** One database for all workers, each test prefixing its rows' names.
# - **d)** One database, with `pytest -n auto --dist loadfile`.

# %% tags=["quiz-answer"]
answer("11.4", "a")

# %% [markdown]
# **Verdict:** <!-- verdict:rollback-isolation-parallel -->half true<!-- /verdict -->. The rollback keeps the database clean after each test, so tests do not see
# each other's **leftovers**; but tests running at the same time on one database still meet each
# other's **uncommitted** rows and locks: PostgreSQL makes one wait for the other (and can
# deadlock), SQLite lets one write at a time. Parallel rollback tests need a database per worker
# (<!-- ref:database-per-worker -->lesson 14<!-- /ref -->). And parallel *tests* are not concurrent *requests*: a rolled-back test still cannot
# show a race in the app (part 1); that needs committed data and a real pool (parts 2 and 3).

# %% [markdown] tags=["instructor"]
# **Instructor notes (part 3, exercise, claim check).** In the exercise the usual mistakes are: two
# sequential payments (the check names the mutant it misses), asserting only the charge count, and
# forgetting `await` inside `gather` (a list of coroutines is not a list of responses: pytest's
# report shows `TypeError`). If someone asks why the app does not simply use `SERIALIZABLE`: it
# works too, but then every conflicting request fails with a serialization error the app must
# retry; a conditional `UPDATE` and a row lock need no retry loop. If a cell hangs on PostgreSQL, an
# interrupted run left a transaction open: restart the kernel and run from the top.

# %% [markdown]
# ## 4. A payment that survives a crash
# <!-- topic:payment-exactly-once -->
#
# Why does the payment route not keep **one** transaction around everything: lock the adoption,
# charge, write "paid", commit? Because a transaction cannot span a network call:
#
# - **The provider is not in your transaction.** The charge can succeed and the commit then fail
#   (the database restarts, the process is killed). A rollback undoes your rows, not the charge:
#   money taken, no record of it, and the adopter's retry charges again.
# - **Its locks are held while you wait.** The row lock on PostgreSQL, and on SQLite the database's
#   only write lock, stay taken for the whole provider call: on SQLite every other request waits.
#
# So the route does it in three steps, and no transaction is open during the call:

# %%
print(inspect.getsource(adoptions.pay)[inspect.getsource(adoptions.pay).index("    # Exactly once"):])

# %% [markdown]
# `begin_attempt` is a conditional `UPDATE` (`reserved` to `paying`, with the attempt's
# **Idempotency-Key**) and a `COMMIT`: the attempt is on record before any money moves. Real
# providers honour that key: a second request with the same key answers the first charge, and the
# charge can be looked up by its key. A crash between steps 2 and 3 leaves `paying` and the key;
# the adopter's retry (once the attempt is old enough to be dead) or a sweep, `reconcile_payments`,
# asks the provider for the key's charge instead of charging again.
#
# The demonstrations below use the suite's fake provider, `tests/fakes.py`'s `FakePaymentProvider`,
# which honours keys the same way, and pay one reserved adoption through the app on a real pool:

# %% jupyter={"source_hidden": true}
from datetime import timedelta

from sqlalchemy import update

from app.checkout import reconcile_payments
from app.models import utcnow
from app.services.payments import PaymentGateway
from tests.fakes import FakePaymentProvider


async def reserved_adoption() -> int:
    """Luna reserved by Ana (committed); returns the adoption's id."""
    ids = await luna_ana_and_bo()
    engine = create_async_engine(nb.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(Animal).where(Animal.id == ids["luna"]).values(status="reserved"))
        adoption_id = await conn.scalar(insert(Adoption).values(
            animal_id=ids["luna"], adopter_id=ids["ana"], fee_cents=9000).returning(Adoption.id))
    await engine.dispose()
    return adoption_id

# %% jupyter={"source_hidden": true}
async def pay_once(adoption_id: int, provider: FakePaymentProvider, *, charge=None) -> httpx.Response:
    """One payment through the real app on a real pool; ``charge`` replaces the provider's POST."""
    engine = make_engine(nb.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    with (override_dependency(shelter_app, get_session, session_dependency(sessions)),
          respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False) as router):
        provider.install(router)
        if charge is not None:
            router.post("/v1/charges").side_effect = charge
        async with LifespanManager(shelter_app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                response = await http.post(f"/adoptions/{adoption_id}/pay")
    await engine.dispose()
    return response

# %% [markdown]
# First, what another request can see and do **while** the provider charges: a provider that,
# before it charges, reads the adoption from another connection and writes to it.

# %%
adoption_id, provider, seen = await reserved_adoption(), FakePaymentProvider(), []


async def look_from_another_connection_then_charge(request):
    engine = make_engine(nb.database_url, sqlite_busy_timeout=0.5)  # give up a lock wait after 0.5 s
    async with engine.begin() as conn:
        if nb.backend == "postgresql":
            await conn.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")
        status = await conn.scalar(select(Adoption.status).where(Adoption.id == adoption_id))
        await conn.execute(update(Adoption).where(Adoption.id == adoption_id).values(fee_cents=9000))
    await engine.dispose()
    seen.append(f"another connection read {status!r} and could write")
    return await provider.respond(request)


response = await pay_once(adoption_id, provider, charge=look_from_another_connection_then_charge)
print("during the charge:", *seen, "| answer:", response.status_code, response.json()["status"])
assert seen == ["another connection read 'paying' and could write"] and response.status_code == 200

# %% [markdown]
# The attempt was already committed ("paying") and nothing was locked: on SQLite the other
# connection's write got the write lock at once. Now a crash: the provider charges, and its answer
# never arrives (the connection drops). The route cannot know whether money moved:

# %%
adoption_id, provider = await reserved_adoption(), FakePaymentProvider()


async def charge_then_drop_the_answer(request):
    await provider.respond(request)  # the charge is made ...
    raise httpx.ReadError("connection reset")  # ... and the app never hears of it


first = await pay_once(adoption_id, provider, charge=charge_then_drop_the_answer)
print("first attempt:", first.status_code, first.json()["detail"])
retry = await pay_once(adoption_id, provider)
print("retry:", retry.status_code, retry.json()["status"], "| charges at the provider:", len(provider.charges))
assert (first.status_code, retry.status_code, len(provider.charges)) == (502, 200, 1)

# %% [markdown]
# The failed attempt kept its key; the retry sent the same key, and the provider answered the
# charge it had already made: one charge, one paid adoption. Had the retry used a new key, the
# provider would have charged twice. Last, a process killed between the charge and the commit: it
# leaves the adoption "paying" with its key, and nobody is left to finish it. The sweep does:

# %%
adoption_id, provider = await reserved_adoption(), FakePaymentProvider()
key = f"adoption-{adoption_id}"
provider.handle("POST", key, {"amount": 9000, "reference": key})  # the dead request's charge
engine = make_engine(nb.database_url)
async with engine.begin() as conn:  # what the crash left: "paying" with the key, an hour ago
    await conn.execute(update(Adoption).where(Adoption.id == adoption_id).values(
        status="paying", payment_key=key, payment_started_at=utcnow() - timedelta(hours=1)))
with respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False) as router:
    provider.install(router)
    async with httpx.AsyncClient() as http:
        gateway = PaymentGateway(http, get_settings().payment_gateway_url, "test-key")
        outcome = await reconcile_payments(async_sessionmaker(engine, expire_on_commit=False), gateway, now=utcnow())
await engine.dispose()
print("sweep:", list(outcome.values()), "| provider requests:", [method for method, _ in provider.requests])
assert list(outcome.values()) == ["paid"] and len(provider.charges) == 1

# %% [markdown]
# The sweep asked (`GET`) and never charged: the adoption is paid with the charge the dead request
# made. Like the expiry job of <!-- ref:job-function-with-now -->lesson 13<!-- /ref --> it takes `now` as an argument, so a test needs no clock.
#
# **What to test**, beyond these cells: that the attempt is committed before the call and nothing is
# locked during it (the first cell, `tests/test_payments.py`); the crash itself, with real processes
# (`tests/test_payment_crash.py` serves the app with `python -m app`, has the fake provider kill it
# after charging, restarts it, and asserts one charge and one paid adoption after a retry and after
# the sweep); and a fake provider that honours keys as the real one does: one that ignores them
# hides exactly the double charge this part is about. Before the quiz, the shelter is emptied again:

# %%
await delete_everything()
print("reservations left:", await reservations_of(ids["luna"]))
assert await reservations_of(ids["luna"]) == 0

# %% [markdown]
# **Quiz 11.5.** The app commits "paying" with key K and the provider charges. Then PostgreSQL
# restarts before the app writes "paid", and the request answers 503. Ten minutes later the adopter
# retries. What should the app do?
# - **a)** Charge again with a new key: the database shows no charge id, so no money has moved.
# - **b)** Ask the provider for the charge made with K, and record it as the payment.
# - **c)** Answer 409 until an operator looks at it: an adoption stuck in "paying" cannot be repaired.
# - **d)** Nothing new is needed: the rollback after the restart also cancelled the provider's charge.

# %% tags=["quiz-answer"]
answer("11.5", "b")

# %% [markdown] tags=["key-points"]
# ## Key points
# - A test under rollback isolation runs all its requests on one connection, in one transaction:
#   it cannot show a race. Test races on committed data, in a database of their own, with one
#   pooled connection per request, and clean up by deleting.
# - Do not hope for a bad interleaving: force it (run the steps of two sessions in the worst order)
#   and assert the invariant, never the timing.
# - Check-then-write double-books on PostgreSQL. SQLite, with one writer at a time, hides the race:
#   prove concurrency fixes on the database you deploy.
# - Let the database enforce the rule: a conditional `UPDATE ... WHERE status = 'available'`
#   (check `rowcount`), a partial unique index as the last line of defence.
# - Never keep a transaction open across a call to another service: it cannot include the call, and
#   it holds its locks while waiting. Commit a pending record with an idempotency key first, call,
#   then record the outcome; after a crash, ask the provider by that key instead of charging again.
#   Test it with a fake that honours keys, and with a real crash between the charge and the commit.
# - Parallel rollback tests need a database per worker: on one shared database they wait for each
#   other's locks.
#
# ## Sources and further reading
# - PostgreSQL 15 documentation: "13.3. Explicit Locking" (row-level locks, `FOR UPDATE`),
#   https://www.postgresql.org/docs/15/explicit-locking.html; "13.2. Transaction Isolation" (what
#   an `UPDATE` re-checks under Read Committed), https://www.postgresql.org/docs/15/transaction-iso.html;
#   "11.6. Unique Indexes" and "11.8. Partial Indexes",
#   https://www.postgresql.org/docs/15/indexes-partial.html
# - SQLAlchemy 2.1 documentation: "ORM-Enabled INSERT, UPDATE, and DELETE statements",
#   https://docs.sqlalchemy.org/en/21/orm/queryguide/dml.html; `Select.with_for_update()`,
#   https://docs.sqlalchemy.org/en/21/core/selectable.html
# - SQLite: "File Locking And Concurrency In SQLite Version 3", https://www.sqlite.org/lockingv3.html;
#   "BEGIN TRANSACTION" (`DEFERRED`, `IMMEDIATE`), https://www.sqlite.org/lang_transaction.html
# - Stripe API reference, "Idempotent requests" (how a provider answers a repeated key),
#   https://docs.stripe.com/api/idempotent_requests; Brandur Leach, "Implementing Stripe-like
#   Idempotency Keys in Postgres" (2017, recovery points and a completer for attempts that died),
#   https://brandur.org/idempotency-keys
# - "Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks", a
#   Python-upgrade consultancy's blog, 2025 (the claim checked above).
#
# **Next:** [12 · Mocking external services and background tasks](12_mocking.ipynb)
