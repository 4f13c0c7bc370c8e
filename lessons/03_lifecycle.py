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
# # 03 · The app's lifecycle and event loops
#
# A test calls the app in-process, and that skips what a server would do around it: the [lifespan](../GLOSSARY.md#lifespan)'s
# start-up and shut-down, the [event loop](../GLOSSARY.md#loop-scope) the server owns. This notebook shows what runs when (the
# lifespan, `yield` dependencies, [background tasks](../GLOSSARY.md#background-task)), what the test clients of httpx and Starlette do
# differently, and the event-loop errors of pytest-asyncio 1.x and asyncpg that SQLite hides.

# %% [markdown] tags=["overview"]
# **Teaching:** 40 min · **Exercises:** 11 min
#
# **Prerequisites:** 00 · Start here, 02 · Dependency overrides
#
# **You will be able to**
# - call an async app in-process with httpx 0.28 (`ASGITransport`), run its lifespan
#   (`LifespanManager`), and say what Starlette's `TestClient` does differently;
# - replace `@app.on_event` handlers with a lifespan;
# - say when a `yield` dependency exits (`Depends(scope=...)`, FastAPI >= 0.121) and when background
#   tasks have run, and assert on them without waiting;
# - recognise the event-loop errors of pytest-asyncio 1.x and asyncpg (`fixture 'event_loop' not
#   found`, `ScopeMismatch`, "attached to a different loop"), and say why SQLite hides them;
# - mock the payment provider at the transport with respx and test what the route does when it is
#   unreachable.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("03")
nb

# %% [markdown] tags=["instructor"]
# **Timing (40 + 11 min).** Test client and lifespan: 8 min (`on_event`, deep dive: 2 min).
# `TestClient`, httpx2 and respx: 9 min (`TestClient` and asyncpg, deep dive: 2 min). Event loops and
# the claim check: 14 min. `yield` dependencies and background tasks: 8 min. Quizzes 3 min, the
# exercise 8 min.
#
# On SQLite three cells *pass* that fail on PostgreSQL (the `TestClient` cell and the two loop-scope
# cells): the prose quotes the PostgreSQL error. If you teach from a laptop, run this notebook on
# PostgreSQL (`export DATABASE_URL=$(scripts/postgres start)`, restart the kernel) so the room sees
# them fail; on Binder PostgreSQL is the default.

# %% [markdown]
# The app, and two fixtures from <!-- ref:dependency-override -->lesson 02<!-- /ref -->: `engine`, a test engine created (and disposed) on the
# test's event loop, and `sessions`, the rollback-isolated session factory of `tests/isolation.py`.

# %%
import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import get_session
from app.main import app
from course.database import count_rows
from course.notebook import run_async
from tests.isolation import isolated_async_sessions, override_dependency, session_dependency


@pytest.fixture
async def engine():
    engine = create_async_engine(nb.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine):
    async with isolated_async_sessions(engine) as factory:
        yield factory


# %% [markdown]
# ## 1 · The test client: httpx 0.28
#
# <!-- ref:asyncclient-transport -->Lesson 00<!-- /ref --> checked it: many tutorials create the client with `AsyncClient(app=app, ...)`, and httpx
# 0.28 removed that shortcut (deprecated since 0.27). With the pinned version:

# %%
import httpx

try:
    AsyncClient(app=app, base_url="http://test")
except TypeError as exc:
    error = exc
print(f"httpx {httpx.__version__}: {type(error).__name__}: {error}")
assert "unexpected keyword argument 'app'" in str(error)

# %% [markdown]
# The app now goes into a transport, as in every client of this course:
# `AsyncClient(transport=ASGITransport(app=app), base_url="http://test")`. The base URL only
# completes relative paths like `/health`; nothing resolves its host.
#
# ## 2 · The lifespan
# <!-- topic:lifespan -->
#
# The shelter's lifespan (`app/main.py`) creates the `httpx.AsyncClient` the payment gateway uses
# and puts it on `app.state`; `/health` answers 503 until that has happened.

