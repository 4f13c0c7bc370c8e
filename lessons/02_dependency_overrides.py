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
# # 02 · Dependency overrides
#
# Every route of the sample app gets its database session from one dependency, `get_session`. A test
# that wants the app to write into a transaction it can roll back must swap that dependency for its
# own. This notebook shows the one way that works and the three ways it goes wrong without a sound.

# %% [markdown] tags=["overview"]
# **Teaching:** 35 min · **Exercises:** 12 min
#
# **Prerequisites:** 00 · Start here, 01 · Naive tests and why they flake
#
# **You will be able to**
# - replace the app's session dependency in a test with `app.dependency_overrides`, keyed by the very
#   function the routes use;
# - spot the three ways an override goes silently wrong: a key that is another function, an override
#   with parameters (a 422), an override that is never removed;
# - install overrides that are always restored (`override_dependency`), and say what overriding an
#   outer dependency skips;
# - replace an external service (the payment gateway) for one request, and check what the route does
#   with a declined card.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("02")
nb

# %% [markdown] tags=["instructor"]
# **Timing (35 + 12 min).** The override done right: 8 min. The three silent mistakes and
# `override_dependency`: 12 min. Claim check on `clear()`: 5 min. Outer dependencies (deep dive): 5 min. The payment fixtures: 5 min.
# Quizzes 4 min, the exercise 8 min.
#
# Quizzes 02.1, 02.3 and 02.4 work well as a show of hands before the next cell runs: most people
# expect FastAPI to complain about a key that matches no route (it never does). The lifespan, the
# test clients and the event-loop traps that used to be the second half of this notebook are now
# <!-- ref:lifespan -->lesson 03<!-- /ref -->.

# %% [markdown]
# ## 1 · The override, done right
# <!-- topic:dependency-override -->
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
# ends. FastAPI's hook for that is [`app.dependency_overrides`](../GLOSSARY.md#dependency-override), a plain dictionary from "the dependency
# a route declared" to "what to call instead". It starts empty:

# %%
app.dependency_overrides

# %% [markdown]
# The fixtures this notebook builds on. `sessions` comes from `tests/isolation.py`: a factory of
# sessions that all live inside one transaction that is rolled back after the test (<!-- ref:rollback-fixture -->lesson 05<!-- /ref -->
# takes it apart line by line; here it is a black box). `bare_client` calls the app in-process, with
# nothing else: no override, no [lifespan](../GLOSSARY.md#lifespan). `app_engine` is the app's *own* engine, for the tests that
# (by mistake) reach it; it is disposed at teardown, because its pooled connections belong to the [event loop](../GLOSSARY.md#loop-scope)
# of one pytest run (<!-- ref:event-loop-scopes -->lesson 04<!-- /ref --> shows what happens when the next run reuses them).

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
# How FastAPI picks what to call, for every `Depends(...)` of a route, at every request:
#
# ```mermaid
# flowchart LR
#     route["POST /animals declares Depends(get_session)"] --> lookup{"is get_session a key of app.dependency_overrides?"}
#     lookup -- yes --> test["the test's function: a session inside the test's transaction, rolled back"]
#     lookup -- no --> real["app.db.get_session: a session on the app's own engine, committed for good"]
# ```
#
# The lookup is a plain dictionary lookup, by the function object itself. Everything in the next
# section follows from that.
#
# ## 2 · Three ways to get it wrong
# <!-- topic:override-mistakes -->

# %% [markdown]
# **Quiz 02.1.** A `conftest.py` defines its own `async def get_session()`, with exactly the body of
# `app.db.get_session`, and installs `app.dependency_overrides[get_session] = ...` with *that* local
# function as the key. What happens when a test calls `POST /animals`?
# - **a)** The override is used: FastAPI matches dependencies by their qualified name.
# - **b)** FastAPI raises `KeyError` at the first request: the key is not a dependency of any route.
# - **c)** The override is ignored without a word; the route uses the app's own session and engine instead.
# - **d)** The request fails with 422: the override does not match the declared dependency.

# %% tags=["quiz-answer"]
answer("02.1", "c")

# %% [markdown]
# Let us run it. `lookalike` is `get_session` copied and pasted under another name (the name does
# not matter: a copy called `get_session` in a [`conftest.py`](../GLOSSARY.md#conftestpy) behaves the same). Same code, two objects:

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
# (`lambda: get_session()`), a `get_session` re-defined in a notebook cell (a new object, like the
# look-alike above), a function that `importlib.reload` (or `ipytest.force_reload`) recreated
# after the routes captured the old one. Importing the same function through another module, or under
# another name, is fine: it is still the same object, so it is the same key.

