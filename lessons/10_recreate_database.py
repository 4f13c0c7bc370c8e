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
# # 10 · Recreate the database for every test?

# %% [markdown] tags=["overview"]
# **Teaching:** 26 min · **Exercises:** 3 min
#
# **Prerequisites:** 05 · Rollback fixtures, 09 · Retry routes
#
# **Optional in a workshop.** The workshop cuts skip this notebook: take it on your own after
# <!-- ref:retry-routes -->lesson 09<!-- /ref -->. It checks a popular piece of advice, "give each request its own session and recreate the
# database for every test", and measures what that advice costs on your own database. What you get
# from it: the evidence to answer a colleague who proposes it, and numbers of your own.
#
# **You will be able to**
# - tell a wrong diagnosis from the real cause of the retry test's failure, by running both fixtures;
# - explain why a fresh in-memory database per test isolates while the same fixture on a file or a
#   server does not (`create_all` empties nothing);
# - measure rollback, drop/create and a new database per test on your database, and read the ratios.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("10", traceback="line")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("10")` has already pointed `DATABASE_URL` at this
# notebook's own, empty database, so importing `app` now is safe. Failing tests are reported in one
# line each (`traceback="line"`).

# %%
import io
from contextlib import asynccontextmanager, redirect_stdout

import ipytest
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app import naive
from app.db import get_session
from app.models import Adopter, Animal, Base
from app.routes import animals
from course.checks import l10
from tests.isolation import fix_sqlite_savepoints, isolated_async_sessions, override_dependency, session_dependency

# %% [markdown] tags=["instructor"]
# **Instructor notes (~26 min teaching + 3 min of quizzes).** The workshop cuts leave this notebook
# out; recommend it to learners whose team recreates the database per test, or who quote the Stack
# Overflow answer. Part 1 (~5 min) is the diagnosis: ask the room to predict before running the
# cell. Part 2 (~4 min) is the isolation question: the second run on this notebook's database is the
# surprise. Part 3 (~10 min) is the measurement; it prints different numbers on every machine: read
# the ratios aloud, not the seconds, and compare SQLite's with PostgreSQL's if some learners run it.
# Part 4 (~2 min) is the verdict.

# %% [markdown]
# The pieces <!-- ref:retry-routes -->lesson 09<!-- /ref --> built, re-created here so this notebook runs on its own: what a brand-new
# connection sees (only committed rows), a clean-up, and a small app serving both [retry routes](../GLOSSARY.md#retry-route) of
# that lesson, the naive one (`session.rollback()` after an [`IntegrityError`](../GLOSSARY.md#integrityerror)) and the app's real one
# (a [savepoint](../GLOSSARY.md#savepoint) per attempt). Plumbing: read the docstrings and run the cell.