# %% [markdown]
# A brand-new app object, as a fresh test process would import it (the lifespan leaves state behind
# on the app it ran on, so each demonstration gets its own), called without its lifespan:

# %%
from app.main import create_app

fresh = create_app()
async with AsyncClient(transport=ASGITransport(app=fresh), base_url="http://test") as http:
    health = await http.get("/health")
    try:
        await http.post("/adoptions/1/pay")
    except AttributeError as exc:
        pay_error = exc

print(health.status_code, health.json())
print(f"{type(pay_error).__name__}: {pay_error}")

# %% [markdown]
# `/health` says 503, and paying crashes before any database work: the payment dependency reaches for
# `app.state.http_client`, which only the lifespan creates. `asgi_lifespan.LifespanManager` runs the
# startup half on entry and the shutdown half on exit; requests go to `started.app`:

# %%
from asgi_lifespan import LifespanManager

fresh = create_app()
async with LifespanManager(fresh) as started:
    async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
        health = await http.get("/health")

assert health.status_code == 200
print(health.status_code, health.json())

# %% [markdown]
# Starlette's `TestClient` speaks the lifespan protocol too, but only at one moment.
#
# **Quiz 03.1.** The next cell sends `GET /health` through `TestClient(create_app())` twice: once
# called directly, `TestClient(app).get("/health")`, and once inside `with TestClient(app) as client:`.
# What do the two calls answer?
# - **a)** 200 and 200: `TestClient` always runs the lifespan around each request.
# - **b)** 503 and 503: like `ASGITransport`, `TestClient` never runs the lifespan.
# - **c)** 503, then 200: the lifespan runs when the `with` block is entered, and not for a bare call.
# - **d)** 200, then 503: the `with` block shuts the app down before the request inside it is sent, so
#   the start-up state is gone.

# %% tags=["quiz-answer"]
answer("03.1", "c")

# %% jupyter={"source_hidden": true}
from fastapi.testclient import TestClient

without_with = TestClient(create_app()).get("/health")
with TestClient(create_app()) as test_client:
    inside_with = test_client.get("/health")

assert (without_with.status_code, inside_with.status_code) == (503, 200)
print("TestClient(app).get:        ", without_with.status_code)
print("with TestClient(app) as c: ", inside_with.status_code)

# %% [markdown]
# ### `@app.on_event`, the old way (deep dive)
#
# Older apps used `@app.on_event("startup")` instead of a lifespan. It is deprecated, and once an app
# has a `lifespan`, such handlers are silently skipped:

# %%
import warnings
from contextlib import asynccontextmanager

from fastapi import FastAPI

ran = []


@asynccontextmanager
async def lifespan(app):
    ran.append("lifespan startup")
    yield


legacy = FastAPI(lifespan=lifespan)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")

    @legacy.on_event("startup")
    async def warm_up():
        ran.append("on_event startup")

async with LifespanManager(legacy):
    pass

print(f"{caught[0].category.__name__}: {' '.join(str(caught[0].message).split())}")
print("ran:", ran)
assert ran == ["lifespan startup"]

# %% [markdown]
# Move such handlers into the lifespan: code before `yield` is startup, after it shutdown.
#
# ## 3 · `TestClient`, httpx2 and respx
# <!-- topic:respx-testclient -->
#
# Starlette's `TestClient` is a *sync* client. Since Starlette 1.2 it is built on the `httpx2`
# package when that is installed (and warns, `StarletteDeprecationWarning`, when only `httpx` is).
# This repository pins both, on purpose:

# %%
import subprocess
import sys

print("TestClient bases:", [f"{cls.__module__}.{cls.__name__}" for cls in TestClient.__mro__[1:]])
print("is an httpx.Client:", issubclass(TestClient, httpx.Client))
quiet = subprocess.run([sys.executable, "-W", "error", "-c", "import fastapi.testclient"], capture_output=True, text=True)
print("import fastapi.testclient with warnings as errors, exit code:", quiet.returncode)
assert quiet.returncode == 0, quiet.stderr

