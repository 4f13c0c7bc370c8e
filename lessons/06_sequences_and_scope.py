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
# # 06 · Sequences and fixture scope: what a rollback does not undo

# %% [markdown] tags=["overview"]
# **Teaching:** 24 min · **Exercises:** 11 min
#
# **Prerequisites:** 05 · Rollback fixtures (the outer transaction, `create_savepoint`, `tests/isolation.py`)
#
# **You will be able to**
# - explain why PostgreSQL hands out new ids after a rollback while SQLite reuses them, and write
#   tests that hold on both;
# - say why the fixture that owns the test's transaction must be function-scoped, and which
#   fixtures may live longer;
# - judge a popular fixture (one session in a transaction, handed to the app) by running it.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("06", traceback="line")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("06")` has already pointed `DATABASE_URL` at this
# notebook's own, empty database, so importing `app` now is safe. Failing tests are reported in one
# line each (`traceback="line"`): the error text is what matters here, not the stack.

# %%
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db import get_session
from app.main import app as shelter
from app.models import Animal
from course.checks import l06
from course.database import count_rows
from course.notebook import reset_schema, run_async
from tests.isolation import fix_sqlite_savepoints, isolated_async_sessions, override_dependency, session_dependency

REX = {"name": "Rex", "species": "dog"}

# %% [markdown]
# The yardstick of <!-- ref:rollback-fixture -->lesson 05<!-- /ref -->, collapsed because you built it there: after every test, *and after
# its fixtures have cleaned up*, a brand-new connection counts the rows in each table
# (`count_leftovers`, autouse); `show_leftovers()` prints the tally, `wipe()` empties the tables and
# restarts the [sequences](../GLOSSARY.md#sequence), `assert_database_empty()` is the last word.

# %% jupyter={"source_hidden": true}
leftovers = []  # (test name, rows per table) after each test


@pytest.fixture(autouse=True)
async def count_leftovers(request):
    yield
    leftovers.append((request.node.name, await count_rows(nb.database_url)))


def show_leftovers():
    for name, counts in leftovers:
        left = {table: n for table, n in counts.items() if n}
        print(f"after {name}: {left or 'nothing left'}")
    leftovers.clear()


def wipe():
    """Empty tables, fresh sequences."""
    run_async(reset_schema(nb.database_url))


def assert_database_empty():
    leftovers.clear()
    assert sum(run_async(count_rows(nb.database_url)).values()) == 0
    print("the database is empty")


async def animal_names(client):
    return [animal["name"] for animal in (await client.get("/animals")).json()]

# %% [markdown]
# And the fixture <!-- ref:isolation-helper -->lesson 05<!-- /ref --> ended with, imported from `tests/isolation.py`, the helper you can copy:
# one connection and one [outer transaction](../GLOSSARY.md#outer-transaction) per test, every request's session joined to it with
# `join_transaction_mode="create_savepoint"`, the [override](../GLOSSARY.md#dependency-override) removed after the test.

# %%
@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    async with isolated_async_sessions(engine) as factory:
        yield factory
    await engine.dispose()


@pytest.fixture
async def client(sessions):
    with override_dependency(shelter, get_session, session_dependency(sessions)):
        async with LifespanManager(shelter) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http


# %% [markdown]
# ## Ids after a rollback
# <!-- topic:ids-after-rollback -->
#
# **Quiz 06.1.** On PostgreSQL, a test creates the first animal of an empty table and is rolled
# back; the next test creates an animal too. What id does the second one get?
# - **a)** 1: the rollback restored the table exactly as it was.
# - **b)** 1 or 2 at random: each connection caches its own sequence values.
# - **c)** Not 1: the sequence handed out 1 already, and `nextval()` is never undone.
# - **d)** The test fails: the rolled-back id 1 is still reserved by a lock.

# %% tags=["quiz-answer"]
answer("06.1", "c")

# %% [markdown]
# The same test twice (parametrised), recording the id the app returns. We start from fresh
# sequences so the numbers are comparable between runs.

# %%
ids = []


@pytest.mark.parametrize("attempt", [1, 2])
async def test_rex_gets_an_id(client, attempt):
    response = await client.post("/animals", json=REX)
    assert response.status_code == 201
    ids.append(response.json()["id"])


