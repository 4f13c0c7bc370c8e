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
# # 02 · Dependency overrides and the app's lifecycle

# %% [markdown] tags=["overview"]
# **Teaching:** 25 min · **Exercises:** 15 min
#
# **Prerequisites:** 00 · Start here, 01 · Naive tests and why they flake
#
# **You will be able to**
# - replace the app's session dependency in a test with `app.dependency_overrides`, keyed by the very
#   function the routes use, and spot the three ways an override goes silently wrong (wrong key,
#   parameters, never removed);
# - install overrides that are always restored (`override_dependency`), and know what overriding an
#   outer dependency skips;
# - call an async app in-process with httpx 0.28 (`ASGITransport`), run its lifespan
#   (`LifespanManager`), and say what Starlette's `TestClient` does differently;
# - recognise the event-loop errors of pytest-asyncio 1.x and asyncpg, and say why SQLite hides them;
# - say when a `yield` dependency exits and when background tasks have run, and assert on them.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("02")
nb

# %% [markdown] tags=["instructor"]
# **Timing (25 + 15 min).** Overrides done right and wrong: 9 min. Test client and lifespan: 5 min.
# `TestClient`, httpx2 and respx: 3 min. Event loops and the claim check: 5 min. `yield` dependencies
# and background tasks: 3 min. Exercises: 15 min.
#
# The whole notebook runs in well under 30 s on either database. On SQLite three cells *pass* that
# fail on PostgreSQL (the `TestClient` cell and the two loop-scope cells): the prose quotes the
# PostgreSQL error. If you teach from a laptop, run this notebook on PostgreSQL
# (`export DATABASE_URL=$(scripts/postgres start)`, restart the kernel) so the room sees them fail;
# on Binder PostgreSQL is the default.

# %% [markdown]
# ## 1 · The override, done right
#
# Every route asks for its database session the same way: `Depends(get_session)`, with `get_session`
# imported from `app/db.py`. It opens a session on the app's own engine:

# %%
import inspect

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine

import app.db as app_db
from app.db import get_session
from app.main import app
from course.database import count_rows
from course.notebook import run_async
from tests.isolation import isolated_async_sessions, override_dependency, session_dependency

print(inspect.getsource(get_session))

# %% [markdown]
# A test must hand the routes *its* session instead: one whose writes are rolled back when the test
# ends. FastAPI's hook for that is `app.dependency_overrides`, a plain dictionary from "the dependency
# a route declared" to "what to call instead". It starts empty:

# %%
app.dependency_overrides

# %% [markdown]
# The fixtures this notebook builds on. `sessions` comes from `tests/isolation.py`: a factory of
# sessions that all live inside one transaction that is rolled back after the test (notebook 04
# takes it apart line by line; here it is a black box). `bare_client` calls the app in-process, with
# nothing else: no override, no lifespan. `app_engine` is the app's *own* engine, for the tests that
# (by mistake) reach it; it is disposed at teardown, for a reason section 6 makes clear.

# %%
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
async def bare_client():
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
async def app_engine():
    yield app_db.engine
    await app_db.engine.dispose()

# %% [markdown]
# The override done right: the key is `get_session`, the very function object the routes passed to
# `Depends`; the value, made by `session_dependency(sessions)`, is a function **without parameters**
# that yields a session from the test's factory. The `finally` removes it whatever happens.

# %%
# %%ipytest
async def test_override_keyed_by_the_routes_own_dependency(sessions, bare_client):
    app.dependency_overrides[get_session] = session_dependency(sessions)
    try:
        created = await bare_client.post("/animals", json={"name": "Rex", "species": "dog"})
        listed = await bare_client.get("/animals")
    finally:
        del app.dependency_overrides[get_session]
    assert created.status_code == 201
    assert [animal["name"] for animal in listed.json()] == ["Rex"]

# %% [markdown]
# The route committed Rex, and the list saw him. Did anything reach the database for good? A fresh
# connection counts the rows of every table:

# %%
counts = run_async(count_rows(nb.database_url))
assert counts == {"adopters": 0, "animals": 0, "adoptions": 0}
counts

# %% [markdown]
# Nothing: the route's commit happened inside the test's transaction, which was rolled back.
#
# ## 2 · Three ways to get it wrong, silently