# %%
from app.db import get_session as renamed
from app.routes import animals as animal_routes

print("app.routes.animals.get_session is app.db.get_session:", animal_routes.get_session is get_session)
print("get_session imported as renamed is app.db.get_session:", renamed is get_session)
assert animal_routes.get_session is get_session and renamed is get_session

# %% [markdown]
# **Quiz 02.2.** The override is written to receive the factory it needs:
# `async def get_test_session(factory): ...`. What does `POST /animals` answer?
# - **a)** 422: FastAPI reads the override's parameters like a route's, and `factory` becomes a
#   required query parameter the request did not send.
# - **b)** 201: FastAPI passes `None` for parameters it cannot fill, and the override copes.
# - **c)** 500: FastAPI calls the override with no arguments, the call raises
#   `TypeError: get_test_session() missing 1 required positional argument: 'factory'`, and the app crashes.
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
# and forgets to remove it; the second is a smoke test through the app as configured.

# %%
async def test_1_creates_rex(sessions, bare_client):
    app.dependency_overrides[get_session] = session_dependency(sessions)  # never removed
    created = await bare_client.post("/animals", json={"name": "Rex", "species": "dog"})
    assert created.status_code == 201


async def test_2_lists_animals_through_the_app(bare_client, app_engine):
    listed = await bare_client.get("/animals")
    assert listed.status_code == 200

# %% [markdown]
# **Quiz 02.3.** We run `test_1_creates_rex`, then `test_2_lists_animals_through_the_app`. What
# happens to the second test?
# - **a)** It passes with an empty list: pytest gives every test a fresh `app`.
# - **b)** It passes and lists Rex: the override is still there, so it reads through the first test's
#   transaction, which stays open.
# - **c)** It fails with 422: the leftover override's parameters become query parameters.
# - **d)** It fails with a SQLAlchemy error: it gets the first test's sessions, on a closed connection.

# %% tags=["quiz-answer"]
answer("02.3", "d")

# %%
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
# ### Claim check: `app.dependency_overrides.clear()` after the `yield` undoes a test's override
#
# "Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks" (2025, on a blog
# about upgrading Python applications) installs its session override in the client fixture and ends
# that fixture with `app.dependency_overrides.clear()`; its table of common mistakes gives the same call as
# the cure for an override that was not cleared. Two situations a real suite meets. First, another
# fixture, wider-scoped, has installed an override of its own (a fake notifier for the whole module):

# %%
from app.services.notifications import get_notifier
from tests.fakes import RecordingNotifier


@pytest.fixture(scope="module")
def module_notifier():
    with override_dependency(app, get_notifier, lambda: RecordingNotifier()):
        yield


@pytest.fixture
def clearing_override(sessions):
    app.dependency_overrides[get_session] = session_dependency(sessions)
    yield
    app.dependency_overrides.clear()  # as in the blog post


async def test_first_clears(module_notifier, clearing_override, bare_client):
    assert (await bare_client.get("/animals")).status_code == 200


async def test_second_expects_the_module_fake(module_notifier):
    assert get_notifier in app.dependency_overrides, "the module's fake notifier is gone"


run_tests("test_first_clears", "test_second_expects_the_module_fake", expect="failed", args=["--tb=line"])

# %% [markdown]
# The first test's `clear()` also removed the module's fake notifier, which the second test (and the
# rest of the module) still relied on. Second situation: the fixture's set-up fails after the
# override is installed (here a stand-in for a lifespan that crashes on start-up):

# %%
@pytest.fixture
def override_then_fail(sessions):
    app.dependency_overrides[get_session] = session_dependency(sessions)
    raise RuntimeError("the lifespan failed to start")
    yield
    app.dependency_overrides.clear()


def test_never_starts(override_then_fail):
    pass


run_tests("test_never_starts", expect="failed", args=["--tb=line"])
leaked = get_session in app.dependency_overrides
print("override still installed after the run:", leaked)
assert leaked
app.dependency_overrides.clear()

# %% [markdown]
# pytest never runs the code after the `yield` of a fixture whose set-up raised, so the override
# outlived the run. **Verdict:** <!-- verdict:overrides-clear-undoes-override -->half true<!-- /verdict -->. In the post's one-fixture suite `clear()` does undo the
# override, but it is a blunt tool: it removes overrides other fixtures still need, and it does not
# run at all when the fixture fails before its `yield`. Restore exactly what you changed, in a `with`
# block that exits whatever happens: `override_dependency`.
#
# ### Overriding an outer dependency replaces its whole sub-tree (deep dive)
#
# A tiny app whose account endpoint
# depends on `get_account`, which itself depends on an API-key check (a required `X-API-Key` header):

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
# **Quiz 02.4.** The next cell sends `GET /account` twice without any `X-API-Key` header: once as the
# app is, once with `get_account` overridden by `lambda: {"account": "fake"}`. What do the two
# requests answer?
# - **a)** 401 and 401: the key check still guards the overridden dependency.
# - **b)** 422 and 200: the missing header is rejected, until the override removes the check.
# - **c)** 422 and 422: a header declared by a dependency stays required.
# - **d)** 401 and 200.

