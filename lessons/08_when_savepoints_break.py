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
# # 08 · When savepoints break

# %% [markdown] tags=["overview"]
# **Teaching:** 40 min · **Exercises:** 11 min
#
# **Prerequisites:** 07 · Savepoints (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, `begin_nested()` and the statement recorder);
# 05 · Rollback fixtures (the outer transaction and `join_transaction_mode="create_savepoint"`)
#
# **You will be able to**
# - recognise the SQLite driver quirk that makes a correct rollback fixture leak rows, and build a
#   test engine that isolates on PostgreSQL and on SQLite;
# - tell from the statements sent why a fixture that yields inside `begin_nested()` does not isolate;
# - diagnose `savepoint ... does not exist`: concurrent requests on the test's one connection, and a
#   long-lived session whose rollback destroys the test's savepoint.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("08", traceback="line")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("08")` has already pointed `DATABASE_URL` at this
# notebook's own, empty database, so importing `app` now is safe. Failing tests are reported in one
# line each (`traceback="line"`): the error text is what matters here, not the stack.

# %%
import asyncio
import inspect
import re
import sys
from contextlib import asynccontextmanager, contextmanager

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, event, select
from sqlalchemy.exc import IntegrityError, SAWarning
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.db import get_session
from app.models import Animal
from app.routes import animals
from course.checks import l08
from course.notebook import reset_schema
from tests import isolation
from tests.isolation import fix_sqlite_savepoints, isolated_async_sessions, override_dependency, session_dependency

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~40 min teaching + 11 min exercise and quizzes).** Part 1
# (~12 min) is the one that saves people days: ask "who runs their tests on SQLite?" first. On
# PostgreSQL every cell of part 1 also runs the recipe on a scratch SQLite file, so the whole room
# sees the leak whatever database it uses. Give the exercise its 8 minutes right after part 1. The
# claim check (deep dive, ~5 min) can be read aloud. Part 2 (~20 min): let the class predict Quiz
# 08.2 before showing the trace. Run the notebook once on PostgreSQL before the workshop
# (`DATABASE_URL=$(scripts/postgres start)`), so you have seen both error texts.

# %% [markdown]
# Helpers carried over from <!-- ref:statement-recorder -->lesson 07<!-- /ref -->, collapsed because they only open engines and read names:
# `fixed_engine(url)` (an engine with the SQLite fix that part 1 explains, disposed of at the end of
# the cell, since tests run on another [event loop](../GLOSSARY.md#loop-scope)), `names(conn)` (what a connection or session sees),
# `committed_names(url)` (what a brand-new connection sees), `delete_animals(url)`, and the
# statement recorder `recording(engine)`. `SQLITE_URL` is a scratch SQLite file that part 1 compares
# with when this notebook runs on PostgreSQL (on SQLite it is this notebook's own database).