# %% [markdown]
# **Quiz 02.1.** A `conftest.py` defines its own `async def get_session()`, with exactly the body of
# `app.db.get_session`, and installs `app.dependency_overrides[get_session] = ...` with *that* local
# function as the key. What happens when a test calls `POST /animals`?
# - **a)** The override is used: FastAPI matches dependencies by their qualified name.
# - **b)** FastAPI raises `KeyError` at the first request: the key is not a dependency of any route.
# - **c)** The override is ignored without a word; the route uses the app's own session and engine.
# - **d)** The request fails with 422: the override does not match the declared dependency.

# %% tags=["quiz-answer"]
answer("02.1", "c")

# %% [markdown]
# Let us run it. `lookalike` is `get_session` copied and pasted under another name (the name does
# not matter: a copy called `get_session` in a `conftest.py` behaves the same). Same code, two objects:

# %%
from app.db import SessionLocal


async def lookalike():
    """FastAPI dependency: one session per request, closed after the response."""
    async with SessionLocal() as session:
        yield session


print("same bytecode:", lookalike.__code__.co_code == get_session.__code__.co_code)
print("same object:  ", lookalike is get_session)

# %% [markdown]
# A test keyed by the look-alike. It passes, which is the trap:

# %%
# %%ipytest
async def test_override_keyed_by_a_lookalike(sessions, bare_client, app_engine):
    app.dependency_overrides[lookalike] = session_dependency(sessions)
    try:
        created = await bare_client.post("/animals", json={"name": "Ghost", "species": "cat"})
    finally:
        del app.dependency_overrides[lookalike]
    assert created.status_code == 201

# %% [markdown]
# FastAPI looked up `get_session` in the dictionary, found nothing, and called the real one: the app's
# engine committed Ghost for good. A fresh connection sees the row after the test has ended:

# %%
counts = run_async(count_rows(nb.database_url))
assert counts["animals"] == 1
counts

# %% [markdown]
# On a developer's machine that row lands in whatever database the app is configured for. Here it is
# this notebook's database; we delete it so the cells below start clean:

# %%
from app.models import Base