# %% jupyter={"source_hidden": true}
@asynccontextmanager
async def fixed_engine(url: str | None = None):
    """An engine with the SQLite savepoint fix (a no-op on PostgreSQL), disposed at exit."""
    engine = create_async_engine(url or nb.database_url)
    fix_sqlite_savepoints(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def committed() -> dict[str, list[str]]:
    """The animals and adopters a brand-new connection sees."""
    async with fixed_engine() as engine, engine.connect() as conn:
        return {
            "animals": sorted(await conn.scalars(select(Animal.name))),
            "adopters": sorted(await conn.scalars(select(Adopter.name))),
        }


async def delete_everything() -> None:
    """Delete (and commit) every animal and adopter."""
    async with fixed_engine() as engine, engine.begin() as conn:
        await conn.execute(delete(Animal))
        await conn.execute(delete(Adopter))

# %% jupyter={"source_hidden": true}
retry_api = FastAPI()
retry_api.include_router(naive.router)  # POST /naive/arrivals: session.rollback() after IntegrityError
retry_api.include_router(animals.router)  # POST /animals/arrivals: a savepoint per attempt
RETRY = {"species": "dog", "candidates": ["Max", "Cody"]}

# %% [markdown]
# ## 1. The claim, and its diagnosis
# <!-- topic:recreate-database-per-test -->

# %% [markdown]
# ### Claim check: the retry test fails because one session serves every request; give each request its own session and recreate the database for every test instead of rolling back
#
# Source: the asker's own accepted answer to ["How to test a FastAPI route that retries a
# SQLAlchemy insert after a
# rollback?"](https://stackoverflow.com/search?q=How+to+test+a+FastAPI+route+that+retries+a+SQLAlchemy+insert+after+a+rollback)
# (Stack Overflow, 2023), the question whose route and fixture <!-- ref:question-fixture -->lesson 09<!-- /ref --> took apart. In our words:
# the culprit is the single session shared by all requests; the fix is a fresh session per request
# on a fresh connection, no [outer transaction](../GLOSSARY.md#outer-transaction), and a brand-new
# in-memory SQLite database, with its tables, for every test. Three things to check: the diagnosis,
# whether it isolates, and the cost.
#
# The diagnosis first. The question's fixture, with one change: a fresh session **per request**
# (from a session factory), still bound to the test's connection inside `async with
# connection.begin()`, in the default [join mode](../GLOSSARY.md#join-mode). The test is the one <!-- ref:question-fixture -->lesson 09<!-- /ref --> ran: two arrivals on the naive
# route, where the second one has to retry.

# %%
@pytest.fixture
async def session_per_request_client():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:
        async with connection.begin() as transaction:
            factory = async_sessionmaker(bind=connection, expire_on_commit=False)  # default join mode
            with override_dependency(retry_api, get_session, session_dependency(factory)):
                async with AsyncClient(transport=ASGITransport(app=retry_api), base_url="http://test") as http:
                    yield http
            await transaction.rollback()
    await engine.dispose()


async def test_two_naive_arrivals_with_a_session_per_request(session_per_request_client):
    first = await session_per_request_client.post("/naive/arrivals", json=RETRY)
    second = await session_per_request_client.post("/naive/arrivals", json=RETRY)
    assert [first.json()["name"], second.json()["name"]] == ["Max", "Cody"]

# %% [markdown]
# **Quiz 10.1.** If the answer's diagnosis is right, this test passes. What does it report?
# - **a)** It passes: with a session of its own per request, the naive route's `rollback()` only
#   ends that request's own transaction.
# - **b)** It passes, but Cody stays in the database for good, as with a plain `begin()`.
# - **c)** It fails just as before: the rollback still ends the test's transaction, and Cody's flush
#   is refused.
# - **d)** It fails at the first request: two sessions may not share one connection.

# %% tags=["quiz-answer"]
answer("10.1", "c")

# %%
run_tests("test_two_naive_arrivals_with_a_session_per_request", expect="failed")
print(await committed())

# %% [markdown]
# The same error as under the question's fixture, and nothing left behind: sharing one session was
# not the cause. The route's `rollback()` reaching the test's transaction was: in the default join
# mode every session bound to that connection, however many there are, rolls back the connection's
# own transaction. <!-- ref:savepoint-per-attempt -->Lesson 09<!-- /ref -->'s two targeted fixes address exactly that (a savepoint per attempt in
# the route, `create_savepoint` in the fixture).
#
# ## 2. Does a fresh database per test isolate?
#
# The answer's fix works for another reason: it drops the test's transaction altogether, and with
# it rollback isolation. Its fixture, in our code: a new engine per test, `create_all`, and a
# session per request on a connection of its own. The answer points it at
# `sqlite+aiosqlite:///:memory:`; we also point it at this notebook's database (a SQLite file, or
# PostgreSQL), as a team would that tests against its real database. The question's route tried
# three names, so our candidates are Max, Cody and Robby.

# %%
THREE_NAMES = {"species": "dog", "candidates": ["Max", "Cody", "Robby"]}


@asynccontextmanager
async def answer_style_client(url):
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)  # creates the tables that do not exist yet
    with override_dependency(retry_api, get_session, session_dependency(async_sessionmaker(engine, expire_on_commit=False))):
        async with AsyncClient(transport=ASGITransport(app=retry_api), base_url="http://test") as http:
            yield http
    await engine.dispose()


