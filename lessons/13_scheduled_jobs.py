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
# # 13 · Testing scheduled jobs

# %% [markdown] tags=["overview"]
# **Teaching:** 45 min · **Exercises:** 12 min
#
# **Prerequisites:** 05 · Rollback fixtures, 12 · Mocking external services and background tasks
#
# **You will be able to**
# - test a scheduled job's work as a plain function of `(session, now, ttl)`, boundary included,
#   without a scheduler and without waiting;
# - test *when* it runs by asking the trigger (`get_next_fire_time`), and test the entry point that
#   reads the real clock with time-machine; explain why freezegun hangs async tests;
# - keep the scheduler off in tests behind a setting, and test that the lifespan starts and stops it
#   when the setting is on (clearing the `lru_cache` of the settings);
# - show that two app instances run the job twice, and make the second run a no-op with a lease row
#   that works on SQLite and PostgreSQL.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("13", traceback="line")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("13")` has pointed `DATABASE_URL` at this notebook's
# own, empty database before anything imports `app`. Failing tests are reported in one line each
# (`traceback="line"`).

# %%
import asyncio
import inspect
import os
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
import fastapi.testclient
from sqlalchemy import Column, MetaData, String, Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from app import jobs
from app.config import get_settings
from app.main import create_app
from app.models import Adopter, Adoption, AdoptionStatus, Animal
from course.checks import l13
from course.notebook import run_async
from tests.isolation import isolated_async_sessions

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~45 min teaching + 12 min exercise and quizzes).** Part 1 (~7
# min) is the design argument: the job is testable because its work takes `now` as a parameter; say
# it before showing any test. Part 2 (~10 min, 5 of them the freezegun deep dive): the trigger and
# the clock; the frozen-loop demo prints "still sleeping" after half a second of real time and then
# finishes: if a learner's machine is very slow it still finishes, the wait is bounded by
# `join(timeout)`. Part 3 (~7 min): the `lru_cache` failure is the one most teams have met without
# understanding it; ask the room why the test fails before reading the report. Part 4 (~12 min, 3 of
# them the advisory-lock deep dive): duplicate runs; stress that the lease must be taken in the
# **same transaction** as the job's work. The claim check takes ~9 min. Nothing in this notebook
# waits for a wall-clock schedule longer than a second; if a cell hangs, an interrupted run left a
# scheduler running in the kernel: restart the kernel and run from the top.

# %% [markdown]
# ## 1. The work is a plain function of (session, now, ttl)
# <!-- topic:job-function-with-now -->
#
# The shelter expires reservations whose fee stays unpaid for 48 hours: the animal becomes
# available again. `app/jobs.py` splits this in two. The **work** takes the session, the current
# time and the time-to-live as parameters, and does not commit:

# %%
print(inspect.getsource(jobs.expire_unpaid_reservations))

# %% [markdown]
# The **[entry point](../GLOSSARY.md#entry-point)** is what the [scheduler](../GLOSSARY.md#scheduler) calls: it opens its own session, reads the real clock
# and the setting, and commits.

# %%
print(inspect.getsource(jobs.run_expiry_job))

# %% [markdown]
# That split is the design decision that makes the job testable: a test calls the work with any
# `now` it likes, inside a rolled-back transaction, and never waits. Fixtures as in <!-- ref:rollback-fixture -->lesson 05<!-- /ref --> (a
# fresh engine per test, sessions joined to a never-committed transaction), and a helper that
# reserves an animal at a given time:

# %%
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
TTL = timedelta(hours=48)


@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    async with isolated_async_sessions(engine) as factory:
        yield factory
    await engine.dispose()


@pytest.fixture
async def session(sessions):
    async with sessions() as session:
        yield session


async def reserve(session, name, reserved_at, status=AdoptionStatus.RESERVED):
    adoption = Adoption(
        animal=Animal(name=name, species="dog", status="reserved"),
        adopter=Adopter(name=f"{name}'s adopter", email=f"{name.lower()}@example.org"),
        fee_cents=15000,
        reserved_at=reserved_at,
        status=status,
    )
    session.add(adoption)
    await session.flush()
    return adoption

# %% [markdown]
# Three reservations around the limit: one a minute too old, one a minute too young, one paid long
# ago. Only the first must expire, and its animal must become available.

# %%
# %%ipytest

async def test_expires_only_unpaid_reservations_older_than_the_ttl(session):
    old = await reserve(session, "Old", NOW - TTL - timedelta(minutes=1))
    young = await reserve(session, "Young", NOW - TTL + timedelta(minutes=1))
    paid = await reserve(session, "Paid", NOW - 2 * TTL, status=AdoptionStatus.PAID)

    expired = await jobs.expire_unpaid_reservations(session, now=NOW, ttl=TTL)

    assert expired == [old.id]
    assert (old.status, old.animal.status) == ("expired", "available")
    assert (young.status, paid.status) == ("reserved", "paid")

# %% [markdown]
# No scheduler, no clock, no sleep: the test says "it is 20 November, 12:00" and the job believes it.
#
# **Quiz 13.1.** A reservation was made exactly 48 hours before `now` (to the microsecond). What does
# `expire_unpaid_reservations(session, now=now, ttl=48 h)` do with it?
# - **a)** Keeps it: 48 hours have not been *exceeded*.
# - **b)** It depends on when the test runs.
# - **c)** It depends on the database: PostgreSQL and SQLite store timestamps differently.
# - **d)** Expires it: the query compares with `<=`.

# %% tags=["quiz-answer"]
answer("13.1", "d")

# %% [markdown]
# The boundary is a business rule, so it gets its own test (and the test documents the rule):

# %%
# %%ipytest

async def test_exactly_at_the_ttl_counts_as_expired(session):
    edge = await reserve(session, "Edge", NOW - TTL)
    assert await jobs.expire_unpaid_reservations(session, now=NOW, ttl=TTL) == [edge.id]

# %% [markdown]
# It passes on both databases: the timestamp column is stored with its time zone on PostgreSQL and
# as text on SQLite, and the comparison holds either way. If the business wanted "strictly more
# than 48 hours", this is the test that would change first.
#
# ## 2. When it runs, and the real clock
#
# *When* the job runs is the trigger's business: every hour, on the hour, in UTC. A trigger is a
# pure calculation, so we ask it instead of waiting for it:

# %%
print(jobs.EXPIRY_TRIGGER)
at = datetime(2026, 11, 20, 12, 34, 56, tzinfo=timezone.utc)
first = jobs.EXPIRY_TRIGGER.get_next_fire_time(None, at)
second = jobs.EXPIRY_TRIGGER.get_next_fire_time(first, first + timedelta(seconds=1))
print("after 12:34:56 ->", first.time(), "| then ->", second.time())
assert (first, second - first) == (datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc), timedelta(hours=1))

