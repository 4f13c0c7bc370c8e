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
# # 01 · Naive tests and why they flake
#
# Most test suites for a database-backed API start the same way: a client fixture, a few tests that
# post and read, all against one test database, nothing cleaned up. They pass on the author's machine.
# Then one day they fail, pass again on a re-run, and fail in CI. This notebook makes that failure
# happen **on purpose and every time**, counts what the tests leave behind, and previews the cure.

# %% [markdown] tags=["overview"]
# **Teaching:** 35 min · **Exercises:** 13 min
#
# **Prerequisites:** 00 · Start here.
#
# **You will be able to**
# - explain how tests that share a database without isolation depend on each other: leftover rows,
#   order dependence, unique-constraint `409`s where a `201` was expected;
# - reproduce an order-dependent failure deterministically, by running the same tests in fixed orders
#   on a known database state;
# - count the rows a test run leaves behind, and recognise a test that passes alone but fails in a
#   suite, and one that passes only in a suite;
# - judge two published claims ("a module-scoped in-memory SQLite database isolates your tests", and
#   "the naive suite fails because of the first test's leftover row"), and see the rollback fixture of
#   `tests/isolation.py` make the outcome independent of the order, with no rows left.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("01")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("01")` has pointed `DATABASE_URL` at this notebook's own
# database, so importing the app now is safe. `count_rows` counts the rows of each table with a
# connection of its own: it sees only what was really committed. `reset_schema` empties the tables.

# %%
import contextlib
import io
import itertools

import ipytest
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

import app.db
from app.main import app as shelter
from course.database import count_rows
from course.notebook import reset_schema

REX = {"name": "Rex", "species": "dog"}

# %% [markdown] tags=["instructor"]
# **Instructor notes (~35 min + 13 min quizzes and exercise).** Pace: the naive suite and the three
# single demonstrations 12 min, the every-order table 7 min, the two claim checks 10 min, the cure
# 6 min; quizzes 5 min, the exercise 8 min. The quizzes
# work well as a show of hands *before* running the next cell: most people predict quiz 01.3 wrong
# (they guess 3 of 6 orders).
#
# Points learners get wrong:
# - "Just delete everything at the start of each test." It does make the first two tests pass, but it
#   hides `test_rex_is_listed`'s dependency (it would fail *reliably* only if it ran first) and it is
#   slow on real schemas (<!-- ref:isolation-benchmark -->lesson 14<!-- /ref --> measures it).
# - "The 409 is a bug in the app." No: the app is right; the test assumed an empty database.
# - "In-memory SQLite fixes it." The claim check answers that; the key fact is that nothing connects
#   that database to the app.
#
# If a table of orders differs from the stored output, someone ran cells out of order or interrupted
# a run: every step starts by emptying the database, so re-running that cell fixes it. `database is
# locked` (SQLite) or a hang (PostgreSQL) means an interrupted cell left a transaction open: restart
# the kernel and run from the top.

# %% [markdown]
# ## A naive suite
#
# The client fixture talks to the app exactly as it is: the app's own `get_session`, so its own engine
# and its own database (here, this notebook's). No transaction around the test, no cleanup after it.
# (The `dispose()` at teardown only closes the engine's pooled connections, which belong to this run's
# [event loop](../GLOSSARY.md#loop-scope); <!-- ref:event-loop-scopes -->lesson 04<!-- /ref --> explains why. It deletes nothing.)

# %%
@pytest.fixture
async def client():
    async with LifespanManager(shelter) as started:
        async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
            yield http
    await app.db.engine.dispose()


# %% [markdown]
# Three tests, each reasonable on its own. They are defined in an ordinary cell, so we can run them by
# name, in any order we choose.

# %%
async def animal_names(client):
    return [animal["name"] for animal in (await client.get("/animals")).json()]


async def test_shelter_starts_empty(client):
    assert await animal_names(client) == []


async def test_new_animal_gets_201(client):
    response = await client.post("/animals", json=REX)
    assert response.status_code == 201, response.json()


