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
# # 04 · Event loops, yield dependencies and background tasks
#
# A test calls the app on the test's own [event loop](../GLOSSARY.md#loop-scope), in one ASGI call. This notebook shows the
# event-loop errors of pytest-asyncio 1.x and asyncpg that SQLite hides, and what has already run when
# the test client hands back the response: `yield` dependencies and [background tasks](../GLOSSARY.md#background-task).

# %% [markdown] tags=["overview"]
# **Teaching:** 26 min · **Exercises:** 11 min
#
# **Prerequisites:** 00 · Start here, 02 · Dependency overrides, 03 · The test client and the lifespan
#
# **You will be able to**
# - recognise the event-loop errors of pytest-asyncio 1.x and asyncpg (`fixture 'event_loop' not
#   found`, `ScopeMismatch`, "attached to a different loop"), and say why SQLite hides them;
# - keep an engine's pooled connections and the tests that use them on one loop (`loop_scope`), or
#   pool nothing (`NullPool`);
# - say when a `yield` dependency exits (`Depends(scope=...)`, FastAPI >= 0.121) and when background
#   tasks have run, and assert on them, and on what they did not do, without waiting.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("04")
nb

# %% [markdown] tags=["instructor"]
# **Timing (26 + 11 min).** The fixtures of the previous lesson, re-created: 2 min. Event loops and the claim
# check: 14 min. `yield` dependencies and background tasks: 10 min. Quizzes 3 min, the exercise 8 min.
#
# On SQLite one cell *passes* that fails on PostgreSQL (two tests, each on a loop of its own, sharing
# a pooled engine): the prose quotes the PostgreSQL errors. If you teach from a laptop, run this
# notebook on PostgreSQL (`export DATABASE_URL=$(scripts/postgres start)`, restart the kernel) so the
# room sees them fail; on Binder PostgreSQL is the default.

# %% [markdown]
# The app, and what this notebook needs from <!-- ref:respx-testclient -->lesson 03<!-- /ref -->:

# %%
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import get_session
from app.main import app
from app.services.notifications import get_notifier
from course.database import count_rows
from course.notebook import run_async
from tests.fakes import RecordingNotifier
from tests.isolation import isolated_async_sessions, override_dependency, session_dependency

# %% [markdown]
# The fixtures of the previous lesson, built the same way (collapsed): `engine`, a test engine created
# and disposed on the test's event loop; `sessions`, the rollback-isolated session factory of
# `tests/isolation.py`; `notifier`, a recording fake for the e-mail dependency; and `client`, an
# `httpx.AsyncClient` + [`ASGITransport`](../GLOSSARY.md#asgi-transport) with the session [override](../GLOSSARY.md#dependency-override), inside the app's [lifespan](../GLOSSARY.md#lifespan). Nothing
# here pays, so it has no [respx](../GLOSSARY.md#respx) router.

# %% jupyter={"source_hidden": true}
@pytest.fixture
async def engine():
    engine = create_async_engine(nb.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine):
    async with isolated_async_sessions(engine) as factory:
        yield factory


@pytest.fixture
def notifier():
    fake = RecordingNotifier()
    with override_dependency(app, get_notifier, lambda: fake):
        yield fake


