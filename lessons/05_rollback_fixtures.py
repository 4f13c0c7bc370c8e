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
# # 05 · Rollback fixtures

# %% [markdown] tags=["overview"]
# **Teaching:** 34 min · **Exercises:** 11 min
#
# **Prerequisites:** 01 · Naive tests and why they flake, 02 · Dependency overrides, 03 · The test client and the lifespan,
# 04 · Event loops, yield dependencies and background tasks
#
# **You will be able to**
# - build, line by line, the fixture SQLAlchemy recommends for test suites: one connection, an outer
#   transaction that is never committed, sessions joined to it with `join_transaction_mode="create_savepoint"`,
#   one fresh session per request through the dependency override, a rollback at teardown;
# - explain what leaks, or breaks, when any one of those lines is missing, and prove it by counting rows;
# - recognise that this fixture is `tests/isolation.py`, the helper you can copy into your project,
#   and seed test data through it that the app sees and the teardown removes.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("05", traceback="line")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("05")` has already pointed `DATABASE_URL` at this
# notebook's own, empty database, so importing `app` now is safe. Failing tests are reported in one
# line each (`traceback="line"`): the error text is what matters here, not the stack.

# %%
from contextlib import asynccontextmanager

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import app.db
from app.db import get_session
from app.main import app as shelter
from app.models import Animal
from course.checks import l05
from course.database import count_rows
from course.notebook import reset_schema, run_async
from tests.isolation import fix_sqlite_savepoints

REX = {"name": "Rex", "species": "dog"}
BELLA = {"name": "Bella", "species": "dog"}

# %% [markdown]
# ## The yardstick: rows left behind
#
# A test is isolated when the database looks the same after it as before. We measure exactly that:
# after every test, *and after its fixtures have cleaned up*, a brand-new connection counts the rows
# in each table. That connection sees only what was really committed. An autouse fixture does the
# counting (it is set up first, so it is torn down last); `show_leftovers()` prints the tally.

# %%
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
    """Empty tables, fresh sequences: the clean start every step below begins from."""
    run_async(reset_schema(nb.database_url))


# %% [markdown]
# The two tests we will keep running. The second one takes the route's error path: on a duplicate
# name `POST /animals` catches the [`IntegrityError`](../GLOSSARY.md#integrityerror), calls `session.rollback()` and answers 409.
# Then the app must carry on normally.

# %%
async def animal_names(client):
    return [animal["name"] for animal in (await client.get("/animals")).json()]


async def test_create_rex(client):
    assert (await client.post("/animals", json=REX)).status_code == 201
    assert await animal_names(client) == ["Rex"]


async def test_duplicate_is_409_and_the_app_carries_on(client):
    assert (await client.post("/animals", json=REX)).status_code == 201
    assert (await client.post("/animals", json=REX)).status_code == 409  # the route calls rollback()
    assert (await client.post("/animals", json=BELLA)).status_code == 201
    assert await animal_names(client) == ["Bella", "Rex"]


# %% [markdown]
# ## Step 1: no override at all
#
# A `client` fixture that only wraps the app: requests use the app's own `get_session`, hence the
# app's own engine. (That engine pools connections on the [event loop](../GLOSSARY.md#loop-scope) of this test run; disposing of
# it at teardown keeps asyncpg from reusing them on the next run's loop, <!-- ref:event-loop-scopes -->lesson 04<!-- /ref -->.)

# %%
@pytest.fixture
async def client():
    async with LifespanManager(shelter) as started:
        async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
            yield http
    await app.db.engine.dispose()


run_tests("test_create_rex")
show_leftovers()

# %% [markdown]
# The test passed, and Rex is still in the database afterwards. Run the very same test again:

# %%
run_tests("test_create_rex", expect="failed")
show_leftovers()

# %% [markdown]
# The second run meets the first run's Rex: 409 instead of 201. A test that passes once and fails
# the next time is exactly the [order dependence](../GLOSSARY.md#order-dependence) of <!-- ref:order-dependence -->lesson 01<!-- /ref -->. Clean up before the next step.

# %%
wipe()
run_async(count_rows(nb.database_url))