async def test_rex_is_listed(client):
    assert "Rex" in await animal_names(client)


# %% [markdown]
# ## 1. A test that passes, then fails
# <!-- topic:leftover-rows -->
#
# The database is empty (`setup()` just emptied it). Run the test that creates Rex:

# %%
run_tests("test_new_animal_gets_201")

# %% [markdown]
# **Quiz 01.1.** Nothing changes in the code. We run `test_new_animal_gets_201` again. What happens?
# - **a)** It passes: every pytest run starts from scratch.
# - **b)** It fails: the app answers `409`, because the Rex of the first run is still in the database.
# - **c)** It fails with an `IntegrityError` from the app: `500 Internal Server Error`.
# - **d)** It passes, and the database now holds two animals called Rex.

# %% tags=["quiz-answer"]
answer("01.1", "b")

# %%
run_tests("test_new_animal_gets_201", expect="failed")

# %% [markdown]
# `assert 409 == 201`, and thanks to the assertion's message we also read the app's reason: *An animal
# named 'Rex' already exists.* The first run committed Rex, and nothing removed it. Count what is left:

# %%
await count_rows(nb.database_url)

# %% [markdown]
# One leaked row, and it decides the outcome of every later run. This is the classic [flaky](../GLOSSARY.md#flaky-test) suite:
# green on a fresh database, red on the second run, green again after someone recreates the database.
#
# ## 2. A test that passes alone and fails in a suite
#
# From now on every step **starts from an empty database**: that is what makes each outcome below
# reproducible, every time the notebook runs. `test_shelter_starts_empty`, alone:

# %%
await reset_schema(nb.database_url)
run_tests("test_shelter_starts_empty")

# %% [markdown]
# Now in a suite, after the test that creates Rex (the order is the order of the names given to
# `run_tests`):

# %%
await reset_schema(nb.database_url)
run_tests("test_new_animal_gets_201", "test_shelter_starts_empty", expect="failed")

# %% [markdown]
# `['Rex'] == []`: the test is right about an empty shelter, but the shelter is not empty, because of
# another test. Nothing in its own code explains the failure.
#
# ## 3. A test that passes only in a suite
#
# `test_rex_is_listed` has the opposite problem. In a suite, after the test that creates Rex, it
# passes:

# %%
await reset_schema(nb.database_url)
run_tests("test_new_animal_gets_201", "test_rex_is_listed")

# %% [markdown]
# **Quiz 01.2.** We run `test_rex_is_listed` alone, on an empty database. What happens?
# - **a)** It passes: it only reads, and reading cannot fail.
# - **b)** It errors: the `client` fixture needs another test to have run first, to start the app's lifespan.
# - **c)** pytest skips it, because it depends on another test.
# - **d)** It fails: the list it reads is empty, and nothing in the test puts Rex there.

# %% tags=["quiz-answer"]
answer("01.2", "d")

# %%
await reset_schema(nb.database_url)
run_tests("test_rex_is_listed", expect="failed")

# %% [markdown]
# The mirror image of step 2: a test that is green in the suite only because another test prepares its
# data. Delete or rename that other test, run a single file, split the suite across workers, and it
# turns red.
#
# ## 4. Every order, made deterministic
# <!-- topic:order-dependence -->
#
# **Quiz 01.3.** Of the 6 possible orders of the three tests, each run on an empty database, how many
# pass?
# - **a)** all 6
# - **b)** 3, half of them
# - **c)** 1
# - **d)** none

# %% tags=["quiz-answer"]
answer("01.3", "c")

# %% [markdown]
# `run_in_every_order` tries them all. For each order it empties the database, runs the tests with
# pytest (full report suppressed, you have seen the failures above) and prints which failed. The
# little plugin class collects the names of the failed tests from pytest's reports.

# %%
class FailedTests:
    """A pytest plugin: remembers the names of the tests that failed, and why."""

    def __init__(self):
        self.names = set()
        self.reasons = {}

    def pytest_runtest_logreport(self, report):
        if report.failed:
            name = report.nodeid.split("::")[-1]
            self.names.add(name)
            self.reasons[name] = report.longrepr.reprcrash.message.splitlines()[0]