# %% tags=["quiz-answer"]
answer("02.4", "b")

# %% jupyter={"source_hidden": true}
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

# %% [markdown]
# ## 3 · Replacing an external service
# <!-- topic:replace-external-service -->
#
# The same mechanism replaces anything a route receives through `Depends`, not only the session. The
# fixtures of the exercise below, as in `tests/conftest.py`: a recording fake for the e-mail
# dependency, a [respx](../GLOSSARY.md#respx) router in front of the payment provider so that no test ever reaches the
# network (<!-- ref:respx-testclient -->lesson 03<!-- /ref --> explains respx and the lifespan), and a client that joins the test's transaction.
# Every override goes through `override_dependency`.

# %%
import respx
from asgi_lifespan import LifespanManager

from app.config import get_settings


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


# %% [markdown] tags=["instructor"]
# Common mistakes in the exercise: an override with parameters (`lambda gateway: ...`) gives a 422;
# installing the override *after* the request; a weak assertion (`>= 400`, or the status code alone):
# the check names the broken route it did not catch. Replacing `get_payment_gateway` skips its body
# (the outer-dependency effect of section 2, from its useful side), so the fake needs no HTTP client.

# %% [markdown]
# ### Exercise 1: a declined payment, with a dependency override
#
# Replace the payment gateway (`get_payment_gateway` from `app.services.payments`) with
# `DecliningGateway` below for one request, and check that paying answers **402** with the detail
# `"Payment declined: insufficient funds."`, that the adoption is still `"reserved"`, and that the only
# e-mail sent is the reservation one. The cell's last line runs your test against the real app (it must
# pass) and against [broken versions](../GLOSSARY.md#broken-version) of the pay route (it must fail against each of them).
#
# > Hint: `with override_dependency(app, get_payment_gateway, lambda: DecliningGateway()):` around the
# > `POST /adoptions/{id}/pay`; `GET /adoptions/{id}` reads the status; `notifier.sent` holds
# > `(to, subject, body)` tuples.

# %%
from app.services.payments import PaymentDeclined, get_payment_gateway
from course.checks import l02


class DecliningGateway:
    async def charge(self, *, amount_cents: int, reference: str):
        raise PaymentDeclined("insufficient funds")


# %%
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


l02.check_declined_payment()  # your test against the real app, then against broken pay routes

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
# - FastAPI 0.165: [Testing Dependencies with Overrides](https://fastapi.tiangolo.com/advanced/testing-dependencies/)
#   and [Sub-dependencies](https://fastapi.tiangolo.com/tutorial/dependencies/sub-dependencies/).
# - SQLAlchemy 2.1: [Joining a Session into an External Transaction (such as for test suites)](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites),
#   the recipe behind `tests/isolation.py` (<!-- ref:isolation-helper -->lesson 05<!-- /ref -->).
# - respx 0.23: [Guide](https://lundberg.github.io/respx/guide/), used by the `payments` fixture.

# %% [markdown] tags=["key-points"]
# ## Key points
#
# - `app.dependency_overrides[get_session] = replacement`: the key is the very function object the
#   routes passed to `Depends`. Any other key (a copy, a wrapper, a string, a function re-defined in a
#   cell or reloaded) is ignored without a word, and the app's own database gets the writes. Importing
#   the same function under another name (`import ... as`) is the same object and works.
# - The replacement takes no parameters (close over what it needs): FastAPI treats its parameters as
#   request parameters, and a missing one is a 422.
# - The dictionary is global: install overrides with `override_dependency` (restores the previous
#   value, even when the test fails), in fixtures. `clear()` after a `yield` also removes overrides
#   other fixtures still need, and never runs when the fixture's set-up fails.
# - Overriding an outer dependency skips its whole sub-tree, authentication included; override the
#   leaf you mean to replace.
# - An override replaces external services too (the payment gateway): assert the status, the exact
#   detail, the state in the database and the side effects, or a broken route slips through.
#
# **Next:** [03 · The test client and the lifespan](03_lifecycle.ipynb)