@pytest.fixture
async def client(sessions, notifier):
    with override_dependency(app, get_session, session_dependency(sessions)):
        async with LifespanManager(app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http


# %% jupyter={"source_hidden": true}
async def create_reservation(client) -> int:
    """Rex the dog, reserved for Ada; returns the adoption id."""
    rex = (await client.post("/animals", json={"name": "Rex", "species": "dog"})).json()
    ada = (await client.post("/adopters", json={"name": "Ada", "email": "ada@example.com"})).json()
    reserved = await client.post("/adoptions", json={"animal_id": rex["id"], "adopter_id": ada["id"]})
    assert reserved.status_code == 201, reserved.text
    return reserved.json()["id"]

# %% [markdown]
# ## 1 · Event-loop traps (pytest-asyncio 1.x)
# <!-- topic:event-loop-scopes -->
#
# Version note: this section is about pytest-asyncio 1.x (pinned: 1.5.0). **`event_loop` is gone.** Tests and fixtures written for pytest-asyncio 0.x ask for the `event_loop`
# fixture. Since 1.0 it does not exist:

# %%
async def test_written_for_pytest_asyncio_0_21(event_loop):
    assert event_loop.is_running()


run_tests("test_written_for_pytest_asyncio_0_21", expect="failed")

# %% [markdown]
# The replacement is a *loop scope*: `@pytest.mark.asyncio(loop_scope="session")` on tests,
# `@pytest_asyncio.fixture(loop_scope="session")` on fixtures, and the defaults in `pyproject.toml`.
# This repository runs everything on one session loop:
#
# ```toml
# asyncio_default_fixture_loop_scope = "session"
# asyncio_default_test_loop_scope = "session"
# ```
#
# **ScopeMismatch.** A [session-scoped](../GLOSSARY.md#function-scoped-fixture) async engine fixture without `loop_scope`. It leaves an open
# connection in the engine's pool, like any engine that has done some work:

# %%
from sqlalchemy import text


@pytest.fixture(scope="session")
async def shared_engine():
    engine = create_async_engine(nb.database_url)
    async with engine.connect() as conn:  # a connection now sits in the pool,
        await conn.execute(text("SELECT 1"))  # opened on this fixture's event loop
    yield engine
    await engine.dispose()


async def test_select_one(shared_engine):
    async with shared_engine.connect() as conn:
        assert await conn.scalar(text("SELECT 1")) == 1


run_tests("test_select_one")

# %% [markdown]
# It passes here because this repository's default fixture loop scope is `session`. Many projects set
# it to `function` (pytest-asyncio warns while it is unset, and announces `function` as the future
# default). The same fixture under that setting, with `-o` overriding the ini option for one run:

# %%
run_tests("test_select_one", expect="failed", args=["-o", "asyncio_default_fixture_loop_scope=function"])

# %% [markdown]
# A session-scoped fixture cannot run on a loop that lives for one test only. Say which loop it
# belongs to, and it works whatever the default is:

# %%
import pytest_asyncio


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_engine():
    engine = create_async_engine(nb.database_url)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    yield engine
    await engine.dispose()


run_tests("test_select_one", args=["-o", "asyncio_default_fixture_loop_scope=function"])

# %% [markdown]
# The engine above now belongs to the session loop, with a connection in its pool. The next cell runs
# two tests that each ask for a loop of their own and use that engine.
#
# **Quiz 04.1.** Two tests, each on an event loop of its own, use a session-scoped engine whose pool
# holds a connection opened on the session loop. On PostgreSQL (asyncpg), what happens to them?
# - **a)** The first fails with `attached to a different loop`; the second, handed the same pooled
#   connection, with `another operation is in progress`.
# - **b)** Both pass: the engine opens a new connection for each test.
# - **c)** Both fail with `ScopeMismatch`, before any query is sent.
# - **d)** The first passes, because the fixture's connection is still fresh; the second fails with
#   `attached to a different loop`, because the first test's loop is gone by then.

# %% tags=["quiz-answer"]
answer("04.1", "a")

# %% tags=["output-per-database"] jupyter={"source_hidden": true}
@pytest.mark.asyncio(loop_scope="function")
async def test_first_on_its_own_loop(shared_engine):
    async with shared_engine.connect() as conn:
        assert await conn.scalar(text("SELECT 1")) == 1


@pytest.mark.asyncio(loop_scope="function")
async def test_second_on_its_own_loop(shared_engine):
    async with shared_engine.connect() as conn:
        assert await conn.scalar(text("SELECT 1")) == 1


run_tests(
    "test_first_on_its_own_loop",
    "test_second_on_its_own_loop",
    expect="passed" if nb.backend == "sqlite" else "failed",
    args=["--tb=line"],
)

# %% [markdown]
# On PostgreSQL, above, the first fails with `RuntimeError: Task <Task pending
# name='Task-...' coro=<test_first_on_its_own_loop() ...>> got Future <Future pending
# cb=[BaseProtocol._on_waiter_completed()]> attached to a different loop`, and the second, handed the
# same connection still stuck in its half-finished operation, with `sqlalchemy.exc.InterfaceError:
# (sqlalchemy.dialects.postgresql.asyncpg.InterfaceError) cannot perform operation: another operation
# is in progress`. On SQLite both pass: aiosqlite runs each connection in a thread of its own and
# answers whichever loop awaits it, so **a SQLite-only suite hides this bug**: run your suite on the database you deploy.
#
# Two fixes. Keep tests and the engine on the same loop scope (this repository's choice; that is why
# `test_select_one` passed on PostgreSQL). Or keep no connections between uses: a `NullPool` engine
# opens a fresh connection on whichever loop asks, at the cost of one connect per use:

# %%
from sqlalchemy.pool import NullPool


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_engine():
    engine = create_async_engine(nb.database_url, poolclass=NullPool)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    yield engine
    await engine.dispose()


run_tests("test_first_on_its_own_loop", "test_second_on_its_own_loop")

# %% [markdown]
# The same trap hides in the app itself: `app/db.py` builds its engine at import time, and a pooled
# connection it opened during one pytest run (one loop) would be reused by the next. That is why the
# `app_engine` fixture of <!-- ref:dependency-override -->lesson 02<!-- /ref --> disposes it at teardown, and <!-- ref:naive-suite-loops -->lesson 01<!-- /ref --> shows the published naive
# suite failing on PostgreSQL for exactly this reason.

# %% [markdown]
# ### Claim check: a session-wide `event_loop` fixture plus `AsyncClient(app=app)` is the way to test an async FastAPI app
#
# The Stack Overflow question "How to test a FastAPI route that retries a SQLAlchemy insert after a
# rollback?" (2023, FastAPI 0.95, SQLAlchemy 2.0) builds its tests on a setup found in many
# tutorials: a session-scoped `event_loop` fixture that creates a new loop, and a client fixture that
# passes the app straight to `httpx.AsyncClient`. The same two pieces, against the pinned versions
# (the route the question tests is the subject of <!-- ref:retry-routes -->lesson 09<!-- /ref -->; here only the setup). The
# `event_loop` fixture below counts the loops it makes; a test, next, asks for the client.
#
# **Quiz 04.2.** With pytest-asyncio 1.5, how many loops does that `event_loop` fixture make?
# - **a)** One, shared by every test of the session, as with pytest-asyncio 0.x.
# - **b)** None: nothing asks for a fixture of that name any more, so it never runs.
# - **c)** None: the run stops first, with an error naming the removed `event_loop` fixture.
# - **d)** One per test: pytest-asyncio 1.x ignores the `scope="session"` of a fixture by that name.

# %% tags=["quiz-answer"]
answer("04.2", "b")

# %%
import asyncio

loops_made = []


@pytest.fixture(scope="session")
def event_loop():
    loop = asyncio.new_event_loop()
    loops_made.append(loop)
    yield loop
    loop.close()


# %% [markdown]
# The client fixture of the question, and a test that asks for it:

# %%
@pytest.fixture
async def question_style_client():
    async with AsyncClient(app=app, base_url="http://test") as http:
        yield http


async def test_health_question_style(question_style_client):
    assert (await question_style_client.get("/health")).status_code in (200, 503)


run_tests("test_health_question_style", expect="failed", args=["--tb=line"])
print("loops made by the event_loop fixture:", len(loops_made))

# %% [markdown]
# **Verdict:** <!-- verdict:session-event-loop-and-asyncclient-app -->outdated, on both counts<!-- /verdict -->, with pytest-asyncio 1.5 and httpx 0.28. The client fixture
# fails with `TypeError: AsyncClient.__init__() got an unexpected keyword argument 'app'`. The
# `event_loop` fixture is worse: no error, no warning, and it never runs (zero loops made), because
# pytest-asyncio 1.x no longer looks for it; the loop it was meant to share is now chosen by
# `loop_scope`. Today's equivalent is what this notebook uses: loop scopes in `pyproject.toml`,
# `AsyncClient(transport=ASGITransport(app=app), base_url=...)`, and `LifespanManager` when the app
# has a lifespan.

# %%
del event_loop  # a module-level fixture would otherwise stay visible to every later run

# %% [markdown]
# ## 2 · `yield` dependencies and background tasks: what has run when the response arrives?

# %% [markdown]
# **Quiz 04.3.** A route uses a `yield` dependency declared with `Depends(dep, scope="function")`,
# another with the default scope, and adds a background task. In which order do these happen?
# - **a)** response sent → background task → both dependencies exit.
# - **b)** both dependencies exit → response sent → background task.
# - **c)** function-scoped dependency exits → response sent → default-scoped dependency exits; the
#   background task runs later, after the test client has returned.
# - **d)** function-scoped dependency exits → response sent → background task → default-scoped
#   dependency exits.

# %% tags=["quiz-answer"]
answer("04.3", "d")

# %% [markdown]
# A tiny app whose dependencies, route and background task each append a line to `steps`:

# %%
from typing import Annotated

from fastapi import BackgroundTasks, Depends, FastAPI

steps = []


async def per_request():
    steps.append("enter  Depends(scope='request') (the default)")
    yield
    steps.append("exit   Depends(scope='request')")


async def per_function():
    steps.append("enter  Depends(scope='function')")
    yield
    steps.append("exit   Depends(scope='function')")


# %% [markdown]
# The route asks for both, and adds a background task:

# %%
timing = FastAPI()


@timing.get("/")
async def endpoint(
    background: BackgroundTasks,
    a: Annotated[None, Depends(per_request)],
    b: Annotated[None, Depends(per_function, scope="function")],
):
    steps.append("route  returns")
    background.add_task(steps.append, "task   background task runs")
    return {}

# %% [markdown]
# The ASGI wrapper records the moment the response starts to leave the app; the test records when it
# has the response in hand:

# %%
async def recording_sends(scope, receive, send):
    async def send_and_record(message):
        if message["type"] == "http.response.start":
            steps.append("---    response sent")
        await send(message)

    await timing(scope, receive, send_and_record)


async with AsyncClient(transport=ASGITransport(app=recording_sends), base_url="http://test") as http:
    await http.get("/")
    steps.append("test   has the response")

print("\n".join(steps))

# %% [markdown]
# Since FastAPI 0.121 a dependency can choose: `scope="function"` exits as soon as the route returns,
# before the response (use it for a session that must be closed before streaming, or a lock); the
# default, `"request"`, exits after the response has been sent and after the background tasks. (The
# default moved in 0.106 and back in 0.118: answers written in between describe other orders.) The
# same timeline, as the cell printed it:
#
# ```mermaid
# sequenceDiagram
#     participant T as test (AsyncClient)
#     participant A as app (one ASGI call)
#     T->>A: GET /
#     Note over A: enter Depends(scope="request")
#     Note over A: enter Depends(scope="function")
#     Note over A: the route returns
#     Note over A: exit Depends(scope="function")
#     A-->>T: response starts (status, headers, body)
#     Note over A: background task runs
#     Note over A: exit Depends(scope="request")
#     Note over T: the client returns the response: everything above has run
# ```
#
# For tests, the last two lines matter most: `ASGITransport` hands the response over only when the
# whole ASGI call has finished, so **background tasks have already run** (`TestClient` behaves the
# same). Assert their effects right after the call, with no sleeping or polling. The reservation
# e-mail, recorded by the fake notifier of the `client` fixture:

# %%
# %%ipytest
async def test_reservation_mail_has_gone_when_the_response_arrives(client, notifier):
    await create_reservation(client)

    assert notifier.sent == [
        ("ada@example.com", "Rex is reserved for you", "Please pay the adoption fee of EUR 150.00 within 48 hours."),
    ]

# %% [markdown]
# The flip side: a slow background task slows the test client down, and an exception in one reaches
# the test as an exception from the client call, even though production users already got their
# response.

# %% [markdown] tags=["instructor"]
# Common mistakes in the exercise: asserting `notifier.sent == []` right after the first reservation
# ("the mail has not gone yet"; it has, and the check says the test fails against the real app); a
# `sleep` before the assertions (harmless here, and never needed); checking
# `"bob@example.com" not in notifier.sent`, which compares an address with `(to, subject, body)`
# tuples and is always true; `len(notifier.sent) == 1`, which misses a wrong e-mail text.

# %% [markdown]
# ### Exercise 1: no e-mail for a refused reservation
#
# Reserve Rex for Ada, then try to reserve Rex for Bob: the second request answers **409**. Right after
# it, with no waiting, check that exactly one e-mail has gone: Ada's reservation e-mail, as in the
# test above, and nothing for Bob. The cell's last line runs your test against the real app and
# against [broken versions](../GLOSSARY.md#broken-version) of the reservation route.
#
# > Hint: `POST /adoptions` with `{"animal_id": ..., "adopter_id": ...}`, twice. When the client
# > returns, every background task of that request has run (or never will), so one `==` on the whole
# > of `notifier.sent` says both what was sent and what was not.

# %%
from course.checks import l04


async def test_refused_reservation_sends_no_mail(client, notifier):
    rex = (await client.post("/animals", json={"name": "Rex", "species": "dog"})).json()
    ada = (await client.post("/adopters", json={"name": "Ada", "email": "ada@example.com"})).json()
    bob = (await client.post("/adopters", json={"name": "Bob", "email": "bob@example.com"})).json()
    # BEGIN SOLUTION
    first = await client.post("/adoptions", json={"animal_id": rex["id"], "adopter_id": ada["id"]})
    second = await client.post("/adoptions", json={"animal_id": rex["id"], "adopter_id": bob["id"]})

    assert (first.status_code, second.status_code) == (201, 409)
    assert notifier.sent == [
        ("ada@example.com", "Rex is reserved for you", "Please pay the adoption fee of EUR 150.00 within 48 hours."),
    ]
    # END SOLUTION


l04.check_refused_reservation()  # your test against the real app, then against broken reservation routes

# %% [markdown]
# Whatever the exercise did, nothing is left behind and no override outlived its test:

# %%
assert app.dependency_overrides == {}
counts = run_async(count_rows(nb.database_url))
assert counts == {"adopters": 0, "animals": 0, "adoptions": 0}
print("overrides:", app.dependency_overrides, "rows:", counts)

# %% [markdown]
# ## Sources and further reading
#
# - pytest-asyncio 1.5: [Concepts: event loops and scopes](https://pytest-asyncio.readthedocs.io/en/stable/concepts.html),
#   [Change the default event loop scope](https://pytest-asyncio.readthedocs.io/en/stable/how-to-guides/change_default_fixture_loop.html),
#   [Migrating from the event_loop fixture](https://pytest-asyncio.readthedocs.io/en/stable/how-to-guides/migrate_from_0_23.html).
# - SQLAlchemy 2.1: [Using asyncio with multiple event loops](https://docs.sqlalchemy.org/en/21/orm/extensions/asyncio.html#using-multiple-asyncio-event-loops)
#   and [NullPool](https://docs.sqlalchemy.org/en/21/core/pooling.html#switching-pool-implementations).
# - httpx 0.28: the [0.28.0 changelog](https://github.com/encode/httpx/blob/master/CHANGELOG.md) (the `app=` shortcut removed).
# - FastAPI 0.165: [Dependencies with yield](https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/),
#   [Background Tasks](https://fastapi.tiangolo.com/tutorial/background-tasks/).

# %% [markdown] tags=["key-points"]
# ## Key points
#
# - pytest-asyncio 1.x: no `event_loop` fixture (one you define yourself is silently never used); give
#   session-scoped async fixtures a `loop_scope`; keep pooled asyncpg engines and tests on the same
#   loop (or use `NullPool`).
# - SQLite hides loop bugs (aiosqlite answers any loop): test on PostgreSQL too.
# - When the test client returns, `yield` dependencies have exited and background tasks have run:
#   assert their effects right away. `Depends(scope="function")` (FastAPI >= 0.121) exits before the
#   response.
#
# **Next:** [05 · Rollback fixtures](05_rollback_fixtures.ipynb)