async def run_in_every_order(*names):
    outcomes = []
    for order in itertools.permutations(names):
        await reset_schema(nb.database_url)
        failed = FailedTests()
        with contextlib.redirect_stdout(io.StringIO()):
            ipytest.run(*[f"{{MODULE}}::{name}" for name in order], plugins=[failed], raise_on_error=False)
        print("  ".join(f"{name.removeprefix('test_'):21} {'FAILED' if name in failed.names else 'ok':6}" for name in order))
        outcomes.append(failed.names)
    return outcomes


naive = await run_in_every_order("test_shelter_starts_empty", "test_new_animal_gets_201", "test_rex_is_listed")
assert sum(not failed for failed in naive) == 1

# %% [markdown]
# One order in six is green: the empty check must come before the creation, and the listing after it.
# The hidden dependencies, drawn:
#
# ```mermaid
# flowchart LR
#     empty["test_shelter_starts_empty: needs no Rex yet"] -->|must run before| create["test_new_animal_gets_201: commits Rex"]
#     create -->|must run before| listed["test_rex_is_listed: needs the committed Rex"]
# ```
#
# Only one of the six orders follows both arrows.
# Three tests, one hidden dependency each way, and the suite's result depends on the order alone.
# A suite of hundreds of tests has many such pairs, and the order changes more often than you think:
# a new test file, `pytest -k`, `pytest --lf`, [pytest-xdist](../GLOSSARY.md#xdist-worker) distributing tests to workers.
#
# [pytest-randomly](https://github.com/pytest-dev/pytest-randomly) does on purpose what those do by
# accident: it shuffles the order on every run and prints the seed in the report header
# (`Using --randomly-seed=...`); `pytest -p randomly --randomly-seed=<that number>` replays the same
# order. That is how you find [order dependence](../GLOSSARY.md#order-dependence) in a real project, and why this repository's reference
# suite runs shuffled. In a notebook a seed does not replay an order: pytest-randomly sorts the tests
# by a hash of the seed *and each test's id*, and a test's id here includes the module name [ipytest](../GLOSSARY.md#ipytest)
# makes up for the notebook (`t_` and a random UUID, new in every kernel). After a kernel restart the
# same seed gives another order. So here we fix the orders ourselves, as above: same result, every
# time, on any machine.
#
# What did the last of those runs leave behind?

# %%
await count_rows(nb.database_url)

# %% [markdown]
# Rex again. Every run of a naive suite leaves its rows for the next one.

# %% [markdown]
# ### Claim check: a module-scoped fixture with an in-memory SQLite database isolates the tests
# <!-- topic:in-memory-sqlite -->
#
# The blog post "如何用FastAPI玩转多模块测试与异步任务，让代码不再"闹脾气"？" ("Multi-module tests
# and async tasks in FastAPI", cmdragon, 2025-09-10,
# [blog.cmdragon.cn](https://blog.cmdragon.cn/posts/ddbfa0447a5d0d6f9af12e7a6b206f70/)) recommends,
# for integration tests, a pytest fixture with `scope="module"` that creates an in-memory SQLite
# database and its tables and hands out a session: a temporary database that keeps the tests away
# from real data. We rebuild that fixture in async form and test the claim with two questions: does
# the app write into that database, and does each test get a fresh one?

# %%
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.models import Animal, Base


@pytest.fixture(scope="module")
async def temporary_db():
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    await engine.dispose()


async def animals_in(session):
    return await session.scalar(select(func.count()).select_from(Animal))


# %% [markdown]
# **Quiz 01.4.** A test takes both `temporary_db` and our `client`, and posts Rex. Where does the app
# write Rex?
# - **a)** Into the database the app is configured with (here, this notebook's).
# - **b)** Into the in-memory database: the fixture created it for the test that asked for it.
# - **c)** Nowhere: an in-memory database rolls everything back at the end of each test.
# - **d)** Into both: the fixture's session and the app's session write the same row.

