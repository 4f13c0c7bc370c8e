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
# # 03 · The test client and the lifespan
#
# A test calls the app in-process, and that skips what a server would do around it: the [lifespan](../GLOSSARY.md#lifespan)'s
# start-up and shut-down. This notebook shows what the test clients of httpx and Starlette do
# differently, how to run the lifespan in a test, and how to mock the app's own calls to the payment
# provider with [respx](../GLOSSARY.md#respx), inside that lifespan.

# %% [markdown] tags=["overview"]
# **Teaching:** 22 min · **Exercises:** 11 min
#
# **Prerequisites:** 00 · Start here, 02 · Dependency overrides
#
# **You will be able to**
# - call an async app in-process with httpx 0.28 (`ASGITransport`), run its lifespan
#   (`LifespanManager`), and replace `@app.on_event` handlers with a lifespan;
# - say what Starlette's `TestClient` does differently (the lifespan, `httpx2`, its own event loop);
# - mock the payment provider at the transport with respx and test what the route does when it is
#   unreachable.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("03")
nb

# %% [markdown] tags=["instructor"]
# **Timing (22 + 11 min).** Test client and lifespan: 9 min (`on_event`, deep dive: 2 min).
# `TestClient`, httpx2 and respx: 9 min (`TestClient` and asyncpg, deep dive: 2 min). Quizzes 3 min,
# the exercise 8 min.
#
# On SQLite the `TestClient` cell of the deep dive *passes*; it fails on PostgreSQL, and the prose
# quotes the PostgreSQL error. If you teach from a laptop, run this notebook on PostgreSQL
# (`export DATABASE_URL=$(scripts/postgres start)`, restart the kernel) so the room sees it fail; on
# Binder PostgreSQL is the default.


# %% [markdown]
# The app, and two fixtures from <!-- ref:dependency-override -->lesson 02<!-- /ref -->: `engine`, a test engine created (and disposed) on the
# test's [event loop](../GLOSSARY.md#loop-scope), and `sessions`, the rollback-isolated session factory of `tests/isolation.py`.

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
# The shelter's lifespan (`app/main.py`) prepares what the payment gateway needs at start-up, and
# `/health` answers 503 until it has run. The next cell calls a brand-new app object, as a fresh test
# process would import it (the lifespan leaves state behind on the app it ran on, so each
# demonstration gets its own), through [`ASGITransport`](../GLOSSARY.md#asgi-transport) alone: `GET /health`, then
# `POST /adoptions/1/pay`.
#
# **Quiz 03.1.** What does the payment request do?
# - **a)** It answers 404: the route looks up adoption 1 before anything else, and this database
#   has no adoptions yet.
# - **b)** It answers 502: the gateway tries to reach the provider over the network and finds nobody.
# - **c)** It answers 503, like `/health`: the app refuses every request until start-up has run.
# - **d)** No response: the call raises an `AttributeError`, since the payment dependency reads
#   something that was never built.

# %% tags=["quiz-answer"]
answer("03.1", "d")

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
# `app.state.http_client`, the `httpx.AsyncClient` that only the lifespan creates. `asgi_lifespan.LifespanManager` runs the
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
# **Quiz 03.2.** The next cell sends `GET /health` through `TestClient(create_app())` twice: once
# called directly, `TestClient(app).get("/health")`, and once inside `with TestClient(app) as client:`.
# What do the two calls answer?
# - **a)** 200 and 200: `TestClient` always runs the lifespan around each request.
# - **b)** 503 and 503: like `ASGITransport`, `TestClient` never runs the lifespan.
# - **c)** 503, then 200: the lifespan runs when the `with` block is entered, and not for a bare call.
# - **d)** 200, then 503: the `with` block shuts the app down before the request inside it is sent, so
#   the start-up state is gone.

# %% tags=["quiz-answer"]
answer("03.2", "c")

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
# payment gateway) use `httpx`, and tests mock them with respx, the library that mocks HTTP at the
# transport level. The next cell sends the same `GET` to a local port where nothing listens, once with
# each library, inside one `respx.mock` that has a route for it.
#
# **Quiz 03.3.** What do the two requests get?
# - **a)** Both get the mocked answer: while `respx.mock` is active, every HTTP client in the process
#   is intercepted.
# - **b)** `httpx` gets the mocked answer; the `httpx2` request is not intercepted and really goes to
#   the network.
# - **c)** Neither is intercepted: respx only sees requests sent by an `httpx.AsyncClient`, not
#   module-level calls such as `httpx.get`.
# - **d)** `httpx` gets the mocked answer; the `httpx2` request fails with respx's "not mocked"
#   error, as any unmatched request does inside `respx.mock`.

# %% tags=["quiz-answer"]
answer("03.3", "b")

# %% jupyter={"source_hidden": true}
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
# respx answered the `httpx` request and never saw the `httpx2` one, which went to the network: respx
# patches `httpx` only. So:
# the app calls out with `httpx` (mockable), tests call the app with `httpx.AsyncClient` +
# `ASGITransport`, and `TestClient` (httpx2) stays available where a sync client is the point.
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
# sync apps, or for tests that give it nothing opened elsewhere. <!-- ref:event-loop-scopes -->Lesson 04<!-- /ref --> meets the same error
# between pytest's own event loops, and shows how to keep a test and its connections on one loop.

# %% [markdown] tags=["instructor"]
# Learners often ask why the course does not simply use `TestClient` everywhere, as FastAPI's
# tutorial does. Answer with the cell above: the tutorial's examples are sync and use no external
# async connection. With an async driver and a rollback fixture, everything that touches the test's
# connection must run on the test's loop.
#
# If a PostgreSQL run of this notebook prints stray `Future exception was never retrieved` logs in a
# later cell, an asyncpg connection was garbage-collected after a loop mismatch: restart the kernel
# and run all; it is harmless but distracting.

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
#   [Testing](https://fastapi.tiangolo.com/tutorial/testing/).
# - Starlette 1.10: [Test Client](https://www.starlette.io/testclient/).
# - SQLAlchemy 2.1: [Using asyncio with multiple event loops](https://docs.sqlalchemy.org/en/21/orm/extensions/asyncio.html#using-multiple-asyncio-event-loops).
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
# - Mock the outside world at the transport (respx) and keep the real gateway: a test then sees what
#   the route really answers, and what it did not do, when the provider is down.
#
# **Next:** [04 · Event loops, yield dependencies and background tasks](04_event_loops.ipynb)