@pytest.fixture(params=["in memory", "this notebook's database"])
async def answer_client(request):
    url = {"in memory": "sqlite+aiosqlite:///:memory:", "this notebook's database": nb.database_url}[request.param]
    async with answer_style_client(url) as http:
        yield http


async def test_add(answer_client):
    assert (await answer_client.post("/naive/arrivals", json=THREE_NAMES)).json()["name"] == "Max"
    assert (await answer_client.post("/naive/arrivals", json=THREE_NAMES)).json()["name"] == "Cody"

# %% [markdown]
# In memory, every test gets an empty database, so `test_add` passes on every run:

# %%
for run in ["first", "second"]:
    run_tests("test_add[in memory]")

# %% [markdown]
# **Quiz 10.2.** Now the same fixture on this notebook's database: we run `test_add[this notebook's
# database]` twice. What does the second run report?
# - **a)** It passes: `create_all` gives every test empty tables.
# - **b)** It fails: its first request gets Robby, not Max.
# - **c)** It fails with `Can't operate on closed transaction inside context manager`.
# - **d)** It passes, but leaves four animals behind in the database, two from each run.

# %% tags=["quiz-answer"]
answer("10.2", "b")

# %%
run_tests("test_add[this notebook's database]")
print("after the first run:", await committed())
run_tests("test_add[this notebook's database]", expect="failed")
await delete_everything()

# %% [markdown]
# `create_all` only creates tables that are missing; it empties nothing. On a server database the
# answer's fixture isolates nothing: every request commits for real, and the next run inherits the
# rows. To isolate there you have to drop the tables, or the whole database, for every test.
#
# ## 3. What it costs
#
# Now the cost, compared like with like: each way of isolating against rollback **on the same
# database**. The same 10 small tests (create Max, register an arrival, list the animals) run under
# each fixture:
# - **in memory**: rollback on one in-memory SQLite database, or a fresh in-memory database per test
#   (the answer's fixture);
# - **this notebook's database**: rollback (`tests/isolation.py`, tables created once), `drop_all` +
#   `create_all` before every test, or a brand-new database per test (`CREATE DATABASE` ... `DROP
#   DATABASE` on PostgreSQL, a new file on SQLite; the helper `l10.fresh_database` does it).

# %%
@asynccontextmanager
async def serving(factory):
    with override_dependency(retry_api, get_session, session_dependency(factory)):
        async with AsyncClient(transport=ASGITransport(app=retry_api), base_url="http://test") as http:
            yield http


@asynccontextmanager
async def tables_created(url, *, drop_first=False):
    engine = create_async_engine(url)
    fix_sqlite_savepoints(engine)
    async with engine.begin() as conn:
        if drop_first:
            await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()

# %%
IN_MEMORY = "sqlite+aiosqlite:///:memory:"


@pytest.fixture(scope="module")
async def memory_schema():
    async with tables_created(IN_MEMORY) as engine:
        yield engine


@pytest.fixture(scope="module")
async def database_schema():
    async with tables_created(nb.database_url, drop_first=True) as engine:
        yield engine


@pytest.fixture
async def rollback_in_memory(memory_schema):
    async with isolated_async_sessions(memory_schema) as sessions, serving(sessions) as http:
        yield http


@pytest.fixture
async def rollback(database_schema):
    async with isolated_async_sessions(database_schema) as sessions, serving(sessions) as http:
        yield http

# %%
def served_by(engine):
    return serving(async_sessionmaker(engine, expire_on_commit=False))


@pytest.fixture
async def fresh_in_memory():
    async with tables_created(IN_MEMORY) as engine, served_by(engine) as http:
        yield http


@pytest.fixture
async def drop_create():
    async with tables_created(nb.database_url, drop_first=True) as engine, served_by(engine) as http:
        yield http


@pytest.fixture
async def new_database():
    async with l10.fresh_database(nb.database_url) as url, tables_created(url) as engine, served_by(engine) as http:
        yield http

# %% [markdown]
# The same small test under each fixture, ten times each, and a pytest plugin that adds up the time
# each test takes (setup, call and teardown), so pytest's own start-up is not counted:

# %%
async def small_test(http):
    assert (await http.post("/animals", json={"name": "Max", "species": "dog"})).status_code == 201
    assert (await http.post("/animals/arrivals", json=RETRY)).json()["name"] == "Cody"
    assert len((await http.get("/animals")).json()) == 2

# %%
STRATEGIES = ["rollback_in_memory", "fresh_in_memory", "rollback", "drop_create", "new_database"]
each_ten_times = pytest.mark.parametrize("n", range(10))


@each_ten_times
async def test_rollback_in_memory(rollback_in_memory, n):
    await small_test(rollback_in_memory)


@each_ten_times
async def test_fresh_in_memory(fresh_in_memory, n):
    await small_test(fresh_in_memory)


@each_ten_times
async def test_rollback(rollback, n):
    await small_test(rollback)


@each_ten_times
async def test_drop_create(drop_create, n):
    await small_test(drop_create)


@each_ten_times
async def test_new_database(new_database, n):
    await small_test(new_database)

# %%
class Stopwatch:
    """A pytest plugin: seconds spent per strategy (setup + call + teardown of its tests)."""

    def __init__(self):
        self.seconds = dict.fromkeys(STRATEGIES, 0.0)

    def pytest_runtest_logreport(self, report):
        strategy = report.nodeid.split("::")[-1].split("[")[0].removeprefix("test_")
        self.seconds[strategy] += report.duration

# %% [markdown]
# Timings vary from machine to machine and run to run, so the stored numbers are one PostgreSQL run and
# your cell prints its own; the cell asserts only directions that held with a wide margin.

# %% tags=["nbval-ignore-output"]
stopwatch = Stopwatch()
with redirect_stdout(io.StringIO()) as report:  # only pytest's last line
    ipytest.run(*(f"{{MODULE}}::test_{strategy}" for strategy in STRATEGIES), plugins=[stopwatch])
print(report.getvalue().strip().splitlines()[-1])
seconds = stopwatch.seconds
print(f"in memory (SQLite):    a fresh database per test takes {seconds['fresh_in_memory'] / seconds['rollback_in_memory']:.1f} x the time of rollback")
for strategy, label in [("drop_create", "drop/create tables per test"), ("new_database", "a new database per test")]:
    print(f"this database ({nb.backend}): {label} takes {seconds[strategy] / seconds['rollback']:.1f} x the time of rollback")
assert seconds["drop_create"] > seconds["rollback"]
if nb.backend == "postgresql":
    assert seconds["new_database"] > 2 * seconds["rollback"] and seconds["new_database"] > seconds["drop_create"]

# %% [markdown]
# Read your own ratios; they move from run to run, the order between strategies much less. In
# memory, a fresh database per test stays cheap: creating three tables in a tiny in-memory database
# takes milliseconds, so the answer's fixture is fast because its database is small and in memory,
# not because recreating a database is free. On this notebook's database, dropping and creating
# the tables costs clearly more than rollback on every test. On PostgreSQL a brand-new database per
# test (`CREATE DATABASE`, then `DROP DATABASE`) costs the most, more than twice rollback (the cell
# asserts both); on SQLite, where it is a new file, it is not reliably dearer than drop/create
# (compare the two lines the cell printed). Each table you add makes
# every one of these tests pay more; <!-- ref:isolation-benchmark -->lesson 14<!-- /ref --> measures the strategies on a bigger schema.
#
# **Quiz 10.3.** The drop/create tests ran last on this notebook's database (the new-database
# tests each had a database of their own, dropped since). What does a new connection see in it now?
# - **a)** No animals: each drop/create test drops the tables, and their rows with them.
# - **b)** Twenty animals: a Max and a Cody from each of the ten tests.
# - **c)** No tables at all: the fixture dropped them and the engine is gone.
# - **d)** A Max and a Cody: the rows the final test committed.

# %% tags=["quiz-answer"]
answer("10.3", "d")

# %% jupyter={"source_hidden": true}
print(await committed())
assert await committed() == {"animals": ["Cody", "Max"], "adopters": []}
await delete_everything()