# %% [markdown]
# ## Step 2: our own sessions, but no transaction around them
#
# Now the [override](../GLOSSARY.md#dependency-override). `app_client(factory)` puts the app behind an HTTP client and replaces
# `get_session` with a dependency that opens **one fresh session per request** from `factory`, as the
# real `get_session` does. We will use it for every remaining step; only `factory` changes.

# %%
@asynccontextmanager
async def app_client(factory):
    async def get_test_session():  # no parameters: FastAPI would expose them as request parameters
        async with factory() as session:
            yield session

    shelter.dependency_overrides[get_session] = get_test_session
    try:
        async with LifespanManager(shelter) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http
    finally:
        del shelter.dependency_overrides[get_session]  # the dict is global: always restore it


# %% [markdown]
# A first factory: sessions bound to a test engine, the way the app binds its own.

# %%
@pytest.fixture
async def client():
    engine = create_async_engine(nb.database_url)
    async with app_client(async_sessionmaker(engine, expire_on_commit=False)) as http:
        yield http
    await engine.dispose()


run_tests("test_create_rex")
show_leftovers()

# %% [markdown]
# The override works (the requests used our sessions) and isolates nothing: the route's
# `await session.commit()` is a real `COMMIT`. There is no transaction left for the test to roll
# back. We need one that the test, not the app, owns.

# %%
wipe()

# %% [markdown]
# ## Step 3: an outer transaction, sessions in the default join mode
# <!-- topic:rollback-fixture -->
#
# The test opens **one connection** and **begins a transaction** on it; every session is bound to
# that connection, so it joins the transaction instead of starting its own. `sessions` hands out
# that factory; `client` serves the app with it.
#
# `fix_sqlite_savepoints(engine)` makes the stdlib SQLite driver emit `BEGIN` and real [savepoints](../GLOSSARY.md#savepoint);
# it does nothing on PostgreSQL. <!-- ref:sqlite-savepoint-fix -->Lesson 08<!-- /ref --> shows what goes wrong without it.

# %%
@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:
        async with connection.begin() as outer:
            yield async_sessionmaker(bind=connection, expire_on_commit=False)  # default join mode
            await outer.rollback()
    await engine.dispose()


@pytest.fixture
async def client(sessions):
    async with app_client(sessions) as http:
        yield http


run_tests("test_create_rex")
show_leftovers()

# %% [markdown]
# Looks fixed: nothing left. The session factory above names no [`join_transaction_mode`](../GLOSSARY.md#join-mode), so it uses
# the default. Which names does SQLAlchemy accept, and which is the default? We ask the library
# rather than trust memory (a misspelt mode is refused when the session is created):

# %%
import typing

from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session
from sqlalchemy.orm.session import JoinTransactionMode

print("accepted:", ", ".join(typing.get_args(JoinTransactionMode)))
print("default: ", Session().join_transaction_mode)
try:
    Session(join_transaction_mode="savepoint")
except ArgumentError as exc:
    print(f"ArgumentError: {exc}")

# %% [markdown]
# In the default mode, `"conditional_savepoint"`, a session bound to a connection that is already
# in a transaction does not pass its `commit()` on: that is why Rex did not leak. (The four modes
# exist since SQLAlchemy 2.0; this course pins 2.1.9.) Before running the 409 test, predict.
#
# **Quiz 05.1.** Predict the next cell. In `test_duplicate_is_409_and_the_app_carries_on` the second
# `POST` fails on the unique name, the route calls `await session.rollback()` and answers 409, then
# the test posts Bella. What does `run_tests` report under this fixture?
# - **a)** Passed: the session quietly opened a savepoint for the request, so its `rollback()` undid
#   only the failed `INSERT` of the second Rex.
# - **b)** Passed, but Bella is left in the database after the test.
# - **c)** Failed on the second `POST` with a 500: the `IntegrityError` reaches FastAPI.
# - **d)** Failed on Bella's `POST`: the rollback ended the test's own transaction.

# %% tags=["quiz-answer"]
answer("05.1", "d")

# %% [markdown]
# Run it and see.

# %%
run_tests("test_duplicate_is_409_and_the_app_carries_on", expect="failed")
show_leftovers()