# %% tags=["quiz-answer"]
answer("01.4", "a")

# %% jupyter={"source_hidden": true}
await reset_schema(nb.database_url)


async def test_the_app_writes_into_the_temporary_db(temporary_db, client):
    assert (await client.post("/animals", json=REX)).status_code == 201
    assert await animals_in(temporary_db) == 1


run_tests("test_the_app_writes_into_the_temporary_db", expect="failed")
await count_rows(nb.database_url)

# %% [markdown]
# The in-memory database holds 0 animals; the app's database holds the new Rex. The fixture created a
# database that no request ever uses: the app's `get_session` still opens sessions on the app's own
# engine. Second question: tests that *do* use the temporary database, each expecting to start from an
# empty one (the same test, parametrized twice):

# %%
@pytest.mark.parametrize("attempt", [1, 2])
async def test_each_test_gets_an_empty_temporary_db(temporary_db, attempt):
    assert await animals_in(temporary_db) == 0
    temporary_db.add(Animal(name="Rex", species="dog"))
    await temporary_db.commit()


run_tests("test_each_test_gets_an_empty_temporary_db", expect="failed")

# %% [markdown]
# The first test passes, the second finds the first one's Rex: with `scope="module"` every test of the
# module shares one database and one session, so order dependence is back, within each file.
#
# **Verdict:** <!-- verdict:module-scoped-in-memory-sqlite-isolates -->misleading<!-- /verdict -->. The fixture does keep its own data away from your real data and starts each
# *module* with fresh tables. But (1) it isolates nothing unless the app is pointed at it (a dependency
# override; <!-- ref:dependency-override -->lesson 02<!-- /ref -->), and the post's own test never does that, so its requests write wherever the
# app is configured to; (2) module scope shares state between the tests of a file; (3) in-memory SQLite
# is not the database you run in production: driver quirks and error texts differ (<!-- ref:event-loop-scopes,sqlite-savepoint-fix -->lessons 04 and 08<!-- /ref -->
# show bugs that only one backend exhibits).

# %%
await reset_schema(nb.database_url)
await count_rows(nb.database_url)

# %% [markdown]
# ### Claim check: the naive suite's second test fails because of the first test's row
# <!-- topic:naive-suite-loops -->
#
# "Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks" (2025, on a blog
# about upgrading Python applications) starts from two naive tests: the first creates a user, the
# second creates one with the same unique name and expects an error response; the post reports that
# the second fails because of the row the first left behind. We rebuild the two tests against our app,
# changing only the client construction (the post's `AsyncClient(app=app)` is a `TypeError` with
# httpx 0.28, <!-- ref:asyncclient-transport -->lesson 00<!-- /ref -->). Our app answers a duplicate with `409`; the test keeps the post's `400`.

# %%
async def test_create_rex():
    async with AsyncClient(transport=ASGITransport(app=shelter), base_url="http://test") as http:
        assert (await http.post("/animals", json=REX)).status_code == 201


async def test_create_rex_again():
    async with AsyncClient(transport=ASGITransport(app=shelter), base_url="http://test") as http:
        assert (await http.post("/animals", json=REX)).status_code == 400


async def run_and_explain(*args):
    """Run the two tests in order on an empty database; print why each failed."""
    await reset_schema(nb.database_url)
    failed = FailedTests()
    with contextlib.redirect_stdout(io.StringIO()):
        ipytest.run(*args, "{MODULE}::test_create_rex", "{MODULE}::test_create_rex_again", plugins=[failed], raise_on_error=False)
    # Empty the app's pool. An asyncpg connection of a loop that is gone cannot be closed: forget it.
    await app.db.engine.dispose(close=nb.backend == "sqlite")
    for name in ("test_create_rex", "test_create_rex_again"):
        print(f"{name:22} {'FAILED: ' + failed.reasons[name] if name in failed.names else 'passed'}")
    return failed.reasons


# %% [markdown]
# First as this repository runs its tests: one event loop for the whole pytest session.

