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
# **Teaching:** 20 min · **Exercises:** 10 min
#
# **Prerequisites:** 00 · Start here.
#
# **You will be able to**
# - explain how tests that share a database without isolation depend on each other: leftover rows,
#   order dependence, unique-constraint `409`s where a `201` was expected;
# - reproduce an order-dependent failure deterministically, by running the same tests in fixed orders
#   on a known database state;
# - count the rows a test run leaves behind;
# - recognise a test that passes alone but fails in a suite, and one that passes only in a suite;
# - judge the advice "a module-scoped in-memory SQLite database isolates your tests";
# - see the rollback fixture of `tests/isolation.py` make the outcome independent of the order, with no
#   rows left.

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
# **Instructor notes (~20 min + 10 min exercise).** Pace: the naive suite and the three single
# demonstrations 8 min, the every-order table 4 min, claim check 4 min, the cure 4 min. The quizzes
# work well as a show of hands *before* running the next cell: most people predict quiz 01.3 wrong
# (they guess 3 of 6 orders).
#
# Points learners get wrong:
# - "Just delete everything at the start of each test." It does make the first two tests pass, but it
#   hides `test_rex_is_listed`'s dependency (it would fail *reliably* only if it ran first) and it is
#   slow on real schemas (lesson 10 measures it).
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
# event loop; lesson 02 explains why. It deletes nothing.)

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
#
# The database is empty (`setup()` just emptied it). Run the test that creates Rex:

# %%
run_tests("test_new_animal_gets_201")

# %% [markdown]
# **Quiz 01.1.** Nothing changes in the code. We run `test_new_animal_gets_201` again. What happens?
# - **a)** It passes: every pytest run starts from scratch.
# - **b)** It fails: the app answers `409`, because the Rex of the first run is still in the database.
# - **c)** It fails with an `IntegrityError` traceback coming out of the app (a `500`).
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
# One leaked row, and it decides the outcome of every later run. This is the classic flaky suite:
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
# - **b)** It fails: it relies on a row that only another test creates.
# - **c)** It errors: the `client` fixture needs another test to have run first.
# - **d)** pytest skips it, because it depends on another test.

# %% tags=["quiz-answer"]
answer("01.2", "b")

# %%
await reset_schema(nb.database_url)
run_tests("test_rex_is_listed", expect="failed")

# %% [markdown]
# The mirror image of step 2: a test that is green in the suite only because another test prepares its
# data. Delete or rename that other test, run a single file, split the suite across workers, and it
# turns red.
#
# ## 4. Every order, made deterministic
#
# **Quiz 01.3.** Of the 6 possible orders of the three tests, each run on an empty database, how many
# pass?
# - **a)** 6
# - **b)** 3
# - **c)** 1
# - **d)** 0

# %% tags=["quiz-answer"]
answer("01.3", "c")

# %% [markdown]
# `run_in_every_order` tries them all. For each order it empties the database, runs the tests with
# pytest (full report suppressed, you have seen the failures above) and prints which failed. The
# little plugin class collects the names of the failed tests from pytest's reports.

# %%
class FailedTests:
    """A pytest plugin: remembers the names of the tests that failed."""

    def __init__(self):
        self.names = set()

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.names.add(report.nodeid.split("::")[-1])


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
# Three tests, one hidden dependency each way, and the suite's result depends on the order alone.
# A suite of hundreds of tests has many such pairs, and the order changes more often than you think:
# a new test file, `pytest -k`, `pytest --lf`, pytest-xdist distributing tests to workers.
#
# [pytest-randomly](https://github.com/pytest-dev/pytest-randomly) does on purpose what those do by
# accident: it shuffles the order on every run and prints the seed in the report header
# (`Using --randomly-seed=...`); `pytest -p randomly --randomly-seed=<that number>` replays the same
# order. That is how you find order dependence in a real project, and why this repository's reference
# suite runs shuffled. In a notebook a seed does not replay an order: pytest-randomly sorts the tests
# by a hash of the seed *and each test's id*, and a test's id here includes the module name ipytest
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
#
# Seed 003 recommends, for integration tests, a pytest fixture with `scope="module"` that creates an
# in-memory SQLite database, creates the tables, and hands out a session: a temporary database that
# keeps the tests away from real data. Seed 001's naive test shows the same unique-constraint failure
# we saw in step 1. We rebuild the seed's fixture in async form and test the claim with two questions:
# does the app write into that database, and does each test get a fresh one?

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
# - **a)** Into the in-memory database: the fixture created it for the test.
# - **b)** Into the database the app is configured with: nothing tells the app about the in-memory one.
# - **c)** Nowhere: in-memory databases roll everything back at the end of a test.
# - **d)** Into both.

# %% tags=["quiz-answer"]
answer("01.4", "b")

# %%
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
# **Verdict:** misleading. The fixture does keep its own data away from your real data and starts each
# *module* with fresh tables. But (1) it isolates nothing unless the app is pointed at it (a dependency
# override; lesson 02), and the seed's own test never does that, so its requests write wherever the
# app is configured to; (2) module scope shares state between the tests of a file; (3) in-memory SQLite
# is not the database you run in production: driver quirks and error texts differ (lessons 02 and 05
# show bugs that only one backend exhibits). Seed 001's description of the naive failure, on the
# other hand, is accurate: the second insert of a unique value fails, as step 1 showed.

# %%
await reset_schema(nb.database_url)
await count_rows(nb.database_url)

# %% [markdown]
# ## 5. A preview of the cure: one transaction per test, never committed
#
# `tests/isolation.py` (lesson 04 builds it line by line) runs each test inside one database
# transaction that is never committed. Every session the app opens joins that transaction inside a
# `SAVEPOINT` of its own (`join_transaction_mode="create_savepoint"`), so the app's `commit()` and
# `rollback()` behave normally, and at the end of the test the outer transaction is rolled back. The
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
# - **c)** `test_shelter_starts_empty` still fails whenever it runs after the creation.
# - **d)** The same table as before: isolation changes speed, not outcomes.

# %% tags=["quiz-answer"]
answer("01.5", "b")

# %%
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
# fixture, by creating the data it needs instead of borrowing another test's. The cell runs it in two
# orders with `test_shelter_starts_empty`.
#
# > Hint: post Rex through the `client` first (check the `201`), then look at `animal_names(client)`.
# > With the placeholder, the test passes because it asserts nothing; make sure yours can fail (for
# > instance, look for `"Bella"` once).

# %%
async def test_rex_is_listed_on_its_own(client):
    # BEGIN SOLUTION
    response = await client.post("/animals", json=REX)
    assert response.status_code == 201
    assert await animal_names(client) == ["Rex"]
    # END SOLUTION


run_tests("test_rex_is_listed_on_its_own", "test_shelter_starts_empty")
run_tests("test_shelter_starts_empty", "test_rex_is_listed_on_its_own")

# %% [markdown]
# The notebook leaves its database empty:

# %%
await reset_schema(nb.database_url)
assert sum((await count_rows(nb.database_url)).values()) == 0
print("rows left in this notebook's database: 0")

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
# - The rollback fixture (`tests/isolation.py`) makes every order give the same result with 0 rows
#   left, and exposes tests that relied on each other.
#
# **Next:** [02 · Dependency overrides](02_dependency_overrides.ipynb)