async def delete_all_rows(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(table.delete())
    finally:
        await engine.dispose()


run_async(delete_all_rows(nb.database_url))
run_async(count_rows(nb.database_url))

# %% [markdown]
# Other keys that miss in the same silent way: a string (`"get_session"`), a wrapper
# (`lambda: get_session()`), a function that `importlib.reload` (or `ipytest.force_reload`) recreated
# after the routes captured the old one. Importing the same function through another module is fine:
# it is still the same object.

# %%
from app.routes import animals as animal_routes

assert animal_routes.get_session is get_session
print("app.routes.animals.get_session is app.db.get_session:", animal_routes.get_session is get_session)

# %% [markdown]
# **Quiz 02.2.** The override is written to receive the factory it needs:
# `async def get_test_session(factory): ...`. What does `POST /animals` answer?
# - **a)** 422: FastAPI reads the override's parameters like a route's, and `factory` becomes a
#   required query parameter the request did not send.
# - **b)** 201: FastAPI passes `None` for parameters it cannot fill, and the override copes.
# - **c)** 500: calling the override raises `TypeError: missing 1 required positional argument`.
# - **d)** 201: the override is ignored because its signature differs from `get_session`'s.

# %% tags=["quiz-answer"]
answer("02.2", "a")

# %% [markdown]
# This request never reaches the database (validation fails first), so we can send it right here in
# the cell, on the kernel's own event loop:

# %%
async def get_test_session(factory):
    async with factory() as session:
        yield session


app.dependency_overrides[get_session] = get_test_session
try:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        response = await http.post("/animals", json={"name": "Rex", "species": "dog"})
finally:
    del app.dependency_overrides[get_session]

assert response.status_code == 422
print(response.status_code, response.json())

# %% [markdown]
# FastAPI analyses an override exactly like the dependency it replaces: every parameter is a request
# parameter or a sub-dependency. Hence `session_dependency(factory)` *closes over* the factory and
# returns a function with no parameters.
#
# The third mistake: an override that is never removed. `app` is one object for the whole test run,
# so its dictionary is global state. Two tests, run in this order: the first installs the override
# and forgets it; the second, a smoke test through the app as configured, inherits it.

# %%
async def test_1_creates_rex(sessions, bare_client):
    app.dependency_overrides[get_session] = session_dependency(sessions)  # never removed
    created = await bare_client.post("/animals", json={"name": "Rex", "species": "dog"})
    assert created.status_code == 201


async def test_2_lists_animals_through_the_app(bare_client, app_engine):
    listed = await bare_client.get("/animals")
    assert listed.status_code == 200


run_tests("test_1_creates_rex", "test_2_lists_animals_through_the_app", expect="failed", args=["--tb=line"])

# %% [markdown]
# The second test got the first test's session factory, bound to a connection that was rolled back
# and closed at the end of the first test: `ResourceClosedError: This Connection is closed`. In a
# bigger suite the symptom depends on the order tests run in, and a leaked override can also make
# tests *pass* that should fail. The dictionary still holds the leftover:

# %%
print(app.dependency_overrides)
app.dependency_overrides.clear()

# %% [markdown]
# **The fix.** Install overrides in a fixture, through `override_dependency` from
# `tests/isolation.py`: a context manager that sets the key and, at exit, puts back whatever was there
# before (usually: nothing). Same two tests, same order:

# %%
# %%ipytest
@pytest.fixture
def db_override(sessions):
    with override_dependency(app, get_session, session_dependency(sessions)):
        yield


async def test_1_creates_rex(db_override, bare_client):
    created = await bare_client.post("/animals", json={"name": "Rex", "species": "dog"})
    assert created.status_code == 201


async def test_2_lists_animals_through_the_app(bare_client, app_engine):
    listed = await bare_client.get("/animals")
    assert listed.json() == []  # Rex was rolled back with test 1

# %% [markdown]
# Restoring happens in a `finally`, so a test that fails while the override is installed leaves
# nothing behind either:

# %%
async def test_fails_while_overridden(sessions):
    with override_dependency(app, get_session, session_dependency(sessions)):
        assert 1 + 1 == 3


run_tests("test_fails_while_overridden", expect="failed", args=["--tb=line"])
assert app.dependency_overrides == {}
print("overrides after the failed test:", app.dependency_overrides)

# %% [markdown]
# Why not `app.dependency_overrides.clear()` after the `yield` of every fixture? It works in simple
# suites, but it removes *every* override, including those another fixture installed and still
# relies on during its own teardown, and it cannot put back an override a wider-scoped fixture had
# set. And if setup fails after the override is installed (say the lifespan crashes), pytest never
# runs the code after `yield`; a `with` block still exits. Restore what you changed, nothing more.
#
# **Overriding an outer dependency replaces its whole sub-tree.** A tiny app whose account endpoint
# depends on `get_account`, which itself depends on an API-key check. Override `get_account`, and the
# check never runs:

# %%
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException


def require_api_key(x_api_key: Annotated[str, Header()]) -> str:
    if x_api_key != "s3cret":
        raise HTTPException(401, "bad API key")
    return x_api_key


def get_account(api_key: Annotated[str, Depends(require_api_key)]) -> dict:
    return {"account": "shelter"}


accounts = FastAPI()


@accounts.get("/account")
def read_account(account: Annotated[dict, Depends(get_account)]) -> dict:
    return account

# %% [markdown]
# One request as the app is, one with `get_account` overridden; neither sends the header:

# %%
async with AsyncClient(transport=ASGITransport(app=accounts), base_url="http://test") as http:
    real = await http.get("/account")  # no X-API-Key header
    with override_dependency(accounts, get_account, lambda: {"account": "fake"}):
        overridden = await http.get("/account")  # still no header

print("real:      ", real.status_code, real.json()["detail"][0]["msg"], real.json()["detail"][0]["loc"])
print("overridden:", overridden.status_code, overridden.json())
assert (real.status_code, overridden.status_code) == (422, 200)

# %% [markdown]
# Without the override the missing header is rejected; with it, the request sails through. Fine when
# that is what you mean; a false sense of safety when the skipped sub-dependency was your
# authentication. Override the *leaf* you need to replace, or declare in the override's signature the
# sub-dependencies it must keep (they are then resolved as usual).
#
# ## 3 · The test client: httpx 0.28
#
# Many tutorials create the client with `AsyncClient(app=app, ...)`. httpx 0.28 removed that shortcut:

# %%
try:
    AsyncClient(app=app, base_url="http://test")
except TypeError as exc:
    error = exc
print(f"{type(error).__name__}: {error}")

# %% [markdown]
# The app now goes into a transport, as every fixture above does:
# `AsyncClient(transport=ASGITransport(app=app), base_url="http://test")`. The base URL only
# completes relative paths like `/health`; nothing resolves its host.
#
# ## 4 · The lifespan
#
# The shelter's lifespan (`app/main.py`) creates the `httpx.AsyncClient` the payment gateway uses
# and puts it on `app.state`; `/health` answers 503 until that has happened.

# %% [markdown]
# **Quiz 02.3.** A test uses `AsyncClient(transport=ASGITransport(app=app), base_url="http://test")`
# and nothing else. What does `GET /health` answer?
# - **a)** 200: `ASGITransport` sends the lifespan startup event before the first request.
# - **b)** 503: `ASGITransport` only sends HTTP requests; the lifespan never runs.
# - **c)** 200: the app falls back to `@app.on_event("startup")` handlers when no server runs.
# - **d)** It raises `RuntimeError`: FastAPI refuses requests before startup.

# %% tags=["quiz-answer"]
answer("02.3", "b")

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
# Starlette's `TestClient` runs the lifespan only inside a `with` block:

# %%
from fastapi.testclient import TestClient

without_with = TestClient(create_app()).get("/health")
with TestClient(create_app()) as test_client:
    inside_with = test_client.get("/health")

assert (without_with.status_code, inside_with.status_code) == (503, 200)
print("TestClient(app).get:        ", without_with.status_code)
print("with TestClient(app) as c: ", inside_with.status_code)

# %% [markdown]
# Older apps used `@app.on_event("startup")` instead of a lifespan. It is deprecated, and once an app
# has a `lifespan`, such handlers are silently skipped:

# %%
import warnings
from contextlib import asynccontextmanager

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
# ## 5 · `TestClient`, httpx2 and respx
#
# Starlette's `TestClient` is a *sync* client. Since Starlette 1.2 it is built on the `httpx2`
# package when that is installed (and warns, `StarletteDeprecationWarning`, when only `httpx` is).
# This repository pins both, on purpose:

# %%
import subprocess
import sys

import httpx

print("TestClient bases:", [f"{cls.__module__}.{cls.__name__}" for cls in TestClient.__mro__[1:]])
print("is an httpx.Client:", issubclass(TestClient, httpx.Client))
quiet = subprocess.run([sys.executable, "-W", "error", "-c", "import fastapi.testclient"], capture_output=True, text=True)
print("import fastapi.testclient with warnings as errors, exit code:", quiet.returncode)
assert quiet.returncode == 0, quiet.stderr

# %% [markdown]
# No warning: `TestClient` found `httpx2`. Why keep `httpx` too? The *app's* outgoing calls (the
# payment gateway) use `httpx`, and respx, the library that mocks HTTP at the transport level, patches
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
# `ASGITransport`, and `TestClient` (httpx2) stays available where a sync client is the point.
#
# Now the client the rest of the course uses, as in `tests/conftest.py`: the session override, a
# recording fake for the e-mail dependency, respx in front of the payment provider, and the lifespan.
# Every override goes through `override_dependency`.

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
# **`TestClient` and asyncpg.** `TestClient` runs the app on an event loop of its own, in another
# thread. Our `sessions` fixture opened its connection on the *test's* loop. Hand that connection to
# a `TestClient` request:

# %% tags=["nbval-ignore-output"]
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
# On SQLite it passes. On PostgreSQL it fails with
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
# ## 6 · Event-loop traps (pytest-asyncio 1.x)
#
# **`event_loop` is gone.** Tests and fixtures written for pytest-asyncio 0.x ask for the `event_loop`
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
# **ScopeMismatch.** A session-scoped async engine fixture without `loop_scope`. It leaves an open
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
# **Quiz 02.4.** A suite passes on SQLite. On PostgreSQL some tests fail with
# `got Future ... attached to a different loop`, and the next ones with
# `another operation is in progress`. What is the most likely cause?
# - **a)** A bug in asyncpg 0.32 that the SQLite driver does not share.
# - **b)** A pooled asyncpg connection opened on one event loop is used from another: for example a
#   session-scoped engine used by tests that each run on their own loop.
# - **c)** PostgreSQL is slower, and the tests time out while waiting for it.
# - **d)** A missing `await` in the test, which SQLite tolerates.

# %% tags=["quiz-answer"]
answer("02.4", "b")

# %% [markdown]
# The engine above now belongs to the session loop, with a connection in its pool. Two tests that
# each ask for a loop of their own:

# %% tags=["nbval-ignore-output"]
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
# On SQLite both pass. On PostgreSQL the first fails with `RuntimeError: Task <Task pending
# name='Task-...' coro=<test_first_on_its_own_loop() ...>> got Future <Future pending
# cb=[BaseProtocol._on_waiter_completed()]> attached to a different loop`, and the second, handed the
# same connection still stuck in its half-finished operation, with `sqlalchemy.exc.InterfaceError:
# (sqlalchemy.dialects.postgresql.asyncpg.InterfaceError) cannot perform operation: another operation
# is in progress`. aiosqlite runs each connection in a thread of its own and answers whichever loop
# awaits it, so **a SQLite-only suite hides this bug**: run your suite on the database you deploy.
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
# `app_engine` fixture disposes it at teardown.

# %% [markdown]
# ### Claim check: a session-wide `event_loop` fixture plus `AsyncClient(app=app)` is the way to test an async FastAPI app
#
# Seed 002, a popular question about a retry route, builds its tests on a setup found in many
# tutorials: a session-scoped `event_loop` fixture that creates a new loop, and a client fixture that
# passes the app straight to `httpx.AsyncClient`. The same two pieces, against the pinned versions
# (the route the seed tests is the subject of notebook 06; here only the setup):

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
async def seed_style_client():
    async with AsyncClient(app=app, base_url="http://test") as http:
        yield http


async def test_health_seed_style(seed_style_client):
    assert (await seed_style_client.get("/health")).status_code in (200, 503)


run_tests("test_health_seed_style", expect="failed", args=["--tb=line"])
print("loops made by the event_loop fixture:", len(loops_made))

# %% [markdown]
# **Verdict:** outdated, on both counts, with pytest-asyncio 1.5 and httpx 0.28. The client fixture
# fails with `TypeError: AsyncClient.__init__() got an unexpected keyword argument 'app'`. The
# `event_loop` fixture is worse: no error, no warning, and it never runs (zero loops made), because
# pytest-asyncio 1.x no longer looks for it; the loop it was meant to share is now chosen by
# `loop_scope`. Today's equivalent is what this notebook uses: loop scopes in `pyproject.toml`,
# `AsyncClient(transport=ASGITransport(app=app), base_url=...)`, and `LifespanManager` when the app
# has a lifespan.

# %%
del event_loop  # a module-level fixture would otherwise stay visible to every later run

# %% [markdown]
# ## 7 · `yield` dependencies and background tasks: what has run when the response arrives?

# %% [markdown]
# **Quiz 02.5.** A route uses a `yield` dependency declared with `Depends(dep, scope="function")`,
# another with the default scope, and adds a background task. In which order do these happen?
# - **a)** response sent → background task → both dependencies exit.
# - **b)** both dependencies exit → response sent → background task.
# - **c)** function-scoped dependency exits → response sent → background task → default-scoped
#   dependency exits.
# - **d)** function-scoped dependency exits → response sent → default-scoped dependency exits; the
#   background task runs later, after the test client has returned.

# %% tags=["quiz-answer"]
answer("02.5", "c")

# %% [markdown]
# A tiny app whose dependencies, route and background task each append a line to `steps`:

# %%
from fastapi import BackgroundTasks

steps = []


async def per_request():
    steps.append("enter  Depends(scope='request') (the default)")
    yield
    steps.append("exit   Depends(scope='request')")


async def per_function():
    steps.append("enter  Depends(scope='function')")
    yield
    steps.append("exit   Depends(scope='function')")


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
# default moved in 0.106 and back in 0.118: answers written in between describe other orders.)
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
# Common mistakes in the exercises: an override with parameters (`lambda gateway: ...`) gives a 422;
# installing the override *after* the request; respx routes written with the full URL while the
# `payments` fixture already has a `base_url` (both work, but a typo in the host silently misses);
# asserting `response.json()["detail"]` against a hand-typed message with a different final period.
# Exercise 1 also shows PITFALLS 14 from the useful side: replacing `get_payment_gateway` skips its
# body, so the fake needs no HTTP client at all.

# %% [markdown]
# ### Exercise 1: a declined payment, with a dependency override
#
# Replace the payment gateway (`get_payment_gateway` from `app.services.payments`) with
# `DecliningGateway` below for one request, and check that paying answers **402** with the detail
# `"Payment declined: insufficient funds."`, that the adoption is still `"reserved"`, and that the only
# e-mail sent is the reservation one.
#
# > Hint: `with override_dependency(app, get_payment_gateway, lambda: DecliningGateway()):` around the
# > `POST /adoptions/{id}/pay`; `GET /adoptions/{id}` reads the status; `notifier.sent` holds
# > `(to, subject, body)` tuples.

# %%
from app.services.payments import PaymentDeclined, get_payment_gateway


class DecliningGateway:
    async def charge(self, *, amount_cents: int, reference: str):
        raise PaymentDeclined("insufficient funds")

# %%
# %%ipytest
async def test_declined_payment_keeps_the_reservation(client, notifier):
    adoption_id = await create_reservation(client)
    # BEGIN SOLUTION
    with override_dependency(app, get_payment_gateway, lambda: DecliningGateway()):
        response = await client.post(f"/adoptions/{adoption_id}/pay")

    assert response.status_code == 402
    assert response.json()["detail"] == "Payment declined: insufficient funds."
    assert (await client.get(f"/adoptions/{adoption_id}")).json()["status"] == "reserved"
    assert [subject for _, subject, _ in notifier.sent] == ["Rex is reserved for you"]
    # END SOLUTION

# %% [markdown]
# ### Exercise 2: the provider is down, one level deeper
#
# This time keep the real gateway and fail the *network*: make the provider's `POST /v1/charges`
# raise `httpx.ConnectError` in the `payments` respx router. Check that paying answers **502** with
# the detail `"Payment failed, please retry later (payment provider unreachable: ConnectError)."` and
# that the adoption is still `"reserved"`.
#
# > Hint: `payments.post("/v1/charges").mock(side_effect=httpx.ConnectError("refused"))`; the router
# > already knows the provider's base URL. The lifespan's `httpx.AsyncClient` is what respx intercepts,
# > so this only works with the `client` fixture, which runs the lifespan.

# %%
# %%ipytest
async def test_unreachable_provider_answers_502(client, payments):
    adoption_id = await create_reservation(client)
    # BEGIN SOLUTION
    payments.post("/v1/charges").mock(side_effect=httpx.ConnectError("refused"))

    response = await client.post(f"/adoptions/{adoption_id}/pay")

    assert response.status_code == 502
    assert response.json()["detail"] == "Payment failed, please retry later (payment provider unreachable: ConnectError)."
    assert (await client.get(f"/adoptions/{adoption_id}")).json()["status"] == "reserved"
    # END SOLUTION

# %% [markdown]
# Both tests left nothing behind, and no override outlived its test:

# %%
assert app.dependency_overrides == {}
counts = run_async(count_rows(nb.database_url))
assert counts == {"adopters": 0, "animals": 0, "adoptions": 0}
print("overrides:", app.dependency_overrides, "rows:", counts)

# %% [markdown] tags=["key-points"]
# ## Key points
#
# - `app.dependency_overrides[get_session] = replacement`: the key is the very function object the
#   routes passed to `Depends`. Any other key (a copy, a wrapper, a string, a reloaded function) is
#   ignored without a word, and the app's own database gets the writes.
# - The replacement takes no parameters (close over what it needs): FastAPI treats its parameters as
#   request parameters, and a missing one is a 422.
# - The dictionary is global: install overrides with `override_dependency` (restores the previous
#   value, even when the test fails), in fixtures. Overriding an outer dependency skips its whole
#   sub-tree, authentication included.
# - httpx 0.28: `AsyncClient(transport=ASGITransport(app=app), base_url="http://test")`;
#   `AsyncClient(app=...)` is a `TypeError`.
# - `ASGITransport` never runs the lifespan: wrap the app in `LifespanManager` (or use
#   `with TestClient(app)`). `@app.on_event` is deprecated and skipped when a `lifespan` is given.
# - The app calls out with `httpx` so respx can mock it; `TestClient` uses `httpx2`, which respx does
#   not see. `TestClient` runs the app on its own loop: nothing opened on the test's loop may cross
#   over, which with asyncpg means "attached to a different loop".
# - pytest-asyncio 1.x: no `event_loop` fixture; give session-scoped async fixtures a
#   `loop_scope`; keep pooled asyncpg engines and tests on the same loop (or use `NullPool`). SQLite
#   hides loop bugs: test on PostgreSQL too.
# - When the test client returns, `yield` dependencies have exited and background tasks have run:
#   assert their effects right away.
#
# **Next:** [04 · Rollback fixtures](04_rollback_fixtures.ipynb)