# %%
reasons = await run_and_explain()
assert reasons["test_create_rex_again"] == "assert 409 == 400"

# %% [markdown]
# The post's explanation, on both databases: Rex from the first test is still there, the second insert
# hits the unique name. But the post's tests run with pytest-asyncio's defaults, and those give
# **every test an event loop of its own**, as they did throughout the 0.x releases (a [function-scoped](../GLOSSARY.md#function-scoped-fixture)
# `event_loop` fixture; in 1.x `asyncio_default_test_loop_scope = "function"`).
# The same two tests with those defaults (`-o` sets an ini option for one run):

# %% tags=["output-per-database"]
reasons = await run_and_explain("-o", "asyncio_default_test_loop_scope=function", "-o", "asyncio_default_fixture_loop_scope=function")
if nb.backend == "postgresql":
    assert "attached to a different loop" in reasons["test_create_rex_again"]
else:
    assert reasons["test_create_rex_again"] == "assert 409 == 400"
print("rows:", await count_rows(nb.database_url))

# %% [markdown]
# On SQLite nothing changes. On PostgreSQL the second test fails with `RuntimeError: Task ... got
# Future ... attached to a different loop` on its first use of the database, before its INSERT runs
# (the one row left is the first test's Rex): the app's engine, created once at import, hands it the
# pooled asyncpg connection that the first test opened on its own loop, which is gone: the output
# above. (It differs by database: on SQLite the course compares the cell with SQLite's output; the
# cell asserts the fact for the backend in use.)
#
# **Verdict:** <!-- verdict:second-test-fails-because-of-first-row -->accurate on SQLite, and on PostgreSQL when the tests share one event loop<!-- /verdict -->: the second
# insert of a unique name fails because of the first test's row. With pytest-asyncio 1.x defaults on
# PostgreSQL it is not what you see: the second test fails earlier, with a loop error, before any
# insert, and fixing the leftover row would not make it pass. Keep the app's engine and the tests on
# one loop, or dispose of the engine after each test, as our `client` fixture does (<!-- ref:event-loop-scopes -->lesson 04<!-- /ref -->).

# %% [markdown]
# ## 5. A preview of the cure: one transaction per test, never committed
#
# `tests/isolation.py` (<!-- ref:isolation-helper -->lesson 05<!-- /ref --> builds it line by line) runs each test inside one database
# transaction that is never committed. Every session the app opens joins that transaction inside a
# `SAVEPOINT` of its own (`join_transaction_mode="create_savepoint"`), so the app's `commit()` and
# `rollback()` behave normally, and at the end of the test the [outer transaction](../GLOSSARY.md#outer-transaction) is rolled back. The
# client fixture changes; the three tests do not:

# %%
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import get_session
from tests.isolation import isolated_async_sessions, override_dependency, session_dependency


@pytest.fixture
async def client():
    engine = create_async_engine(nb.database_url)  # the test's engine, on the test's event loop
    async with isolated_async_sessions(engine) as sessions:  # BEGIN ... never COMMIT
        with override_dependency(shelter, get_session, session_dependency(sessions)):  # requests join it
            async with LifespanManager(shelter) as started:
                async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                    yield http
    await engine.dispose()


# %% [markdown]
# **Quiz 01.5.** With this fixture we run the three tests in all 6 orders again. What do we get?
# - **a)** All 6 orders pass.
# - **b)** `test_rex_is_listed` fails in every order; the other two always pass.
# - **c)** `test_shelter_starts_empty` fails after the creation.
# - **d)** The same table as before: isolation changes speed, not outcomes.

# %% tags=["quiz-answer"]
answer("01.5", "b")

# %% jupyter={"source_hidden": true}
isolated = await run_in_every_order("test_shelter_starts_empty", "test_new_animal_gets_201", "test_rex_is_listed")
assert all(failed == {"test_rex_is_listed"} for failed in isolated)