# %% [markdown]
# The first argument is the previous fire time (`None`: never fired), the second is "now". An hourly
# schedule checked in microseconds.
#
# The entry point `run_expiry_job` is different: it reads the real clock (`utcnow()`). To test it,
# we give it an isolated session factory (it opens its own session) and **move the clock** with
# [time-machine](../GLOSSARY.md#time-control). `tick=False` stops the clock at the given instant, so the test is exact.

# %%
# %%ipytest

async def test_entry_point_follows_the_clock(sessions, session, monkeypatch):
    adoption = await reserve(session, "Clocky", NOW)
    await session.commit()  # releases the test's savepoint; the outer transaction stays open
    monkeypatch.setattr(jobs, "SessionLocal", sessions)

    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert await jobs.run_expiry_job() == []
    with time_machine.travel(NOW + timedelta(hours=48), tick=False):
        assert await jobs.run_expiry_job() == [adoption.id]

# %% [markdown]
# The test reaches the 48th hour in no time, with an `await` on the database in between. That last
# detail is not a given.
#
# **Quiz 13.2.** freezegun is the other popular clock library. Why do async tests that use it with
# its defaults tend to hang?
# - **a)** freezegun does not support `datetime.now(timezone.utc)`.
# - **b)** It also freezes `time.monotonic`, the event loop's clock: no sleep or timeout comes due.
# - **c)** It is not thread-safe, and ipytest runs tests in a thread.
# - **d)** It patches `asyncio.sleep` so that every sleep returns at once, and the event loop spins
#   forever without ever yielding to the test.

# %% tags=["quiz-answer"]
answer("13.2", "b")