# %% [markdown]
# No warning: `TestClient` found `httpx2`. Why keep `httpx` too? The *app's* outgoing calls (the
# payment gateway) use `httpx`, and [respx](../GLOSSARY.md#respx), the library that mocks HTTP at the transport level, patches
# `httpx` only. Both libraries against a local port where nothing listens, inside one `respx.mock`:

# %%
import httpx2
import respx

with respx.mock(assert_all_called=False) as mock:
    mock.get("http://127.0.0.1:9/ping").respond(200, json={"mocked": True})
    via_httpx = httpx.get("http://127.0.0.1:9/ping").json()
    try:
        via_httpx2 = httpx2.get("http://127.0.0.1:9/ping", timeout=2).json()
    except httpx2.TransportError:  # refused (or timed out): it really went to the network
        via_httpx2 = "not intercepted, the request went to the network"

assert via_httpx == {"mocked": True}
print("httpx: ", via_httpx)
print("httpx2:", via_httpx2)

# %% [markdown]
# respx answered the `httpx` request and never saw the `httpx2` one, which went to the network. So:
# the app calls out with `httpx` (mockable), tests call the app with `httpx.AsyncClient` +
# [`ASGITransport`](../GLOSSARY.md#asgi-transport), and `TestClient` (httpx2) stays available where a sync client is the point.
#
# Now the client the rest of the course uses, as in `tests/conftest.py` and <!-- ref:dependency-override -->lesson 02<!-- /ref -->: the session
# [override](../GLOSSARY.md#dependency-override), a recording fake for the e-mail dependency, respx in front of the payment provider, and
# the lifespan. Every override goes through `override_dependency`.

# %%
from app.config import get_settings
from app.services.notifications import get_notifier
from tests.fakes import RecordingNotifier


@pytest.fixture
def notifier():
    fake = RecordingNotifier()
    with override_dependency(app, get_notifier, lambda: fake):
        yield fake


@pytest.fixture
def payments():
    with respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False) as provider:
        yield provider