# %% [markdown]
# The outcome no longer depends on the order: each test sees an empty database, whatever ran before.
# `test_rex_is_listed` now fails *every* time, and that is progress: its hidden dependency used to
# make it pass by luck; isolation turns it into a plain, reproducible bug in the test (exercise 1
# fixes it). The two honest tests now pass in both orders, run after run, without emptying the
# database in between. Three runs in a row:

# %%
await reset_schema(nb.database_url)
run_tests("test_new_animal_gets_201", "test_shelter_starts_empty")
run_tests("test_shelter_starts_empty", "test_new_animal_gets_201")
run_tests("test_new_animal_gets_201", "test_shelter_starts_empty")
await count_rows(nb.database_url)

# %% [markdown]
# `test_new_animal_gets_201` got its `201` three times: each run created Rex inside a transaction that
# was then rolled back, so the next run found no Rex. Zero rows in every table: compare with step 1,
# where the same test failed on its second run.
#
# ### Exercise 1: make `test_rex_is_listed` stand on its own
#
# Write `test_rex_is_listed_on_its_own`: it must pass alone and in any order, under the rollback
# fixture, by creating the data it needs instead of borrowing another test's. The cell's last line runs
# your test against the real app (it must pass) and against [broken versions](../GLOSSARY.md#broken-version) of it (it must fail
# against each): a database that still holds another test's Rex, a list route that shows an animal
# the database does not hold, a create route that forgets to commit.
#
# > Hint: post Rex through the `client` first (check the `201`), then compare `animal_names(client)`
# > with the whole list you expect.

# %%
from course.checks import l01


async def test_rex_is_listed_on_its_own(client):
    # BEGIN SOLUTION
    response = await client.post("/animals", json=REX)
    assert response.status_code == 201
    assert await animal_names(client) == ["Rex"]
    # END SOLUTION


l01.check_rex_is_listed_on_its_own()  # your test against the real app, then against broken versions

# %% [markdown]
# The notebook leaves its database empty:

# %%
await reset_schema(nb.database_url)
assert sum((await count_rows(nb.database_url)).values()) == 0
print("rows left in this notebook's database: 0")

# %% [markdown]
# ## Sources and further reading
#
# - pytest 9.2: [How to use fixtures, scopes](https://docs.pytest.org/en/stable/how-to/fixtures.html#fixture-scopes).
# - pytest-asyncio 1.5: [Configuration](https://pytest-asyncio.readthedocs.io/en/stable/reference/configuration.html)
#   (`asyncio_default_test_loop_scope`, `asyncio_default_fixture_loop_scope`); a loop per test was
#   already the default of the 0.x releases, through their function-scoped `event_loop` fixture
#   (removed in [1.0.0](https://pytest-asyncio.readthedocs.io/en/stable/reference/changelog.html)).
# - pytest-randomly 5.1: [README](https://github.com/pytest-dev/pytest-randomly).
# - SQLAlchemy 2.1: [Joining a Session into an External Transaction (such as for test suites)](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites),
#   the recipe behind `tests/isolation.py`.

# %% [markdown] tags=["key-points"]
# ## Key points
#
# - Without isolation every committed row outlives its test: the next run meets it as a `409` where a
#   `201` was expected, or as a list that is not empty.
# - A flaky suite is a deterministic one whose input you do not control: fix the starting state and
#   the order, and the failure happens every time. Here, one order in six passed.
# - Two symptoms of the same cause: a test that passes alone and fails in a suite, and one that passes
#   only in a suite. Count the rows a run leaves behind to see the cause.
# - pytest-randomly shuffles the order in real projects, and `--randomly-seed=N` replays a failing one.
# - A module-scoped in-memory SQLite database isolates nothing when the app is not pointed at it, and
#   shares its state between the tests of a module.
# - With pytest-asyncio 1.x defaults every test has its own event loop; on PostgreSQL an engine
#   created at import then fails the second test with "attached to a different loop", before any
#   leftover row matters. SQLite does not show it.
# - The rollback fixture (`tests/isolation.py`) makes every order give the same result with 0 rows
#   left, and exposes tests that relied on each other.
#
# **Next:** [02 · Dependency overrides](02_dependency_overrides.ipynb)