# %% [markdown]
# The route's rollback ended the test's transaction *inside* the test's `async with
# connection.begin()` block; the next statement on that connection, the `INSERT` for Bella, is
# refused: [`Can't operate on closed transaction inside context manager`](../GLOSSARY.md#closed-transaction). (That error text is the
# subject of a Stack Overflow question, "How to test a FastAPI route that retries a SQLAlchemy insert
# after a rollback?", 2023; <!-- ref:retry-routes -->lesson 09<!-- /ref --> takes it apart.)
# Nothing leaked, but the test cannot go on.
#
# The tempting "fix" is to begin the [outer transaction](../GLOSSARY.md#outer-transaction) without the context manager:

# %%
@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:
        outer = await connection.begin()
        yield async_sessionmaker(bind=connection, expire_on_commit=False)  # default join mode
        await outer.rollback()
    await engine.dispose()


run_tests("test_duplicate_is_409_and_the_app_carries_on", expect="failed")
show_leftovers()

# %% [markdown]
# No error any more, and that is worse. The route's rollback threw away the first Rex (the list
# shows only Bella). The connection was then outside any transaction, so Bella's session began a
# transaction of its own, owned it, and its `commit()` really committed: **one row leaked**. The
# only trace is SQLAlchemy's warning at teardown, `transaction already deassociated from
# connection`. With a route whose test asserted less, this would pass and leak silently.

# %%
wipe()
run_async(count_rows(nb.database_url))

# %% [markdown] tags=["instructor"]
# **Instructor notes (steps 1-3, ~20 min).** Let the class predict Quiz 05.1 by show of hands before
# running the cell; most choose a) or b). The surprise in step 3 is the order of events: commits are
# swallowed (good) but rollbacks are not (bad). If someone asks "why not just catch the error in the
# fixture": the plain-`begin()` variant shows that silence is worse than the error.
# If a cell hangs on PostgreSQL, a previous interrupted run left a connection in a transaction:
# restart the kernel and run from the top (`setup` recreates the schema). On SQLite the same
# situation shows as `database is locked`.

# %% [markdown]
# ## Step 4: `join_transaction_mode="create_savepoint"`
# <!-- topic:create-savepoint -->
#
# One argument changes. With `create_savepoint` every session starts a `SAVEPOINT` inside the
# test's transaction; its `commit()` releases that savepoint and its `rollback()` rolls back to it.
# The outer transaction is out of the app's reach. This is the recipe from SQLAlchemy's
# documentation, "Joining a Session into an External Transaction (such as for test suites)".
# Steps 1 to 3 showed why lines 1 to 4 are there; line 5 gets a quiz of its own in the next
# section. The picture of the whole course:
#
# ```mermaid
# flowchart LR
#     T["test: one connection"] --> O["outer transaction: BEGIN, never committed"]
#     O --> S1["request 1 session: SAVEPOINT sa_savepoint_1"]
#     O --> S2["request 2 session: SAVEPOINT sa_savepoint_2"]
#     S1 -- "app commit()" --> R1["RELEASE SAVEPOINT: rows stay in the outer transaction"]
#     S2 -- "app rollback()" --> R2["ROLLBACK TO SAVEPOINT: only this request's work is undone"]
#     O -- "test teardown" --> E["ROLLBACK: the database is as before the test"]
# ```

# %%
@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:  # 1. one connection for the whole test
        outer = await connection.begin()  # 2. the test's transaction: never committed
        try:
            yield async_sessionmaker(
                bind=connection,  # 3. every session joins that transaction ...
                join_transaction_mode="create_savepoint",  # 4. ... inside a SAVEPOINT of its own
                expire_on_commit=False,
            )
        finally:
            await outer.rollback()  # 5. undo everything the test did
    await engine.dispose()


run_tests("test_create_rex", "test_duplicate_is_409_and_the_app_carries_on")
show_leftovers()

# %% [markdown]
# Both pass, and nothing is left after either. Order dependence was the symptom in step 1, so run
# them the other way round too:

# %%
run_tests("test_duplicate_is_409_and_the_app_carries_on", "test_create_rex")
show_leftovers()