# %% [markdown]
# ### Why freezegun hangs async tests (deep dive)
#
# freezegun is not installed here (and we do not add it), so we show the mechanism itself. First:
# the [event loop](../GLOSSARY.md#loop-scope)'s clock is `time.monotonic`:

# %%
print(inspect.getsource(asyncio.BaseEventLoop.time))

# %% [markdown]
# Second: time-machine 3.6 moves the **wall** clock (`time.time`, `datetime.now`) and leaves
# `time.monotonic` running. We check it rather than believe it: inside a stopped travel, the wall
# clock stands still while the monotonic clock and a real `asyncio.sleep` go on.

# %%
async def sleep_under_time_machine():
    with time_machine.travel(NOW, tick=False):
        wall, mono = time.time(), time.monotonic()
        await asyncio.wait_for(asyncio.sleep(0.05), timeout=1)
        return time.time() - wall, time.monotonic() - mono

wall_moved, mono_moved = await sleep_under_time_machine()
print(f"during a 0.05 s sleep: wall clock moved {wall_moved} s, monotonic clock moved > 0.04 s: {mono_moved > 0.04}")
assert wall_moved == 0 and mono_moved > 0.04

# %% [markdown]
# Third: what freezegun's default does to the loop. We give an event loop a frozen clock (its
# `time()` returns a constant, exactly what a frozen `time.monotonic` gives it) and ask it to sleep
# 0.05 s, in a thread that we watch for half a second of real time, then unfreeze.