# %% jupyter={"source_hidden": true}
@asynccontextmanager
async def fixed_engine(url: str | None = None):
    engine = create_async_engine(url or nb.database_url)
    fix_sqlite_savepoints(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def names(conn_or_session) -> list[str]:
    """The animal names this connection (or session) sees, committed or not."""
    return sorted(await conn_or_session.scalars(select(Animal.name)))


async def committed_names(url: str | None = None) -> list[str]:
    """The animal names a brand-new connection sees: only what was really committed."""
    async with fixed_engine(url) as engine, engine.connect() as conn:
        return await names(conn)


async def delete_animals(url: str | None = None) -> None:
    """Clean-up after a demonstration that committed rows on purpose."""
    async with fixed_engine(url) as engine, engine.begin() as conn:
        await conn.execute(delete(Animal))


SQLITE_URL = nb.database_url if nb.backend == "sqlite" else l08.comparison_sqlite_url()  # one file in .data/
await reset_schema(SQLITE_URL)
DATABASES = {nb.backend: nb.database_url, "sqlite": SQLITE_URL}  # PostgreSQL first, when it runs

# %% jupyter={"source_hidden": true}
def short(statement: str) -> str:
    """INSERT/SELECT statements shortened to their table: the parameters vary by driver."""
    flat = " ".join(statement.split())
    match = re.match(r"INSERT INTO \w+|SELECT .*? FROM \w+", flat)
    return match.group(0) if match else flat


@contextmanager
def recording(engine):
    """Collect, in order, what SQLAlchemy sends to the database through ``engine``."""
    sent: list[str] = []
    listeners = {
        "before_cursor_execute": lambda conn, cursor, statement, *args: sent.append(short(statement)),
        "commit": lambda conn: sent.append("COMMIT"),
        "rollback": lambda conn: sent.append("ROLLBACK"),
    }
    for name, listener in listeners.items():
        event.listen(engine.sync_engine, name, listener)
    try:
        yield sent
    finally:
        for name, listener in listeners.items():
            event.remove(engine.sync_engine, name, listener)

# %% [markdown]
# ## 1. The SQLite driver quirk: a correct fixture that leaks
# <!-- topic:sqlite-savepoint-fix -->
#
# Every demonstration of <!-- ref:statement-recorder -->lesson 07<!-- /ref --> ran with `fixed_engine()`. Now the reason. Python's `sqlite3`
# driver (and `aiosqlite`, which runs it in a thread) manages transactions itself, in an old mode:
# it sends `BEGIN` on its own just before an `INSERT`, `UPDATE` or `DELETE`, and **never** when
# SQLAlchemy calls `begin()`, which reaches it as a no-op. SQLite, for its part, has a rule: a
# `SAVEPOINT` outside any transaction starts one, and releasing that outermost [savepoint](../GLOSSARY.md#savepoint) **commits** it.
#
# %% [markdown]
# <!-- ref:rollback-fixture -->Lesson 05<!-- /ref -->'s recipe in a few lines, as a function we can run on any engine: an [outer transaction](../GLOSSARY.md#outer-transaction),
# a session joined with [`create_savepoint`](../GLOSSARY.md#join-mode) that adds "Leaky" and commits, the outer rollback. It
# returns what was sent, and whether the driver still had a transaction open right after the
# session's `commit()` (we ask the driver connection itself: `in_transaction` on SQLite,
# `is_in_transaction()` on asyncpg).

# %%
async def driver_in_transaction(conn) -> bool:
    driver = (await conn.get_raw_connection()).driver_connection
    return driver.in_transaction if conn.dialect.name == "sqlite" else driver.is_in_transaction()


async def rollback_recipe(engine) -> tuple[list[str], bool]:
    with recording(engine) as sent:
        async with engine.connect() as conn:
            outer = await conn.begin()
            async with AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as session:
                session.add(Animal(name="Leaky", species="rabbit"))
                await session.commit()  # what the app does
            still_open = await driver_in_transaction(conn)
            await outer.rollback()  # what the fixture does at teardown
    return sent, still_open

# %% [markdown]
# First on a plain engine, without the fix, on this notebook's database and, when that is
# PostgreSQL, on the scratch SQLite file too (`DATABASES`), so that every reader sees both.
#
# **Quiz 08.1.** Predict the rows the next cell leaves behind, on each database:
# - **a)** SQLite: `["Leaky"]`; PostgreSQL: `[]`.
# - **b)** `[]` on both: the outer rollback undoes the savepoint's work whatever the driver does.
# - **c)** `["Leaky"]` on both: a released savepoint is committed work.
# - **d)** SQLite: `[]`; PostgreSQL: `["Leaky"]`, because asyncpg commits each statement sent outside an explicit transaction.

# %% tags=["quiz-answer"]
answer("08.1", "a")

# %% tags=["output-per-database"] jupyter={"source_hidden": true}
for backend, url in DATABASES.items():
    plain = create_async_engine(url)
    sent, still_open = await rollback_recipe(plain)
    await plain.dispose()
    leaked = await committed_names(url)
    await delete_animals(url)
    print(f"{backend}: sent", ", ".join(sent))
    print(f"  driver in a transaction after the session's commit(): {still_open}; rows left behind: {leaked}")
    assert sent == ["SAVEPOINT sa_savepoint_1", "INSERT INTO animals", "RELEASE SAVEPOINT sa_savepoint_1", "ROLLBACK"]
    if backend == "sqlite":
        assert (still_open, leaked) == (False, ["Leaky"])  # RELEASE committed: the row leaked
    else:
        assert (still_open, leaked) == (True, [])  # asyncpg sent BEGIN itself: nothing leaked

# %% [markdown]
# The same four statements, two outcomes. On SQLite: no `BEGIN` in the list, the driver was **out**
# of any transaction right after the `RELEASE`, and "Leaky" is in the database for good, although the
# fixture did everything right. On PostgreSQL nothing is left behind: SQLAlchemy's asyncpg adapter
# has asyncpg start a real transaction just before the first statement (asyncpg sends that `BEGIN`
# itself, outside the cursor, so it is not in the list either), the `SAVEPOINT` nests inside it, and
# the outer `ROLLBACK` undoes everything. A suite that passes on PostgreSQL on CI can leave rows on a
# laptop that runs it on SQLite.
#
# The fix comes from SQLAlchemy's SQLite dialect documentation ("Enabling Non-Legacy SQLite
# Transactional Modes"): tell the driver to stop managing transactions, and send `BEGIN` ourselves
# whenever SQLAlchemy begins one. `tests/isolation.py` ships it as `fix_sqlite_savepoints(engine)`,
# two event listeners:

# %%
for function in (isolation._sqlite_autocommit_driver, isolation._sqlite_emit_begin, isolation.fix_sqlite_savepoints):
    print(inspect.getsource(function))

# %% [markdown]
# The same recipe on fixed engines (on PostgreSQL the fix does nothing, so that run is the same as
# before):

# %% tags=["output-per-database"]
for backend, url in DATABASES.items():
    fixed = create_async_engine(url)
    fix_sqlite_savepoints(fixed)
    sent, still_open = await rollback_recipe(fixed)
    await fixed.dispose()
    leaked = await committed_names(url)
    print(f"{backend}: sent", ", ".join(sent))
    print(f"  driver in a transaction after the session's commit(): {still_open}; rows left behind: {leaked}")
    begin = ["BEGIN"] if backend == "sqlite" else []  # asyncpg's BEGIN never shows in the list
    assert sent == [*begin, "SAVEPOINT sa_savepoint_1", "INSERT INTO animals", "RELEASE SAVEPOINT sa_savepoint_1", "ROLLBACK"]
    assert (still_open, leaked) == (True, [])

# %% [markdown]
# Now SQLite receives a real `BEGIN`, the savepoint nests inside it, the transaction is still open
# after the `RELEASE`, and nothing is left behind. Install the fix on **every** engine that a test
# uses on SQLite, before its first connection (pooled connections keep the mode they were opened
# with). The sample app does the same for its own engine (`app/db.py`).
#
# Python 3.12 added a cleaner switch: `sqlite3.connect(..., autocommit=False)` makes the driver
# behave as the DB-API says (a transaction is always open), and SQLAlchemy passes it through with
# `connect_args={"autocommit": False}`. On Python 3.11, which this course pins, that keyword does
# not exist yet. The cell checks what your Python does, on SQLite (it is a `sqlite3` argument):

# %%
engine = create_async_engine(SQLITE_URL, connect_args={"autocommit": False})
try:
    sent, still_open = await rollback_recipe(engine)
    outcome = f"works: rows left behind {await committed_names(SQLITE_URL)}"
except TypeError as exc:
    outcome = f"TypeError: {exc}"
finally:
    await engine.dispose()
print(f"Python {sys.version_info.major}.{sys.version_info.minor}:", outcome)

if sys.version_info < (3, 12):
    assert outcome == "TypeError: 'autocommit' is an invalid keyword argument for Connection()"
else:
    assert outcome == "works: rows left behind []"

# %% [markdown]
# Version note: on Python 3.11 the driver rejects the argument (`TypeError`), so
# [`fix_sqlite_savepoints`](../GLOSSARY.md#sqlite-driver-quirk) is the way; on 3.12 or later either works. It is the driver's default that bites, and SQLAlchemy 2.1 still leaves that
# default alone.

# %% [markdown]
# ### Exercise 1: a test engine that isolates on both databases
#
# A team's [`conftest.py`](../GLOSSARY.md#conftestpy) builds every test engine in one function, `make_test_engine(url)`, and
# uses <!-- ref:rollback-fixture -->lesson 05<!-- /ref -->'s fixture on it. CI runs the suite on PostgreSQL and nothing leaks; on a laptop,
# on SQLite, rows pile up. Complete the function so that the fixture isolates on **both** databases.
#
# > Hint: the engine must get the driver fix before its first connection. Not an isolation level:
# > `"AUTOCOMMIT"` and `"SERIALIZABLE"` do not change when the driver sends `BEGIN`.
#
# The check at the end of the cell runs the fixture's recipe (the "Leaky" rabbit, committed by the
# session, then the outer rollback) on an engine of yours for this notebook's database and, when
# that is PostgreSQL, for a scratch SQLite file too. It wants no row left behind on either, and on
# SQLite a real `BEGIN` sent before the savepoint, so the transaction is still open after the
# session's `commit()`.

# %% tags=["output-per-database"]
def make_test_engine(url: str):
    """An engine for the tests: the rollback fixture on it must leave no row, on any database."""
    # BEGIN SOLUTION
    engine = create_async_engine(url)
    fix_sqlite_savepoints(engine)  # a no-op on PostgreSQL
    return engine
    # END SOLUTION


await l08.check_make_test_engine(make_test_engine, nb.database_url)

# %% [markdown]
# ## Claim check: leaving `begin_nested()` rolls back, so a fixture that yields inside it isolates the test (deep dive)
# <!-- topic:begin-nested-claim -->
#
# cmdragon's post "如何在FastAPI中玩转"时光倒流"的数据库事务回滚测试？" ("How to play 'time travel'
# database transaction-rollback tests in FastAPI", blog.cmdragon.cn, 2025-09-09,
# <https://blog.cmdragon.cn/posts/bf9883a75ffa46b523a03b16ec56ce48/>) builds its rollback fixture as: open a session, enter
# [`session.begin_nested()`](../GLOSSARY.md#nested-transaction), yield the session to the test. It explains that leaving the block runs
# `ROLLBACK TO SAVEPOINT`, so everything the test did is undone. <!-- ref:statement-recorder -->Lesson 07<!-- /ref -->'s part 2 already suggests otherwise.
# We run that fixture (on a fixed engine) with two tests: one that only flushes, and one that
# commits, as app code does.

# %%
CLAIM_TRACES = {}


@pytest.fixture
async def nested_session(request):
    """The post's fixture, in our own words: a session that yields inside begin_nested()."""
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    with recording(engine) as sent:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            async with session.begin_nested():
                yield session
    CLAIM_TRACES[request.node.name] = list(sent)
    await engine.dispose()

# %%
# %%ipytest

async def test_only_flushes(nested_session):
    nested_session.add(Animal(name="Flushed", species="cat"))
    await nested_session.flush()


async def test_commits_like_app_code(nested_session):
    nested_session.add(Animal(name="Committed", species="cat"))
    await nested_session.commit()

# %% [markdown]
# Both tests pass. What did each of them send, from the fixture's start to its end, and what is left?

# %%
for name, sent in CLAIM_TRACES.items():
    sent = [s for s in sent if s != "BEGIN"]  # SQLite's BEGIN, part 1 (asyncpg's is never recorded)
    print(f"{name}: {', '.join(sent)}")
    assert sent[-2:] == ["RELEASE SAVEPOINT sa_savepoint_1", "COMMIT" if "commits" in name else "ROLLBACK"]
leaked = await committed_names()
print("rows left behind:", leaked)
await delete_animals()
assert leaked == ["Committed"]

# %% [markdown]
# **Verdict:** <!-- verdict:begin-nested-exit-rolls-back -->wrong<!-- /verdict -->: leaving a `begin_nested()` block normally releases the savepoint, it never
# rolls back to it (`RELEASE SAVEPOINT`, not `ROLLBACK TO`). The flushed row disappeared only because the session was then closed without a
# commit (the `ROLLBACK` of the whole transaction). As soon as the test, or the app through that
# session, calls `commit()`, SQLAlchemy commits the whole transaction, savepoint included, and the
# row stays. (Without the SQLite fix it is worse: the `RELEASE` alone commits, part 1. And in the
# post the requests do not even use that session: without a dependency override the app commits
# through its own engine, <!-- ref:dependency-override -->lesson 02<!-- /ref -->.) What isolates is an outer transaction that the *test* owns
# and never commits, with the app's sessions joined to it: <!-- ref:rollback-fixture -->lesson 05<!-- /ref -->'s fixture.

# %% [markdown]
# ## 2. What "savepoint ... does not exist" really means
# <!-- topic:savepoint-does-not-exist -->
#
# With rollback isolation, every session of a test works on **one** connection, inside one
# transaction, and the savepoints of all those sessions form one stack (one counter, too). The
# error means somebody ended a savepoint that another session still counted on. Two ways to get
# there.
#
# ### 2a. Two requests at once on the test's one connection
# <!-- topic:one-connection-per-test -->
#
# A fixture like <!-- ref:rollback-fixture -->lesson 05<!-- /ref -->'s, serving only the animal routes, that also records the statements
# each test sends (after the outer transaction has begun):

# %%
animals_api = FastAPI()
animals_api.include_router(animals.router)
API_TRACE = []  # what the last test that used `api` sent


@pytest.fixture
async def api():
    engine = create_async_engine(nb.database_url)
    async with isolated_async_sessions(engine) as sessions:  # fixes SQLite, begins the outer transaction
        with override_dependency(animals_api, get_session, session_dependency(sessions)), recording(engine) as sent:
            async with AsyncClient(transport=ASGITransport(app=animals_api), base_url="http://test") as http:
                yield http
        API_TRACE[:] = sent
    await engine.dispose()

# %% [markdown]
# A test that registers two animals *concurrently*, as a load test or an "is this endpoint
# race-safe?" test would:

# %% tags=["output-per-database"]
async def test_two_arrivals_at_once(api):
    first, second = await asyncio.gather(
        api.post("/animals", json={"name": "Castor", "species": "dog"}),
        api.post("/animals", json={"name": "Pollux", "species": "dog"}),
    )
    assert (first.status_code, second.status_code) == (201, 201)


run_tests("test_two_arrivals_at_once", expect="failed")

# %% [markdown]
# SQLite reports `no such savepoint: sa_savepoint_2`, PostgreSQL `savepoint "sa_savepoint_2" does
# not exist`, and SQLAlchemy warns `nested transaction already deassociated from connection`.
#
# **Quiz 08.2.** Two concurrent requests in one rollback-isolated test: where did `sa_savepoint_2` go?
# - **a)** PostgreSQL and SQLite drop savepoints that stay idle for too long.
# - **b)** The two sessions share the test's connection: the first one's `RELEASE SAVEPOINT
#   sa_savepoint_1` also ended `sa_savepoint_2`, opened after it.
# - **c)** The second request ran on a different connection from the engine's pool, one that never
#   saw its `SAVEPOINT`, so that connection's transaction has no such savepoint.
# - **d)** The test forgot to `await` one of the requests.

# %% tags=["quiz-answer"]
answer("08.2", "b")

# %% [markdown]
# The recorded statements show the interleaving:

# %%
print(*API_TRACE, sep="\n")
assert API_TRACE == [
    "SAVEPOINT sa_savepoint_1", "SAVEPOINT sa_savepoint_2", "INSERT INTO animals", "INSERT INTO animals",
    "RELEASE SAVEPOINT sa_savepoint_1", "RELEASE SAVEPOINT sa_savepoint_2",
]

# %% [markdown]
# Each request's session opened its savepoint, then the two `INSERT`s ran, then the first session
# committed: `RELEASE SAVEPOINT sa_savepoint_1` ends `sa_savepoint_2` too (<!-- ref:savepoint-stack -->lesson 07<!-- /ref -->'s rule), and the
# second session's `RELEASE` finds nothing. Two lanes, one connection:
#
# ```mermaid
# sequenceDiagram
#     participant R1 as request 1 session
#     participant C as the test connection
#     participant R2 as request 2 session
#     R1->>C: SAVEPOINT sa_savepoint_1
#     R2->>C: SAVEPOINT sa_savepoint_2
#     R1->>C: INSERT Castor
#     R2->>C: INSERT Pollux
#     R1->>C: RELEASE SAVEPOINT sa_savepoint_1
#     Note over C: releasing sa_savepoint_1 also ends sa_savepoint_2
#     R2->>C: RELEASE SAVEPOINT sa_savepoint_2
#     C-->>R2: savepoint sa_savepoint_2 does not exist
# ```
# (Both rows are in the test's transaction by now; the
# fixture's rollback removes them.)
#
# Is this a [flaky](../GLOSSARY.md#flaky-test), once-in-a-while failure? Not with these versions. SQLAlchemy's asyncpg adapter
# serialises the statements of one connection behind a lock, and aiosqlite runs them one by one on
# its thread; both requests run the same code, so the first always stays one step ahead. Ten runs
# in a row:

# %%
# %%ipytest

SAVEPOINT_GONE = r"no such savepoint: sa_savepoint_2|savepoint \"sa_savepoint_2\" does not exist"


@pytest.mark.parametrize("attempt", range(10))
async def test_concurrent_requests_always_break_a_savepoint(api, attempt):
    with pytest.warns(SAWarning, match="nested transaction already deassociated"):
        outcomes = await asyncio.gather(
            api.post("/animals", json={"name": "Castor", "species": "dog"}),
            api.post("/animals", json={"name": "Pollux", "species": "dog"}),
            return_exceptions=True,
        )
    errors = [str(o) for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 1 and re.search(SAVEPOINT_GONE, errors[0])

# %% [markdown]
# Ten out of ten. If a driver ever scheduled differently, the failure would become intermittent,
# which is worse; the conclusion is the same either way: **do not run requests concurrently inside
# a rollback-isolated test.** One at a time, the same test passes:

# %%
# %%ipytest

async def test_two_arrivals_one_after_the_other(api):
    first = await api.post("/animals", json={"name": "Castor", "species": "dog"})
    second = await api.post("/animals", json={"name": "Pollux", "species": "dog"})
    assert (first.status_code, second.status_code) == (201, 201)

# %% [markdown]
# You may also meet asyncpg's own guard, `cannot perform operation: another operation is in
# progress`. Through SQLAlchemy you will not see it here (the adapter's lock queues the statements);
# it appears when code uses the asyncpg connection directly, or one connection from two event loops
# (<!-- ref:event-loop-scopes -->lesson 04<!-- /ref -->). Two direct calls at once on the driver connection:

# %% tags=["output-per-database"]
async with fixed_engine() as engine, engine.connect() as conn:
    driver = (await conn.get_raw_connection()).driver_connection
    if nb.backend == "postgresql":
        calls = [driver.fetchval("SELECT pg_sleep(0.1)"), driver.fetchval("SELECT 1")]
    else:
        calls = [driver.execute("SELECT 1"), driver.execute("SELECT 2")]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
errors = [str(o) for o in outcomes if isinstance(o, Exception)]
print(errors or "no error: aiosqlite queues the calls on its thread")
assert errors == (["cannot perform operation: another operation is in progress"] if nb.backend == "postgresql" else [])

# %% [markdown]
# So how do you test real concurrency, say "two identical registrations at once give one 201 and
# one 409"? Not inside the rolled-back transaction. Let each request have its own connection
# (the app's normal session factory), let the data really be committed, and clean up another way:
# here a fixture that deletes the table's rows at teardown. Keep such tests few and clearly named.

# %%
@pytest.fixture
async def committed_api():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    factory = async_sessionmaker(engine, expire_on_commit=False)  # a session, and a connection, per request
    with override_dependency(animals_api, get_session, session_dependency(factory)):
        async with AsyncClient(transport=ASGITransport(app=animals_api), base_url="http://test") as http:
            yield http
    async with engine.begin() as conn:  # clean up by deleting: nothing here is rolled back
        await conn.execute(delete(Animal))
    await engine.dispose()

# %%
# %%ipytest

async def test_two_identical_registrations_at_once_give_one_201_and_one_409(committed_api):
    body = {"name": "Castor", "species": "dog"}
    first, second = await asyncio.gather(committed_api.post("/animals", json=body), committed_api.post("/animals", json=body))
    assert sorted([first.status_code, second.status_code]) == [201, 409]

# %%
print("rows left behind:", await committed_names())
assert await committed_names() == []

# %% [markdown]
# ### 2b. A long-lived session that holds its own savepoint
#
# The second way is a session that outlives one test. cmdragon's post "如何用FastAPI玩转多模块测试与异步任务，让代码不再"闹脾气"？"
# ("Multi-module tests and async tasks in FastAPI", blog.cmdragon.cn, 2025-09-10,
# <https://blog.cmdragon.cn/posts/ddbfa0447a5d0d6f9af12e7a6b206f70/>) hands out one session per
# *module* ("create it once, it is faster"). Below, the test connection and a shared session are
# module-scoped, each test also gets its own session, and all of them use `create_savepoint`,
# so every single line looks like <!-- ref:rollback-fixture -->lesson 05<!-- /ref -->'s recipe. The first test seeds Rex through the shared
# session; the second checks, through the shared session too, that a second Rex is refused, and
# then commits its own work.

# %%
MODULE_TRACE = []


@pytest.fixture(scope="module")
async def module_connection():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:
        outer = await connection.begin()
        with recording(engine) as sent:
            yield connection
        MODULE_TRACE[:] = sent
        await outer.rollback()
    await engine.dispose()


@pytest.fixture(scope="module")
async def shared_session(module_connection):
    async with AsyncSession(bind=module_connection, join_transaction_mode="create_savepoint") as session:
        yield session


@pytest.fixture
async def own_session(module_connection):
    async with AsyncSession(bind=module_connection, join_transaction_mode="create_savepoint") as session:
        yield session


# %% [markdown]
# The two tests: the first seeds Rex through the shared session, the second expects a second Rex to
# be refused and commits its own session's Tom.

# %%
async def test_seed_rex(shared_session):
    shared_session.add(Animal(name="Rex", species="dog"))
    await shared_session.flush()


async def test_second_rex_is_refused_and_my_work_is_kept(shared_session, own_session):
    own_session.add(Animal(name="Tom", species="cat"))
    await own_session.flush()
    shared_session.add(Animal(name="Rex", species="cat"))
    with pytest.raises(IntegrityError):
        await shared_session.flush()
    await shared_session.rollback()
    await own_session.commit()

# %% [markdown]
# **Quiz 08.3.** Predict before running them: what happens to the two tests with the module-scoped
# shared session?
# - **a)** Both pass; `create_savepoint` gives every session a savepoint of its own, so no session can
#   touch another session's work, whatever the scope of the fixture that created it and however long it lives.
# - **b)** The second test fails with a 409.
# - **c)** The second test fails: the shared session's `rollback()` goes back to *its* savepoint,
#   opened in the first test, which ends the one the test's own session opened later.
# - **d)** Both pass, but Rex leaks into the database.

# %% tags=["quiz-answer"]
answer("08.3", "c")

# %% tags=["output-per-database"]
run_tests("test_seed_rex", "test_second_rex_is_refused_and_my_work_is_kept", expect="failed")

# %% [markdown]
# The same message as in 2a, for a different reason. The statements, from the moment the module's
# connection was handed out:

# %%
print(*MODULE_TRACE, sep="\n")
assert MODULE_TRACE[-2:] == ["ROLLBACK TO SAVEPOINT sa_savepoint_1", "RELEASE SAVEPOINT sa_savepoint_2"]

# %% [markdown]
# `sa_savepoint_1` belongs to the shared session: it opened in the first test and stayed open (a
# flush does not end it). The second test's own session opened `sa_savepoint_2`. The shared
# session's `rollback()` went back to `sa_savepoint_1`, which ends every savepoint after it, so the
# own session's `commit()` (`RELEASE SAVEPOINT sa_savepoint_2`) finds nothing. It also wiped Tom.
# The fix is <!-- ref:fixture-scopes -->lesson 06<!-- /ref -->'s rule: **fixtures that write are [function-scoped](../GLOSSARY.md#function-scoped-fixture)**, so no session carries a
# savepoint from one test into the next. The same tests with a function-scoped shared session:

# %%
# %%ipytest

@pytest.fixture
async def shared_session(module_connection):
    async with AsyncSession(bind=module_connection, join_transaction_mode="create_savepoint") as session:
        yield session


async def test_seed_rex(shared_session):
    shared_session.add(Animal(name="Rex", species="dog"))
    await shared_session.flush()


async def test_second_rex_is_refused_and_my_work_is_kept(shared_session, own_session):
    own_session.add(Animal(name="Tom", species="cat"))
    await own_session.flush()
    shared_session.add(Animal(name="Rex", species="cat"))
    await shared_session.flush()  # no IntegrityError now: the first test's Rex went with its session
    await shared_session.rollback()
    await own_session.commit()
    assert await names(own_session) == ["Tom"]

# %% [markdown]
# Both pass. The first test's Rex is gone in the second one: the session that held it was closed at
# the end of the first test, which rolled back to its savepoint. Do not stop here, though: the
# *connection* is still module-scoped, so whatever a test commits stays visible to the tests after
# it until the module ends (<!-- ref:fixture-scopes -->lesson 06<!-- /ref -->, Quiz 06.2). Make everything that writes function-scoped,
# the connection included, and you are back to <!-- ref:rollback-fixture -->lesson 05<!-- /ref -->'s fixture.

# %%
print("rows left behind:", await committed_names())
assert await committed_names() == []

# %% [markdown] tags=["instructor"]
# **Instructor notes (part 2).** The most common learner mistake is to "fix" 2a by adding
# `asyncio.Lock` or retries in the test: the requests still share one transaction, so the test
# cannot tell which request's data it is looking at. Point to `committed_api` instead. For 2b,
# people ask why the first test's Rex is gone in the fixed version: the session that owned it was
# closed at the end of the first test, which rolled back to its savepoint. If a cell here hangs on
# PostgreSQL, an earlier interrupted run left a connection inside a transaction: restart the kernel
# and run from the top (`setup` recreates the schema). On SQLite the same shows as `database is
# locked`. Exercise 1: the usual wrong answers are an isolation level (`"AUTOCOMMIT"` breaks the
# fixture on PostgreSQL too, `"SERIALIZABLE"` changes nothing on SQLite), the fix installed only for
# URLs that start with `sqlite://` (the course's are `sqlite+aiosqlite://`), and half of the
# documented recipe (the driver's `isolation_level = None` without the listener that sends `BEGIN`).

# %% [markdown]
# ## Sources and further reading
#
# - SQLAlchemy 2.1, SQLite dialect: [Serializable isolation / Savepoints / Transactional DDL](https://docs.sqlalchemy.org/en/21/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl)
#   and "Enabling Non-Legacy SQLite Transactional Modes" on the same page (the fix of part 1).
# - SQLAlchemy 2.1: [Using SAVEPOINT](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#using-savepoint)
#   (`Session.begin_nested()`) and [Joining a Session into an External Transaction](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites).
# - Python 3.11: [`sqlite3`, transaction control](https://docs.python.org/3.11/library/sqlite3.html#sqlite3-controlling-transactions);
#   the `autocommit` argument is new in [Python 3.12](https://docs.python.org/3.12/library/sqlite3.html#sqlite3.Connection.autocommit).
# - SQLite: [SAVEPOINT](https://www.sqlite.org/lang_savepoint.html) (a savepoint outside a transaction starts one);
#   PostgreSQL 15: [RELEASE SAVEPOINT](https://www.postgresql.org/docs/15/sql-release-savepoint.html) (it also
#   destroys the savepoints established after the named one).
# - asyncpg 0.32: [Transactions](https://magicstack.github.io/asyncpg/current/api/index.html#transactions).
# - The [claim checks](../GLOSSARY.md#claim-check): cmdragon, "如何在FastAPI中玩转"时光倒流"的数据库事务回滚测试？", blog.cmdragon.cn,
#   2025-09-09, and "如何用FastAPI玩转多模块测试与异步任务，让代码不再"闹脾气"？", blog.cmdragon.cn, 2025-09-10.

# %% [markdown] tags=["key-points"]
# ## Key points
# - With the stdlib SQLite driver, `begin()` sends nothing: the first `SAVEPOINT` starts the
#   transaction and its `RELEASE` commits it, so a correct rollback fixture leaks on SQLite and not
#   on PostgreSQL. Install `fix_sqlite_savepoints(engine)` (or, on Python >= 3.12,
#   `connect_args={"autocommit": False}`; on 3.11 that is a `TypeError`) on every SQLite test
#   engine, before its first connection. An isolation level is not the fix. Version note:
#   SQLAlchemy 2.1.9 still leaves the driver's legacy default alone.
# - Leaving a `begin_nested()` block normally releases the savepoint: a fixture that yields inside
#   one isolates nothing once anything commits. The test must own an outer transaction it never commits.
# - `savepoint ... does not exist` / `no such savepoint` means one session ended another's
#   savepoint on the shared connection: concurrent requests in one test, or a long-lived session.
#   Run requests one at a time; test real concurrency on committed data cleaned up another way;
#   keep writing fixtures function-scoped.
#
# **Next:** [09 · Retry routes](09_retry_routes.ipynb)