# %% [markdown]
# To see why, the next cell listens to the engine's transaction events while two requests go
# through the step 4 set-up: a `POST` that commits (201), and a duplicate `POST` that rolls back
# (409). (Engine created and disposed in the cell: it runs on the notebook's own event loop, not
# the tests' one.)
#
# **Quiz 05.2.** Predict the events the next cell prints, in order (the test's part first and last):
# - **a)** begin, savepoint, release_savepoint, savepoint, rollback_savepoint, rollback
# - **b)** begin, commit, begin, rollback, then a final rollback that finds no transaction left
# - **c)** begin, savepoint, commit, savepoint, rollback, rollback
# - **d)** savepoint, release_savepoint, savepoint, rollback_savepoint, with no begin and no rollback

# %% tags=["quiz-answer"]
answer("05.2", "a")

# %%
from sqlalchemy import event

TRANSACTION_EVENTS = ("begin", "commit", "rollback", "savepoint", "release_savepoint", "rollback_savepoint")


async def transaction_log():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    log = []
    for name in TRANSACTION_EVENTS:
        event.listen(engine.sync_engine, name, lambda *args, name=name: log.append(name))
    async with engine.connect() as connection:
        outer = await connection.begin()
        factory = async_sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        async with app_client(factory) as http:
            for label in ("POST Rex", "POST Rex again"):
                status = (await http.post("/animals", json=REX)).status_code
                log.append(f"   <- {label}: {status}")
        await outer.rollback()
    await engine.dispose()
    return log


print("\n".join(await transaction_log()))
run_async(count_rows(nb.database_url))

# %% [markdown]
# One `begin` and one `rollback` for the test; in between, each request got a savepoint, released
# on success and rolled back on the duplicate. No `commit` anywhere: nothing the app does can end
# the test's transaction.

# %% [markdown]
# ## The same fixture, ready to copy: `tests/isolation.py`
# <!-- topic:isolation-helper -->
#
# The repository ships this fixture as a small helper that imports nothing from the app:
# `isolated_async_sessions(engine)` is our `sessions`, `session_dependency(factory)` our
# `get_test_session`, and `override_dependency(app, dependency, replacement)` our set-and-restore of
# `dependency_overrides`. Here is the first one; it is short on purpose:

# %%
import inspect

from tests.isolation import isolated_async_sessions, override_dependency, session_dependency

print(inspect.getsource(isolated_async_sessions))

# %% [markdown]
# Numbered lines 1 to 5 again, plus the SQLite fix; the rollback, line 5, sits in a `finally:`.
#
# **Quiz 05.3.** A copy of the step 4 fixture has lost line 5, `await outer.rollback()`, and nothing
# else. Under that fixture, `test_create_rex` creates Rex and passes. Where is Rex after the test?
# - **a)** In the database: a transaction that nobody ends is committed when the engine is disposed of.
# - **b)** In the database until the next test's `connection.begin()`, which rolls him back.
# - **c)** Gone: leaving `async with engine.connect()` closes the connection, and closing it rolls
#   back whatever transaction is still open on it.
# - **d)** It depends on the database: PostgreSQL rolls him back, SQLite keeps him.

# %% tags=["quiz-answer"]
answer("05.3", "c")

# %% [markdown]
# The fixture without line 5, and our two tests, on both databases:

# %%
@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    async with engine.connect() as connection:
        await connection.begin()  # line 2; line 5, the rollback, is gone
        yield async_sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    await engine.dispose()


run_tests("test_create_rex", "test_duplicate_is_409_and_the_app_carries_on")
show_leftovers()

# %% [markdown]
# Nothing left: `Connection.close()` rolls back a transaction still in progress, on both databases.
# The helper keeps line 5 anyway, in a `finally:` so that it also runs when the body of the `async
# with` raises: the fixture says what it does instead of relying on what closing does.
# `session_dependency` is the per-request dependency from `app_client`:

# %%
print(inspect.getsource(session_dependency))

# %% [markdown]
# Rebuilt with the helper, the fixtures shrink to a few lines and the same tests pass. This cell is
# what a [`conftest.py`](../GLOSSARY.md#conftestpy) in your project would contain (with an engine fixture instead of
# `nb.database_url`).

# %%
# %%ipytest
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


async def test_create_rex(client):
    assert (await client.post("/animals", json=REX)).status_code == 201
    assert await animal_names(client) == ["Rex"]


async def test_duplicate_is_409_and_the_app_carries_on(client):
    assert (await client.post("/animals", json=REX)).status_code == 201
    assert (await client.post("/animals", json=REX)).status_code == 409
    assert (await client.post("/animals", json=BELLA)).status_code == 201
    assert await animal_names(client) == ["Bella", "Rex"]