@pytest.fixture
async def client(sessions, notifier, payments):
    with override_dependency(app, get_session, session_dependency(sessions)):
        async with LifespanManager(app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http


# %% [markdown]
# Every payment test starts from a reservation: Rex the dog, reserved for Ada.

# %%
async def create_reservation(client) -> int:
    """Rex the dog, reserved for Ada; returns the adoption id."""
    rex = (await client.post("/animals", json={"name": "Rex", "species": "dog"})).json()
    ada = (await client.post("/adopters", json={"name": "Ada", "email": "ada@example.com"})).json()
    reserved = await client.post("/adoptions", json={"animal_id": rex["id"], "adopter_id": ada["id"]})
    assert reserved.status_code == 201, reserved.text
    return reserved.json()["id"]

# %% [markdown]
# Paying goes through the lifespan's `httpx.AsyncClient`; respx intercepts it:

# %%
# %%ipytest
async def test_pay_charges_the_provider_once(client, payments):
    charge = payments.post("/v1/charges").respond(201, json={"id": "ch_1", "amount": 15000})
    adoption_id = await create_reservation(client)

    paid = await client.post(f"/adoptions/{adoption_id}/pay")

    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert charge.call_count == 1
    assert charge.calls.last.request.headers["Idempotency-Key"] == f"adoption-{adoption_id}"

# %% [markdown]
# ### `TestClient` and asyncpg (deep dive)
#
# `TestClient` runs the app on an event loop of its own, in another
# thread. Our `sessions` fixture opened its connection on the *test's* loop. Hand that connection to
# a `TestClient` request:

# %% tags=["output-per-database"]
def test_testclient_with_the_tests_connection(sessions):
    from fastapi.testclient import TestClient  # %%ipytest cells delete globals named Test*

    with override_dependency(app, get_session, session_dependency(sessions)):
        with TestClient(app) as sync_client:
            created = sync_client.post("/animals", json={"name": "Rex", "species": "dog"})
    assert created.status_code == 201


# aiosqlite is not tied to a loop; an asyncpg connection is tied to the loop that opened it.
run_tests(
    "test_testclient_with_the_tests_connection",
    expect="passed" if nb.backend == "sqlite" else "failed",
    args=["--tb=line"],
)

# %% [markdown]
# On PostgreSQL it fails, as the output above shows (on SQLite it passes):
# `RuntimeError: Task <Task pending name='anyio.from_thread.BlockingPortal._call_func' ...> got Future
# <Future pending ...> attached to a different loop`: asyncpg connections belong to the event loop
# that opened them. The fix for an async app is the client we just built: `httpx.AsyncClient` +
# `ASGITransport` runs the app on the test's own loop, next to its connection. Keep `TestClient` for
# sync apps, or for tests that give it nothing opened elsewhere.

# %% [markdown] tags=["instructor"]
# Learners often ask why the course does not simply use `TestClient` everywhere, as FastAPI's
# tutorial does. Answer with the cell above: the tutorial's examples are sync and use no external
# async connection. With an async driver and a rollback fixture, everything that touches the test's
# connection must run on the test's loop.
#
# If a PostgreSQL run of this notebook prints stray `Future exception was never retrieved` logs in a
# later cell, an asyncpg connection was garbage-collected after a loop mismatch: restart the kernel
# and run all; it is harmless but distracting.

# %% [markdown]
# ## 4 · Event-loop traps (pytest-asyncio 1.x)
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
# **Quiz 03.2.** Two tests, each on an event loop of its own, use a session-scoped engine whose pool
# holds a connection opened on the session loop. On PostgreSQL (asyncpg), what happens to them?
# - **a)** The first fails with `attached to a different loop`; the second, handed the same pooled
#   connection, with `another operation is in progress`.
# - **b)** Both pass: the engine opens a new connection for each test.
# - **c)** Both fail with `ScopeMismatch`, before any query is sent.
# - **d)** The first passes, because the fixture's connection is still fresh; the second fails with
#   `attached to a different loop`, because the first test's loop is gone by then.

# %% tags=["quiz-answer"]
answer("03.2", "a")

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
# (the route the question tests is the subject of <!-- ref:retry-routes -->lesson 09<!-- /ref -->; here only the setup):

# %%
import asyncio

loops_made = []


@pytest.fixture(scope="session")
def event_loop():
    loop = asyncio.new_event_loop()
    loops_made.append(loop)
    yield loop
    loop.close()


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
# ## 5 · `yield` dependencies and background tasks: what has run when the response arrives?

# %% [markdown]
# **Quiz 03.3.** A route uses a `yield` dependency declared with `Depends(dep, scope="function")`,
# another with the default scope, and adds a background task. In which order do these happen?
# - **a)** response sent → background task → both dependencies exit.
# - **b)** both dependencies exit → response sent → background task.
# - **c)** function-scoped dependency exits → response sent → default-scoped dependency exits; the
#   background task runs later, after the test client has returned.
# - **d)** function-scoped dependency exits → response sent → background task → default-scoped
#   dependency exits.

# %% tags=["quiz-answer"]
answer("03.3", "d")

# %% [markdown]
# A tiny app whose dependencies, route and background task each append a line to `steps`:

# %%
from typing import Annotated

from fastapi import BackgroundTasks, Depends

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
# Common mistakes in the exercise: respx routes written with the full URL while the `payments`
# fixture already has a `base_url` (both work, but a typo in the host silently misses); mocking with
# `respond(500)` instead of raising `ConnectError` (that is "the provider answered", another branch of
# the gateway); a weak assertion (`>= 400`, or the status alone): the check names the broken route it
# did not catch.

# %% [markdown]
# ### Exercise 1: the provider is down
#
# Keep the real gateway and fail the *network*: make the provider's `POST /v1/charges` raise
# `httpx.ConnectError` in the `payments` respx router. Check that paying answers **502** with the
# detail `"Payment failed, please retry later (payment provider unreachable: ConnectError)."` and that
# the adoption is still `"reserved"`. The cell's last line runs your test against the real app and
# against [broken versions](../GLOSSARY.md#broken-version) of the pay route.
#
# > Hint: `payments.post("/v1/charges").mock(side_effect=httpx.ConnectError("refused"))`; the router
# > already knows the provider's base URL. The lifespan's `httpx.AsyncClient` is what respx intercepts,
# > so this only works with the `client` fixture, which runs the lifespan.

# %%
from course.checks import l03


async def test_unreachable_provider_answers_502(client, payments):
    adoption_id = await create_reservation(client)
    # BEGIN SOLUTION
    payments.post("/v1/charges").mock(side_effect=httpx.ConnectError("refused"))

    response = await client.post(f"/adoptions/{adoption_id}/pay")

    assert response.status_code == 502
    assert response.json()["detail"] == "Payment failed, please retry later (payment provider unreachable: ConnectError)."
    assert (await client.get(f"/adoptions/{adoption_id}")).json()["status"] == "reserved"
    # END SOLUTION


l03.check_unreachable_provider()  # your test against the real app, then against broken pay routes

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
# - httpx 0.28: [Transports, ASGI](https://www.python-httpx.org/advanced/transports/#asgi-transport) and
#   the [0.28.0 changelog](https://github.com/encode/httpx/blob/master/CHANGELOG.md) (the `app=` shortcut removed).
# - asgi-lifespan 2.1: [README](https://github.com/florimondmanca/asgi-lifespan).
# - FastAPI 0.165: [Lifespan Events](https://fastapi.tiangolo.com/advanced/events/),
#   [Dependencies with yield](https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/),
#   [Background Tasks](https://fastapi.tiangolo.com/tutorial/background-tasks/),
#   [Testing](https://fastapi.tiangolo.com/tutorial/testing/).
# - Starlette 1.10: [Test Client](https://www.starlette.io/testclient/).
# - pytest-asyncio 1.5: [Concepts: event loops and scopes](https://pytest-asyncio.readthedocs.io/en/stable/concepts.html),
#   [Change the default event loop scope](https://pytest-asyncio.readthedocs.io/en/stable/how-to-guides/change_default_fixture_loop.html),
#   [Migrating from the event_loop fixture](https://pytest-asyncio.readthedocs.io/en/stable/how-to-guides/migrate_from_0_23.html).
# - SQLAlchemy 2.1: [Using asyncio with multiple event loops](https://docs.sqlalchemy.org/en/21/orm/extensions/asyncio.html#using-multiple-asyncio-event-loops)
#   and [NullPool](https://docs.sqlalchemy.org/en/21/core/pooling.html#switching-pool-implementations).
# - respx 0.23: [Guide](https://lundberg.github.io/respx/guide/).

# %% [markdown] tags=["key-points"]
# ## Key points
#
# - httpx 0.28: `AsyncClient(transport=ASGITransport(app=app), base_url="http://test")`;
#   `AsyncClient(app=...)` is a `TypeError`.
# - `ASGITransport` never runs the lifespan: wrap the app in `LifespanManager` (or use
#   `with TestClient(app)`). `@app.on_event` is deprecated and skipped when a `lifespan` is given.
# - The app calls out with `httpx` so respx can mock it; `TestClient` uses `httpx2` (Starlette >= 1.2),
#   which respx does not see. `TestClient` runs the app on its own loop: nothing opened on the test's
#   loop may cross over, which with asyncpg means "attached to a different loop".
# - pytest-asyncio 1.x: no `event_loop` fixture; give session-scoped async fixtures a
#   `loop_scope`; keep pooled asyncpg engines and tests on the same loop (or use `NullPool`). SQLite
#   hides loop bugs: test on PostgreSQL too.
# - When the test client returns, `yield` dependencies have exited and background tasks have run:
#   assert their effects right away. `Depends(scope="function")` (FastAPI >= 0.121) exits before the
#   response.
#
# **Next:** [05 · Rollback fixtures](05_rollback_fixtures.ipynb)