wipe()
run_tests("test_rex_gets_an_id")
show_leftovers()

# %% [markdown]
# Both runs left nothing behind. The ids differ by backend, so the next cell's output does too (the
# one shown is PostgreSQL's; on SQLite it is compared with SQLite's); the cell asserts the fact of
# the active backend.

# %% tags=["output-per-database"]
print(f"{nb.backend}: ids {ids}")
if nb.backend == "postgresql":
    assert ids[1] > ids[0]  # the sequence kept counting
else:
    assert ids == [1, 1]  # SQLite picks max(rowid) + 1, and the table was empty again

# %% [markdown]
# SQLite reuses the id after the rollback; PostgreSQL does not. A test that hard-codes an id can
# therefore pass on SQLite and fail on PostgreSQL:

# %%
async def test_get_rex_by_literal_id(client):
    assert (await client.post("/animals", json=REX)).status_code == 201
    response = await client.get("/animals/1")  # "it is the first animal, so its id is 1"
    assert response.status_code == 200


# %% tags=["output-per-database"]
run_tests("test_get_rex_by_literal_id", expect="passed" if nb.backend == "sqlite" else "failed")
show_leftovers()

# %% [markdown]
# ### Exercise 1: a test that holds on every backend
#
# Rewrite the test above so that it passes on SQLite *and* PostgreSQL: create Rex, fetch him by his
# id, check the name.
#
# > Hint: the `POST` response carries the id the database assigned.
#
# The check starts from fresh ids, so on both databases the real app gives Rex id 1. Then it runs
# your test with ids handed out from 1001, as PostgreSQL does once earlier tests have used the first
# ones: it must pass there too. Last, two [broken versions](../GLOSSARY.md#broken-version) of the app that it must fail against.

# %%
async def test_get_rex_by_his_id(client):
    # BEGIN SOLUTION
    created = await client.post("/animals", json=REX)
    assert created.status_code == 201
    response = await client.get(f"/animals/{created.json()['id']}")
    assert response.status_code == 200
    assert response.json()["name"] == "Rex"
    # END SOLUTION


l06.check_get_rex_by_his_id(nb.database_url)


# %% [markdown]
# ## Why the fixture that owns the transaction is function-scoped
# <!-- topic:fixture-scopes -->
#
# The rollback happens when the `sessions` fixture is torn down. Make it [session-scoped](../GLOSSARY.md#function-scoped-fixture) ("one
# connection for the whole run is faster") and there is one rollback, after the last test. (A
# session-scoped `client` would need a session-scoped `sessions`: the same thing.)
#
# **Quiz 06.2.** With `sessions` session-scoped, what happens to two tests that each create Rex?
# - **a)** Nothing changes: each test still runs in its own transaction.
# - **b)** The second test sees the first test's Rex (409), yet nothing is left in the database afterwards.
# - **c)** Rex leaks into the database after the run.
# - **d)** pytest-asyncio refuses a session-scoped async fixture here: neither test runs.

# %% tags=["quiz-answer"]
answer("06.2", "b")

# %% [markdown]
# The helper's fixture again, with `scope="session"` (the [loop scope](../GLOSSARY.md#loop-scope) is already `session`, from
# `pyproject.toml`):

# %%
@pytest.fixture(scope="session")
async def sessions():
    engine = create_async_engine(nb.database_url)
    async with isolated_async_sessions(engine) as factory:
        yield factory
    await engine.dispose()


async def test_first_rex(client):
    assert (await client.post("/animals", json=REX)).status_code == 201


async def test_second_rex(client):
    assert (await client.post("/animals", json=REX)).status_code == 201


run_tests("test_first_rex", "test_second_rex", expect="failed")
show_leftovers()
run_async(count_rows(nb.database_url))

# %% [markdown]
# Nothing reached the database, yet the tests were not isolated from each other: the second one got
# a 409. Isolation lasts as long as the fixture that owns the transaction, so everything that writes
# must be function-scoped. (A long-lived *session* that holds its own [savepoint](../GLOSSARY.md#savepoint) fails in a nastier
# way, `savepoint ... does not exist`; <!-- ref:savepoint-does-not-exist -->lesson 08<!-- /ref --> takes that apart.) Back to function scope:

# %%
@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    async with isolated_async_sessions(engine) as factory:
        yield factory
    await engine.dispose()


run_tests("test_first_rex", "test_second_rex")
show_leftovers()

# %% [markdown]
# So isolation needs a transaction per test. Must every other fixture be rebuilt for every test too?
#
# **Quiz 06.3.** Which of these may be created once for the whole run, while every test stays
# isolated from the others?
# - **a)** The engine: `sessions` stays function-scoped and takes a connection from it for each test.
# - **b)** The `client`, with the override inside it, as long as `sessions` itself stays function-scoped.
# - **c)** The factory `isolated_async_sessions` yields, kept in a module-level variable after the first test.
# - **d)** None of them: pytest-asyncio binds a session-scoped async fixture to the event loop of the first
#   test, so the second test cannot use it.

# %% tags=["quiz-answer"]
answer("06.3", "a")

# %% [markdown]
# A session-scoped engine, and `sessions` per test on top of it:

# %%
@pytest.fixture(scope="session")
async def shared_engine():
    engine = create_async_engine(nb.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(shared_engine):
    async with isolated_async_sessions(shared_engine) as factory:
        yield factory


run_tests("test_first_rex", "test_second_rex")
show_leftovers()

# %% [markdown]
# Both pass and nothing is left. An engine is a pool: each test still takes a connection of its own,
# begins its own transaction and rolls it back. That is the shape the [`conftest.py`](../GLOSSARY.md#conftestpy) in the docstring
# of `tests/isolation.py` recommends (the engine, and even the started app, once per run; `sessions`
# and the override per test). What must not outlive a test is whatever holds its transaction: the
# connection, the factory bound to it, the override that hands that factory out.

# %% [markdown]
# ## Claim check: wrap the test's session in a transaction, hand that session to the app, roll back at the end (deep dive)
#
# The article "Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks"
# (2025, on a Python-upgrade consultancy's blog) promises a clean slate per test this way: open a session on
# the engine, begin a transaction on its connection, let the dependency override return *that same
# session* to every request, and roll the transaction back at teardown. It also suggests that seed
# data a fixture commits through that session is undone as well. We rebuild the fixture in our own
# code and run it against our app. First, the article's order of calls: ask the session for its
# connection, then begin a transaction on that connection.

# %%
from sqlalchemy.exc import InvalidRequestError


async def begin_on_the_sessions_connection():
    engine = create_async_engine(nb.database_url)
    try:
        async with AsyncSession(engine) as session:
            connection = await session.connection()
            await connection.begin()
    except InvalidRequestError as exc:
        return exc
    finally:
        await engine.dispose()


error = await begin_on_the_sessions_connection()
print(f"{type(error).__name__}: {error}")
assert "already initialized a SQLAlchemy Transaction" in str(error)

# %% [markdown]
# On SQLAlchemy 2.x that fixture never gets to the test: `session.connection()` has already begun
# the transaction. Its evident intent still deserves a fair trial, so we begin the transaction
# through the session instead:

# %%
@pytest.fixture
async def one_session():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        transaction = await session.begin()  # the transaction around the test
        yield session
        await transaction.rollback()  # "and roll it back at the end"
    await engine.dispose()


@pytest.fixture
async def client(one_session):
    async def same_session():  # every request gets the test's session
        yield one_session

    with override_dependency(shelter, get_session, same_session):
        async with LifespanManager(shelter) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http


# %% [markdown]
# First path: the route commits.

# %%
async def test_claim_when_the_route_commits(client):
    assert (await client.post("/animals", json=REX)).status_code == 201


run_tests("test_claim_when_the_route_commits", expect="failed")
show_leftovers()

# %% [markdown]
# The test itself passed; then its teardown failed (`This transaction is closed`) and Rex stayed
# in the database. The route's `commit()` committed the very transaction the fixture meant to roll
# back. Clean up, then the second path: the test puts its own row in the transaction, and the
# route rolls back after a duplicate.

# %%
wipe()


async def test_claim_when_the_route_rolls_back(one_session, client):
    one_session.add(Animal(name="Luna", species="cat"))  # the test's own data, in "the" transaction
    await one_session.flush()
    assert (await client.post("/animals", json={"name": "Luna", "species": "cat"})).status_code == 409
    assert await animal_names(client) == ["Luna"]


run_tests("test_claim_when_the_route_rolls_back", expect="failed")
show_leftovers()

# %% [markdown]
# The 409 is right, but the route's `rollback()` took the test's Luna with it: the list is empty,
# and the teardown fails again. Nothing leaked this time only because nothing committed after the
# rollback.
#
# **Verdict:** <!-- verdict:same-session-transaction-rollback -->does not hold, on either path<!-- /verdict -->. When the route commits, the commit is real and the
# rows stay; when it rolls back, it rolls back the test's own data. The fixture isolates only tests
# whose app code never calls `commit()` or `rollback()`, and such apps are rare. The working
# version is <!-- ref:create-savepoint -->lesson 05<!-- /ref -->'s step 4 (`tests/isolation.py`): the test owns the connection and its transaction, and
# each request gets its own session inside a savepoint. (The article's speed figures are the subject
# of <!-- ref:isolation-benchmark -->lesson 14<!-- /ref -->.)

# %%
assert_database_empty()

# %% [markdown]
# ## Sources and further reading
#
# - PostgreSQL 15: [Sequence Manipulation Functions](https://www.postgresql.org/docs/15/functions-sequence.html)
#   ("`nextval` operations are never rolled back"); SQLite: [ROWID and AUTOINCREMENT](https://www.sqlite.org/autoinc.html)
#   (without `AUTOINCREMENT` a new row gets the largest rowid + 1, so a rolled-back id comes back).
# - pytest 9: [Scope: sharing fixtures across classes, modules, packages or session](https://docs.pytest.org/en/stable/how-to/fixtures.html#scope-sharing-fixtures-across-classes-modules-packages-or-session);
#   pytest-asyncio 1.5: [Concepts: event loop scopes](https://pytest-asyncio.readthedocs.io/en/stable/concepts.html).
# - SQLAlchemy 2.1: [Joining a Session into an External Transaction (such as for test suites)](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites),
#   the recipe the [claim check](../GLOSSARY.md#claim-check) is measured against.
# - The claim check: "Using pytest Fixtures with FastAPI TestClient for Database Transaction
#   Rollbacks", a Python-upgrade consultancy's blog, 2025.

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~24 min + exercise and quizzes).** Quiz 06.1 is the moment to ask
# "who runs their tests on SQLite and deploys on PostgreSQL?": the per-database cell shows both
# answers. Common learner mistakes: asserting literal ids (the real app exposes it only on
# PostgreSQL; the exercise's check catches it on both databases with ids that start at 1001), or
# deriving the id from the number of animals listed (the same check names it). For Quiz 06.2, let
# the class predict by show of hands; many expect a leak. The claim check is a deep dive: skip it
# in a short workshop. The variant of cmdragon's post "如何在FastAPI中玩转"时光倒流"的数据库事务回滚测试？"
# (blog.cmdragon.cn, 2025-09-09), `session.begin_nested()` around the test's session, fails the
# same way: <!-- ref:begin-nested-claim -->lesson 08<!-- /ref --> runs it.

# %% [markdown] tags=["key-points"]
# ## Key points
# - Sequences are not rolled back on PostgreSQL (`nextval()` is never undone), and SQLite reuses
#   ids: never assert literal ids; use the id the response returned.
# - The rollback happens when the fixture that owns the transaction is torn down: that fixture, and
#   everything that writes, is function-scoped. A session-scoped one leaks nothing into the database
#   and still lets tests see each other's rows.
# - What holds no transaction may be shared: a session-scoped engine under function-scoped
#   `sessions` keeps every test isolated.
# - Handing the app the test's one session does not isolate an app that commits or rolls back: the
#   test must own the connection and its transaction (`tests/isolation.py`).
#
# **Next:** [07 · Savepoints](07_savepoints.ipynb)