# %%
show_leftovers()

# %% [markdown]
# ### Exercise 1: seed data the app can see
#
# Tests often need rows *before* the request: an animal to reserve, an adopter to look up. Write
# `test_seeded_animal_is_listed`: open a session from the `sessions` factory, add a cat named Luna,
# commit, then check that `GET /animals` lists exactly `["Luna"]`. The fixtures above are in force,
# so Luna must be gone after the test.
#
# > Hint: `async with sessions() as session:` gives you a session joined to the test's transaction;
# > its `commit()` only releases a savepoint, so the app's session sees Luna and the teardown still
# > removes her.
#
# The check at the end of the cell runs your test against the real app (it must pass) and against
# two [broken versions](../GLOSSARY.md#broken-version) (it must fail on each); then it counts the rows left behind, which must be none.

# %%
async def test_seeded_animal_is_listed(sessions, client):
    # BEGIN SOLUTION
    async with sessions() as session:
        session.add(Animal(name="Luna", species="cat"))
        await session.commit()
    assert await animal_names(client) == ["Luna"]
    # END SOLUTION


l05.check_seeded_animal_is_listed(nb.database_url)

# %% [markdown]
# ## Sources and further reading
#
# - SQLAlchemy 2.1: [Joining a Session into an External Transaction (such as for test suites)](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites)
#   and the [`join_transaction_mode` parameter of `Session`](https://docs.sqlalchemy.org/en/21/orm/session_api.html#sqlalchemy.orm.Session.params.join_transaction_mode)
#   (the four modes and their default, asked of the library above).
# - SQLAlchemy 2.1: [Transaction events (`ConnectionEvents`)](https://docs.sqlalchemy.org/en/21/core/events.html#sqlalchemy.events.ConnectionEvents),
#   used for the transaction log; [`Connection.close()`](https://docs.sqlalchemy.org/en/21/core/connections.html#sqlalchemy.engine.Connection.close)
#   ("Any transactional state present on the DBAPI connection is also unconditionally released via
#   the DBAPI connection's `rollback()` method").
# - FastAPI 0.165: [Testing Dependencies with Overrides](https://fastapi.tiangolo.com/advanced/testing-dependencies/).
# - pytest-asyncio 1.5: [Concepts: event loop scopes](https://pytest-asyncio.readthedocs.io/en/stable/concepts.html).

# %% [markdown] tags=["instructor"]
# **Instructor notes (step 4 to the end, ~16 min + exercise).** Read the five numbered lines of the
# step 4 fixture aloud; every later lesson builds on them. The transaction log cell is the best
# moment to answer "so does my app's commit still get tested?": yes, as far as the SQL goes (the
# flush, the constraints, the `RELEASE`), but not the final `COMMIT` itself, which is the
# database's job. Common learner mistakes in Exercise 1: forgetting `commit()` or `flush()` (then
# the app's session cannot see Luna: the list is empty); writing the seeding session outside
# `sessions` (then Luna leaks: the check says so and cleans up); creating Luna with `POST /animals`
# (the check names it: seeding is for rows no route creates).

# %% [markdown] tags=["key-points"]
# ## Key points
# - The test owns **one connection and one outer transaction** that nobody commits; it rolls it back
#   at teardown.
# - Sessions are bound to that connection with `join_transaction_mode="create_savepoint"`: the app's
#   `commit()` releases a savepoint, its `rollback()` rolls back to one, and the outer transaction
#   survives both. In the default mode a route's `rollback()` ends the test's transaction: an error
#   (`Can't operate on closed transaction inside context manager`) or, worse, silently leaked rows.
# - One fresh session per request, through the dependency override, like production.
# - Prove isolation by counting rows from a fresh connection after each test, and by running the
#   tests in more than one order.
# - Version notes: the join modes are SQLAlchemy 2.x (`create_savepoint` since 2.0; the default is
#   `"conditional_savepoint"`).
# - `tests/isolation.py` is this fixture, ready to copy.
#
# **Next:** [06 · Sequences and fixture scope: what a rollback does not undo](06_sequences_and_scope.ipynb)