# %%
class FrozenClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock stops while ``frozen_at`` is set (like a frozen time.monotonic)."""

    frozen_at = None

    def time(self):
        return self.frozen_at if self.frozen_at is not None else super().time()


loop = FrozenClockLoop()
loop.frozen_at = loop.time()
sleeper = threading.Thread(target=loop.run_until_complete, args=(asyncio.sleep(0.05),))
sleeper.start()
sleeper.join(timeout=0.5)
print("clock frozen: still sleeping after 0.5 s of real time:", sleeper.is_alive())
assert sleeper.is_alive()

loop.frozen_at = None  # unfreeze, and the same sleep completes at once
sleeper.join(timeout=5)
loop.close()
print("clock running again: finished:", not sleeper.is_alive())
assert not sleeper.is_alive()

# %% [markdown]
# A 0.05 s sleep never ended while the clock stood still, and `asyncio.wait_for(..., timeout=...)`
# would not rescue it: the timeout is measured on the same frozen clock. That is why an async test
# under freezegun's defaults hangs instead of failing. Use time-machine, or freezegun with
# `real_asyncio=True`, which leaves the loop's clock alone.
#
# Version note: the mechanism was shown above on this notebook's pins (time-machine 3.6.0, Python
# 3.11); freezegun is not installed here. freezegun 1.5 still freezes `time.monotonic` by default
# and offers `real_asyncio=True` as the way out; time-machine has never patched the monotonic clock.

# %% [markdown]
# ## 3. The scheduler stays off in tests
# <!-- topic:scheduler-off-in-tests -->
#
# The [lifespan](../GLOSSARY.md#lifespan) starts a scheduler only where `SCHEDULER_ENABLED` is true, and it is false by default:
# tests, scripts and the second web worker never start one by accident.

# %%
print(inspect.getsource(jobs.build_scheduler))
print("scheduler_enabled by default:", get_settings().scheduler_enabled)

# %% [markdown]
# The scheduler has two jobs: the hourly expiry, and the payment sweep of <!-- ref:payment-exactly-once -->lesson 11<!-- /ref -->
# (`run_reconcile_job`, every `PAYMENT_SWEEP_MINUTES`). The same rules apply to both, so a test
# looks a job up by its id. We test both sides: off by default, on (and stopped again at shutdown)
# when enabled. The obvious way to switch it on in one test is `monkeypatch.setenv`:

# %%
shelter = create_app()


async def test_scheduler_is_off_unless_enabled():
    async with LifespanManager(shelter):
        assert shelter.state.scheduler is None


async def test_lifespan_starts_the_scheduler_when_enabled(monkeypatch):
    monkeypatch.setenv("SCHEDULER_ENABLED", "true")
    async with LifespanManager(shelter):
        assert shelter.state.scheduler is not None


run_tests("test_scheduler_is_off_unless_enabled")
run_tests("test_lifespan_starts_the_scheduler_when_enabled", expect="failed")

# %% [markdown]
# `assert None is not None`: the environment says true, the app says no scheduler. `get_settings()`
# is wrapped in `functools.lru_cache` (`app/config.py`): the settings were read once, earlier in
# this kernel, and the new environment variable is never looked at. The fix is a fixture that
# clears the cache after changing the environment **and** again at teardown, so the next test does
# not inherit the scheduler:

# %%
# %%ipytest

@pytest.fixture
def settings_env(monkeypatch):
    def apply(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()  # runs before monkeypatch restores the environment...


async def test_lifespan_starts_and_stops_the_scheduler_when_enabled(settings_env):
    settings_env(SCHEDULER_ENABLED="true")
    async with LifespanManager(shelter):
        scheduler = shelter.state.scheduler
        assert scheduler.running
        assert scheduler.get_job("expire-unpaid-reservations").func is jobs.run_expiry_job
        assert scheduler.get_job("reconcile-payments").func is jobs.run_reconcile_job
    assert not scheduler.running

# %% [markdown]
# (... and that is enough: the next `get_settings()` call reads the environment again, by then
# restored.) The check below runs after the test and shows nothing leaked into the kernel:

# %%
print("scheduler_enabled after the test:", get_settings().scheduler_enabled)
assert get_settings().scheduler_enabled is False and "SCHEDULER_ENABLED" not in os.environ

# %% [markdown]
# ## 4. Two workers, two schedulers, two runs
#
# In production the app runs in several processes (`uvicorn --workers 4`, gunicorn). Each one runs
# the lifespan, so with `SCHEDULER_ENABLED=true` everywhere each one starts its own scheduler, and
# every job runs once per worker. APScheduler's FAQ is explicit that a job store cannot be shared
# between processes to prevent this.
#
# **Quiz 13.3.** Two workers both run the expiry job at 13:00. Which change makes sure its work
# happens only once?
# - **a)** `replace_existing=True` in `add_job` (it is already there).
# - **b)** Give the job a fixed `id`.
# - **c)** Run the scheduler in one process only, or have every run take a lock first (a lease row
#   with a unique key, or a PostgreSQL advisory lock).
# - **d)** Use `BackgroundScheduler` instead of `AsyncIOScheduler`, so that the job runs in a thread of
#   its own and no longer twice on the event loops of the two workers.

# %% tags=["quiz-answer"]
answer("13.3", "c")

# %% [markdown]
# We simulate two workers in this process: two instances of the app, both started with the
# scheduler enabled. To see runs without waiting for 13:00, the job function is swapped for one
# that counts its runs, and each scheduler is told that the job is due now. We wait at most one
# second for the runs.

# %%
@contextmanager
def scheduler_enabled():
    os.environ["SCHEDULER_ENABLED"] = "true"
    get_settings.cache_clear()
    try:
        yield
    finally:
        del os.environ["SCHEDULER_ENABLED"]
        get_settings.cache_clear()


async def run_two_workers(job):
    """Start two app instances with their schedulers; make the expiry job due; return after <= 1 s."""
    real_job, jobs.run_expiry_job = jobs.run_expiry_job, job  # build_scheduler() picks this one
    try:
        with scheduler_enabled():
            workers = [create_app(), create_app()]
            async with LifespanManager(workers[0]), LifespanManager(workers[1]):
                for worker in workers:
                    worker.state.scheduler.modify_job("expire-unpaid-reservations", next_run_time=datetime.now(timezone.utc))
                deadline = time.monotonic() + 1
                while len(RUNS) < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.1)  # let a started run finish
    finally:
        jobs.run_expiry_job = real_job

# %%
RUNS = []


async def counted_job():
    RUNS.append("expiry")


await run_two_workers(counted_job)
print("the job ran", len(RUNS), "times")
assert len(RUNS) == 2

# %% [markdown]
# Twice. For our job the second run usually finds nothing left to expire, and two sweeps at once
# settle a payment once (each claims it with a conditional UPDATE; `tests/test_payments.py` runs
# two), but a job that sends reminder mails or charges cards does its work twice. Two fixes:
# - **one scheduler process**: `SCHEDULER_ENABLED=true` on a single dedicated process (or a
#   separate worker service), false on the web workers. This is what our setting is for.
# - **a lock taken by every run**, when you cannot control where the scheduler starts.
#
# A lock that works on both SQLite and PostgreSQL is a **lease row**: a table whose primary key is
# (job, slot), where the slot names the scheduled run (here: the hour). Every run inserts its row
# in the same transaction as its work; the second insert violates the key, so that run does
# nothing. If a run fails, its transaction rolls back with the lease, and the slot can be retried.
#
# ```mermaid
# sequenceDiagram
#     participant A as worker 1 and its scheduler
#     participant DB as database, table job_leases
#     participant B as worker 2 and its scheduler
#     Note over A,B: at 1 pm both schedulers fire the expiry job
#     A->>DB: BEGIN, INSERT lease row for expiry, slot 1 pm
#     B->>DB: BEGIN, INSERT the same lease row
#     Note over DB,B: worker 2 waits until worker 1 commits
#     A->>DB: the work of the job, then COMMIT
#     DB-->>B: IntegrityError, the slot is taken
#     B->>DB: ROLLBACK, the job does nothing
# ```

# %%
leases = Table("job_leases", MetaData(), Column("job", String(100), primary_key=True), Column("slot", String(40), primary_key=True))


@asynccontextmanager
async def lease_engine():
    engine = create_async_engine(nb.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(leases.metadata.create_all)
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(leases.metadata.drop_all)
        await engine.dispose()


def once_per_slot(engine, job_name, work):
    async def run():
        slot = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0).isoformat()
        try:
            async with engine.begin() as conn:  # lease and work commit (or roll back) together
                await conn.execute(insert(leases).values(job=job_name, slot=slot))
                await work(conn)
        except IntegrityError:
            RUNS.append("skipped: lease taken")

    return run

# %% [markdown]
# The same two workers, each running the counted job behind the lease:

# %%
async def counted_work(conn):
    RUNS.append("expiry")


RUNS.clear()
async with lease_engine() as engine:
    await run_two_workers(once_per_slot(engine, "expire-unpaid-reservations", counted_work))
print(sorted(RUNS))
assert sorted(RUNS) == ["expiry", "skipped: lease taken"]

# %% [markdown]
# One run did the work, the other found the lease taken and did nothing, on either database: on
# PostgreSQL the second `INSERT` waits for the first transaction (if still open) and fails on the key; on
# SQLite the second writer waits for the first one's write lock (the driver's busy timeout, 5 s by
# default), then fails the same way.
#
# ### Advisory locks, and restarting a scheduler (deep dive)
#
# PostgreSQL also offers **advisory locks**: `pg_try_advisory_lock(key)` returns true for exactly
# one session until it unlocks. SQLite has no such thing (its nearest tool, `BEGIN IMMEDIATE`, locks
# the whole database for writing). On PostgreSQL this cell shows two sessions asking for the same
# key:

# %% tags=["output-per-database"]
if nb.backend == "postgresql":
    engine = create_async_engine(nb.database_url)
    async with engine.connect() as one, engine.connect() as two:
        got = [await c.scalar(text("SELECT pg_try_advisory_lock(7007)")) for c in (one, two)]
        await one.execute(text("SELECT pg_advisory_unlock(7007)"))
    await engine.dispose()
    print("worker 1 got the lock:", got[0], "| worker 2 got the lock:", got[1])
    assert got == [True, False]
else:
    print("SQLite has no advisory locks: use the lease table (or one scheduler process).")

# %% [markdown]
# An advisory lock only excludes runs that **overlap**: if worker 1 finishes and unlocks before
# worker 2 asks, worker 2 gets the lock and runs the job again. For "once per scheduled run", the
# lease row is the stronger tool; the advisory lock fits "never two at the same time".
#
# Version note: APScheduler 3.11.0 reused a closed event loop when a scheduler was started again
# (`RuntimeError: Event loop is closed`), which bit test suites that run the lifespan once per
# test, each on a new loop. The 3.11.1 code fixed it, though its release notes do not say so: the change
# ([commit b1f5636](https://github.com/agronholm/apscheduler/commit/b1f5636ccaf6a2fe86b208d7bd6b43024a1546b3),
# made for [issue #1019](https://github.com/agronholm/apscheduler/issues/1019), a wrong exception from
# `shutdown()`) also makes `start()` take the running loop when the stored one is closed, and
# `shutdown()` forget the loop. This project pins 3.11.3. We check it: one
# `AsyncIOScheduler`, started on one event loop, shut down, and started again on a new one, each
# time with a job due at once that notes the loop it ran on:

# %%
restarted = AsyncIOScheduler(timezone="UTC")
RAN_ON = []


async def note_the_loop():
    RAN_ON.append(asyncio.get_running_loop())


async def start_run_one_job_and_shut_down():
    restarted.add_job(note_the_loop, next_run_time=datetime.now(timezone.utc))
    restarted.start()
    for _ in range(500):  # a few milliseconds, usually
        if RAN_ON and RAN_ON[-1] is asyncio.get_running_loop():
            break
        await asyncio.sleep(0.01)
    restarted.shutdown(wait=False)
    return bool(RAN_ON) and RAN_ON[-1] is asyncio.get_running_loop()


outcomes = [run_async(start_run_one_job_and_shut_down()) for loop in ["first loop", "second loop"]]
print("the job ran on the new loop, first start and restart:", outcomes)
assert outcomes == [True, True]

# %% [markdown]
# (`run_async` runs a coroutine on a brand-new event loop in a thread, as a test suite with one
# loop per test would.) The restarted scheduler uses the new loop, with no `Event loop is closed`.

# %% [markdown]
# ### Claim check: test a scheduled task by triggering it by hand, and start a module-level scheduler on app startup
#
# Source: cmdragon, ["如何用FastAPI玩转多模块测试与异步任务，让代码不再"闹脾气"？" ("Multi-module tests
# and async tasks in FastAPI")](https://blog.cmdragon.cn/posts/ddbfa0447a5d0d6f9af12e7a6b206f70/),
# blog.cmdragon.cn, 2025-09-10. In our words: define the job on a module-level
# `BackgroundScheduler` with an `interval` decorator, start the scheduler when the app starts, stop
# it at shutdown, and test the job by calling its function directly; the post's tests talk to the
# app through a module-level `client = TestClient(app)`. Its setup, rebuilt in our code (with a
# lifespan instead of `@app.on_event`, which FastAPI 0.165 still accepts but deprecates):

# %%
post_scheduler = BackgroundScheduler()


@post_scheduler.scheduled_job("interval", seconds=60)
def backup():
    pass


@asynccontextmanager
async def post_lifespan(app):
    post_scheduler.start()  # unconditionally
    yield
    post_scheduler.shutdown()

# %%
post_app = FastAPI(lifespan=post_lifespan)


@post_app.get("/ping")
def ping():
    return "pong"


def scheduler_threads():
    return [thread.name for thread in threading.enumerate() if thread.name == "APScheduler"]


async with LifespanManager(post_app):
    print("scheduler running during the test:", post_scheduler.running, "| its thread:", scheduler_threads())
    assert post_scheduler.running and scheduler_threads() == ["APScheduler"]
assert not post_scheduler.running and scheduler_threads() == []

# %% [markdown]
# Entered like this, through the lifespan, every test that starts the app (and every web worker)
# starts a scheduler with a thread of its own: nothing switches it off. But do the post's own tests
# enter the lifespan? They create `client = TestClient(app)` once, at module level, and never use it
# in a `with` block.
#
# **Quiz 13.4.** A test module holds `client = TestClient(post_app)` at module level, without
# `with`, and its five tests each call `client.get("/ping")`. How many schedulers do they start?
# - **a)** None: without `with`, the client never runs the app's start-up.
# - **b)** One per test: each test's requests go through the app, which starts its scheduler at
#   start-up and stops it at shut-down.
# - **c)** One, at the first request, shared by every later test of the module.
# - **d)** One per request.

# %% tags=["quiz-answer"]
answer("13.4", "a")

# %% jupyter={"source_hidden": true}
client = fastapi.testclient.TestClient(post_app)  # module level, no `with`: the post's tests
print("a request without `with`:", client.get("/ping").json(), "| scheduler running:", post_scheduler.running)
assert not post_scheduler.running and scheduler_threads() == []

with fastapi.testclient.TestClient(post_app) as started:
    print("inside `with TestClient(...)`:", started.get("/ping").json(), "| scheduler running:", post_scheduler.running)
    assert post_scheduler.running
assert not post_scheduler.running

# %% [markdown]
# Without `with`, Starlette's `TestClient` sends no lifespan events: the post's tests start no
# scheduler at all, so the scheduler set-up they come with is never run by a test; it runs for the
# first time in production, in every worker. A suite that enters the lifespan per test
# (`with TestClient(app)` or `LifespanManager` in each test or in a [function-scoped](../GLOSSARY.md#function-scoped-fixture) fixture) starts one per
# test; entered once, in a session-scoped fixture, it starts one for the whole run.
#
# Now "trigger it by hand" with our job. Called by hand, `run_expiry_job`
# reads the real clock, so a test written on 20 November against a reservation made 47 hours before
# noon passes that day and fails two days later. We play both days with time-machine:

# %%
async def trigger_by_hand_on(day):
    engine = create_async_engine(nb.database_url)
    try:
        async with isolated_async_sessions(engine) as sessions:
            async with sessions() as session:
                await reserve(session, "Handy", NOW - timedelta(hours=47))
                await session.commit()
            real_sessions, jobs.SessionLocal = jobs.SessionLocal, sessions
            try:
                with time_machine.travel(day, tick=False):
                    return len(await jobs.run_expiry_job())
            finally:
                jobs.SessionLocal = real_sessions
    finally:
        await engine.dispose()


written = await trigger_by_hand_on(NOW)
later = await trigger_by_hand_on(NOW + timedelta(days=2))
print("expired on the day the test was written:", written, "| two days later:", later)
assert (written, later) == (0, 1)

# %% [markdown]
# **Verdict:** <!-- verdict:trigger-job-by-hand-module-scheduler -->half right<!-- /verdict -->. Calling the job's function directly, without a scheduler, is the right
# idea, and it is what part 1 does. But it only gives a stable test when the function takes `now`
# as a parameter (or the test controls the clock, as with time-machine); a job that reads the clock
# and opens its own session tests "today", on the real database. And the setup that goes with it
# starts a scheduler unconditionally. The post's own tests never notice, because their
# module-level `TestClient` without `with` never runs start-up; every test that does enter the
# lifespan, and every web worker, starts one. Keep it behind a setting, off by default, test
# that the lifespan starts it when the setting is on (part 3), and test the trigger with
# `get_next_fire_time` instead of waiting for it.

# %% [markdown]
# ### Exercise 1: 47 hours survive, 49 hours expire
#
# Write a test for the **entry point** `run_expiry_job`: two reservations, one made 47 hours before
# `NOW`, one made 49 hours before `NOW`. At `NOW` (clock stopped), the job must expire the second
# one only, and its animal must be available again. The last line of the exercise cell runs your test against
# the real job (it must pass) and against [broken versions](../GLOSSARY.md#broken-version) of it (it must fail for each), and names
# any broken version it lets through.
#
# > Hint: use `reserve(session, ...)` twice and `await session.commit()`; point `jobs.SessionLocal`
# > at `sessions` with `monkeypatch.setattr`; run the job inside
# > `with time_machine.travel(NOW, tick=False):`; then `await session.refresh(adoption)` (and
# > `adoption.animal`) before checking their `status`.

# %%
async def test_47_hours_survive_49_hours_expire(sessions, session, monkeypatch):
    # BEGIN SOLUTION
    survivor = await reserve(session, "Survivor", NOW - timedelta(hours=47))
    expiring = await reserve(session, "Expiring", NOW - timedelta(hours=49))
    await session.commit()
    monkeypatch.setattr(jobs, "SessionLocal", sessions)

    with time_machine.travel(NOW, tick=False):
        assert await jobs.run_expiry_job() == [expiring.id]

    for adoption in (survivor, expiring):
        await session.refresh(adoption)
        await session.refresh(adoption.animal)
    assert (survivor.status, survivor.animal.status) == ("reserved", "reserved")
    assert (expiring.status, expiring.animal.status) == ("expired", "available")
    # END SOLUTION


l13.check_expiry_test()

# %% [markdown]
# Without `tick=False` the clock starts at `NOW` and keeps running, and the test still passes here;
# it would not for a reservation one microsecond short of the limit, which a ticking clock moves
# past. Without `monkeypatch.setattr`, the job opens a session of the app's own, on a connection of
# its own: it cannot see the reservations of the test's rolled-back transaction, and whatever it
# changed would be committed for real. The check below makes sure nothing was.

# %% [markdown] tags=["instructor"]
# **Instructor notes (exercise).** Common mistakes: forgetting `session.commit()` before the job
# (the job's session is another session on the same connection: it sees flushed rows too here,
# but in production it would not, so insist on committing); refreshing the adoption but not the
# animal (the test's session holds a stale `animal.status`); calling `expire_unpaid_reservations`
# instead of the entry point (fine, but then the clock is not tested). Learners who wrap the job in
# `time_machine.travel` *and* the `reserve` calls in it get the same result: only `now` matters.
# If a learner's test leaks, the cell below fails: restart the kernel and run from the top.

# %%
engine = create_async_engine(nb.database_url)
async with engine.connect() as conn:
    left = await conn.scalar(text("SELECT count(*) FROM adoptions"))
await engine.dispose()
print("adoptions left behind:", left)
assert left == 0

# %% [markdown]
# ## Sources and further reading
#
# - cmdragon, ["如何用FastAPI玩转多模块测试与异步任务，让代码不再"闹脾气"？" ("Multi-module tests and async
#   tasks in FastAPI")](https://blog.cmdragon.cn/posts/ddbfa0447a5d0d6f9af12e7a6b206f70/),
#   blog.cmdragon.cn, 2025-09-10: the scheduler set-up and "trigger it by hand" advice checked above.
# - APScheduler 3.11, [User guide](https://apscheduler.readthedocs.io/en/3.x/userguide.html),
#   [cron trigger](https://apscheduler.readthedocs.io/en/3.x/modules/triggers/cron.html),
#   [FAQ: sharing a job store between processes](https://apscheduler.readthedocs.io/en/3.x/faq.html)
#   and the [version history](https://apscheduler.readthedocs.io/en/3.x/versionhistory.html); the
#   closed-loop restart fix is in the 3.11.1 code, not its notes:
#   [commit b1f5636](https://github.com/agronholm/apscheduler/commit/b1f5636ccaf6a2fe86b208d7bd6b43024a1546b3).
# - time-machine 3.6, [documentation](https://time-machine.readthedocs.io/) (`travel`, `tick`).
# - FastAPI, [Lifespan Events](https://fastapi.tiangolo.com/advanced/events/) and
#   [Testing Events](https://fastapi.tiangolo.com/advanced/testing-events/) (`with TestClient(app)`);
#   asgi-lifespan 2.1, [`LifespanManager`](https://github.com/florimondmanca/asgi-lifespan).
# - PostgreSQL 15, [Advisory Locks](https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-LOCKS).
#
# Versions: APScheduler 3.11.3 (>= 3.11.1 restarts on a new loop), time-machine 3.6.0, FastAPI
# 0.165 on Starlette 1.10 (`TestClient` runs the lifespan only inside `with`).

# %% [markdown] tags=["key-points"]
# ## Key points
# - Write the job's work as a plain function of `(session, now, ttl)` that does not commit: tests
#   call it with any `now`, boundaries included, inside a rolled-back transaction.
# - Test *when* it runs by asking the trigger: `trigger.get_next_fire_time(None, now)`. Never wait
#   for a schedule.
# - Test the entry point that reads the clock with `time_machine.travel(..., tick=False)`; it moves
#   the wall clock and leaves `time.monotonic` (the event loop's clock) alone. freezegun's default
#   freezes it, and async tests hang.
# - Start the scheduler only where a setting says so, off by default; in tests that switch it on,
#   clear the `lru_cache` of the settings before and after. A `TestClient` used without `with`
#   never runs start-up: such tests never see the scheduler at all.
# - Every worker that starts a scheduler runs every job: run one scheduler process, or take a lease
#   row (job, slot) in the job's own transaction; advisory locks only exclude overlapping runs.
#
# **Next:** [14 · Speed and scale: what isolation costs](14_speed_and_scale.ipynb)