# %% [markdown]
# Drop/create cleans up *before* each test, not after: the last test's rows stay in the database
# until the next run drops them. Harmless for the suite, surprising when you open the database
# afterwards to look at something else.
#
# ## 4. Verdict
#
# **Verdict:** <!-- verdict:retry-fix-session-per-request-fresh-database -->the fix works, but not for the reason it gives, and only where it was tried<!-- /verdict -->.
# Sharing one session was not the problem (a session per request fails the same way); the route's
# `rollback()` reaching the test's transaction was. The answer's fixture sidesteps that by giving up
# rollback isolation, and it isolates only because its database lives in memory: pointed at a
# file or a PostgreSQL server, the second run inherits the first run's rows. Made to isolate there
# (drop/create, or a new database per test), it costs more than rollback on every test, most of
# all a new PostgreSQL database. Kept in memory, it is cheap, but your tests then run on SQLite, not
# on the database you deploy. The targeted fixes of <!-- ref:savepoint-per-attempt -->lesson 09<!-- /ref --> keep both the speed and the real
# database: a savepoint per attempt in the route, `create_savepoint` (and on SQLite the driver fix)
# in the fixture.

# %% [markdown] tags=["instructor"]
# **Instructor notes (parts 2-4).** Learners who use in-memory SQLite for tests will say "but it
# works": it does, and part 2 shows where it stops working, so let them predict the second run
# before running it. If the measurement cell fails its assertion on a loaded machine, run it again;
# the ratio is the message, not the exact number. If a cell hangs on PostgreSQL, an interrupted run
# left a connection in a transaction (or a database half-created): restart the kernel and run from
# the top.

# %%
print("rows left behind:", await committed())
assert await committed() == {"animals": [], "adopters": []}

# %% [markdown]
# ## Sources and further reading
#
# - ["How to test a FastAPI route that retries a SQLAlchemy insert after a
#   rollback?"](https://stackoverflow.com/search?q=How+to+test+a+FastAPI+route+that+retries+a+SQLAlchemy+insert+after+a+rollback),
#   Stack Overflow question and accepted answer, 2023 (FastAPI 0.95, SQLAlchemy 2.0): the fixture
#   and the workaround this lesson checks.
# - SQLAlchemy 2.1, [Joining a Session into an External Transaction (such as for test
#   suites)](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites)
#   and the `join_transaction_mode` parameter of
#   [`Session`](https://docs.sqlalchemy.org/en/21/orm/session_api.html#sqlalchemy.orm.Session.params.join_transaction_mode).
# - SQLAlchemy 2.1, [`MetaData.create_all`](https://docs.sqlalchemy.org/en/21/core/metadata.html#sqlalchemy.schema.MetaData.create_all)
#   (`checkfirst=True` by default: existing tables are left alone).
# - PostgreSQL 15, [CREATE DATABASE](https://www.postgresql.org/docs/15/sql-createdatabase.html) and
#   [DROP DATABASE](https://www.postgresql.org/docs/15/sql-dropdatabase.html) (`WITH (FORCE)`, since 13).
#
# Versions: this notebook runs SQLAlchemy 2.1.9, httpx 0.28.1 and pytest-asyncio 1.5.

# %% [markdown] tags=["key-points"]
# ## Key points
# - "One session shared by every request" is not why the retry test fails: a session per request
#   fails the same way, because in the default join mode the route's `rollback()` ends the test's
#   own transaction.
# - A fresh database per test isolates by giving up rollback isolation; the answer's version
#   isolates only in memory, because `create_all` creates missing tables and empties nothing.
# - Made to isolate on a real database (drop/create, or a new database per test), it costs more
#   than rollback on every test, a new PostgreSQL database most of all; measure it on your own.
# - Keep the real database and the speed: a savepoint per attempt in the route, `create_savepoint`
#   in the fixture (<!-- ref:savepoint-per-attempt -->lesson 09<!-- /ref -->).
#
# **Next:** [11 · Concurrency against a real database](11_concurrency.ipynb)
