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
# # 12 · Mocking external services and background tasks

# %% [markdown] tags=["overview"]
# **Teaching:** 33 min · **Exercises:** 12 min
#
# **Prerequisites:** 02 · Dependency overrides, 05 · Rollback fixtures
#
# **You will be able to**
# - mock the payment provider at the HTTP transport with respx, so the app's own gateway code runs,
#   and assert on the request it sends and on how it handles 201, 402, 500 and timeouts;
# - replace the gateway with a fake through `app.dependency_overrides`, and say which bugs such a
#   test cannot see;
# - use `unittest.mock.patch` on the right target, with `autospec=True`, and know what `AsyncMock`
#   does with `return_value`;
# - test `BackgroundTasks`: when they have run, what a failing one does to your test, and that a
#   failed request sends nothing.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("12", traceback="line")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("12")` has pointed `DATABASE_URL` at this notebook's own,
# empty database, so importing `app` now is safe. Failing tests are reported in one line each
(`traceback="line"`).

# %%
import inspect
import json
from unittest.mock import ANY, AsyncMock, MagicMock, create_autospec, patch

import httpx
import pytest
import respx
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import get_settings
from app.db import get_session
from app.main import app as shelter_app
from app.models import Adopter, Adoption, Animal
from app.services import payments as payments_module
from app.services.notifications import get_notifier
from app.services.payments import Charge, PaymentGateway, get_payment_gateway
from course.checks import l12
from tests.fakes import RecordingNotifier
from tests.isolation import isolated_async_sessions, override_dependency, session_dependency

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~33 min teaching + 12 min exercise and quizzes).** Part 1
# (~5 min): read the gateway code aloud, it is what the three techniques disagree about. Part 2
# (~8 min) is respx; part 3 (~6 min) the fake, whose failure to see the bug is the key moment: ask
# the room to predict the result of quiz 08.2 before running it. Part 4 (~10 min) is
# `unittest.mock` and the blog post's `patch` advice ("Why `autospec`" is a deep dive of ~2 min);
# part 5 (~4 min) background tasks. Nothing here depends on the database backend: the outputs are
# the same on SQLite and PostgreSQL. If a cell hangs on PostgreSQL, an interrupted run left a
# transaction open: restart the kernel and run from the top.

# %% [markdown]
# ## 1. The gateway: what we want to replace
#
# Paying an adoption fee calls an external payment provider over HTTP. The app never builds that HTTP
# client in a route: the [lifespan](../GLOSSARY.md#lifespan) creates one `httpx.AsyncClient`, and the dependency
# `get_payment_gateway` wraps it in a `PaymentGateway` for each request:

# %%
print(inspect.getsource(get_payment_gateway))

# %% [markdown]
# The gateway turns the provider's answers into two exceptions that the route maps to 402 and 502:

# %%
print(inspect.getsource(PaymentGateway.charge))

# %% [markdown]
# There are three places to cut the wire, each replacing a different amount of real code:
#
# | replace | with | the app's `charge()` runs? |
# |---|---|---|
# | the network | [respx](../GLOSSARY.md#respx), at httpx's transport | yes: JSON, headers, status handling |
# | `get_payment_gateway` | a fake gateway, via [`dependency_overrides`](../GLOSSARY.md#dependency-override) | no |
# | `PaymentGateway.charge` | `unittest.mock.patch` | no |
#
# The fixtures, as in `tests/conftest.py`: rollback-isolated sessions (<!-- ref:rollback-fixture -->lesson 05<!-- /ref -->), a recording notifier
# instead of the mail sender, respx for the provider, and a client that runs the app's lifespan (so
# the gateway gets the lifespan's HTTP client). `reservation` reserves Luna the cat (fee EUR 90) for
# Ana through the API.

# %%
@pytest.fixture
async def sessions():
    engine = create_async_engine(nb.database_url)
    async with isolated_async_sessions(engine) as factory:
        yield factory
    await engine.dispose()


@pytest.fixture
def notifier():
    fake = RecordingNotifier()  # remembers (to, subject, body) instead of sending
    with override_dependency(shelter_app, get_notifier, lambda: fake):
        yield fake


@pytest.fixture
def payments():
    """The provider, mocked at httpx's transport. Any request without a matching route fails."""
    with respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False) as router:
        yield router

# %%
@pytest.fixture
async def client(sessions, notifier, payments):
    with override_dependency(shelter_app, get_session, session_dependency(sessions)):
        async with LifespanManager(shelter_app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http


@pytest.fixture
async def reservation(client):
    animal = (await client.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    adopter = (await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()
    response = await client.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": adopter["id"]})
    assert response.status_code == 201
    return response.json()

# %% [markdown]
# ## 2. Mock the network: respx
# <!-- topic:mock-gateway -->
#
# respx replaces httpx's transport: the lifespan's client, the gateway and its error handling are all
# the real ones; only the bytes never leave the process. A test registers the provider's answer, calls
# the app, and then reads the request the app really sent (ids vary on PostgreSQL, so we compare the
# reference with the id we got back, never a literal).

# %%
# %%ipytest

async def test_paying_charges_the_provider_and_completes_the_adoption(client, reservation, payments, notifier):
    charge = payments.post("/v1/charges").respond(201, json={"id": "ch_123", "amount": 9000})

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert (response.status_code, response.json()["status"]) == (200, "paid")
    sent = charge.calls.last.request
    assert json.loads(sent.content) == {"amount": 9000, "currency": "EUR", "reference": f"adoption-{reservation['id']}"}
    assert sent.headers["Authorization"] == "Bearer test-key"
    assert notifier.sent[-1] == ("ana@example.org", "Welcome home, Luna!", "We received EUR 90.00 (payment ch_123).")

# %% [markdown]
# The provider's failures, the same way: a 500 and a connection timeout (respx raises the exception
# in place of an answer) must both become our 502, and leave the adoption reserved.

# %%
# %%ipytest

@pytest.mark.parametrize(
    "provider, reason",
    [
        (httpx.Response(500), "payment provider answered HTTP 500"),
        (httpx.ConnectTimeout("timed out"), "payment provider unreachable: ConnectTimeout"),
    ],
    ids=["500", "timeout"],
)
async def test_provider_failure_is_502(client, reservation, payments, sessions, provider, reason):
    payments.post("/v1/charges").mock(side_effect=[provider])  # each call takes the next item: answer or exception

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert (response.status_code, response.json()) == (502, {"detail": f"Payment failed, please retry later ({reason})."})
    async with sessions() as session:
        assert (await session.get(Adoption, reservation["id"])).status == "reserved"

# %% [markdown]
# What if a test forgets to register the provider's answer, or the app calls a URL nobody expected?
#
# **Quiz 12.1.** The `payments` fixture has no route for `POST /v1/charges`, and the test pays. What
# happens?
# - **a)** The request goes out to `payments.example.com` for real.
# - **b)** respx answers `200` with an empty body; the test passes or fails depending on its asserts.
# - **c)** The gateway catches the failure as an `httpx.HTTPError`: the app answers 502.
# - **d)** The test fails with an error that names the unmocked request.

# %% tags=["quiz-answer"]
answer("12.1", "d")

# %% jupyter={"source_hidden": true}
async def test_paying_without_telling_respx_what_to_answer(client, reservation):
    response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert response.status_code == 200


run_tests("test_paying_without_telling_respx_what_to_answer", expect="failed")

# %% [markdown]
# respx's default `assert_all_mocked=True` raises `AllMockedAssertionError` for any request that
# matches no route. It is an `AssertionError`, not an `httpx.HTTPError`, so the gateway's
# `except httpx.HTTPError` does not swallow it into a polite 502: it leaves the route, and
# [`ASGITransport`](../GLOSSARY.md#asgi-transport) re-raises it in the test. (We set `assert_all_called=False` in the fixture, so a
# route that is registered but never called is not an error.)

# %% [markdown]
# ### Exercise 1: a declined card
#
# The provider answers `402` with `{"reason": "card expired"}`. Write the test: our API must answer
# `402` with `{"detail": "Payment declined: card expired."}`, the adoption must stay `reserved`, and
# no "Welcome home" mail may be sent (only the reservation mail). The last line of the exercise cell runs your
# test against the real app (it must pass) and against [broken versions](../GLOSSARY.md#broken-version) of the payment path (it
# must fail for each), and names any broken version it lets through.
#
# > Hint: `payments.post("/v1/charges").respond(402, json=...)`; read the adoption back with
# > `async with sessions() as session: await session.get(Adoption, reservation["id"])`;
# > `notifier.sent` is a list of `(to, subject, body)` tuples.

# %%
async def test_declined_payment_is_402_and_changes_nothing(client, reservation, payments, sessions, notifier):
    # BEGIN SOLUTION
    payments.post("/v1/charges").respond(402, json={"reason": "card expired"})

    response = await client.post(f"/adoptions/{reservation['id']}/pay")

    assert (response.status_code, response.json()) == (402, {"detail": "Payment declined: card expired."})
    async with sessions() as session:
        assert (await session.get(Adoption, reservation["id"])).status == "reserved"
    assert [subject for _, subject, _ in notifier.sent] == ["Luna is reserved for you"]
    # END SOLUTION


l12.check_declined_card_test(shelter_app)

# %% [markdown]
# ## 3. Override the dependency: a fake gateway
#
# A fake is a small class with the gateway's method, installed with `dependency_overrides` under the
# key the route uses, `get_payment_gateway` (<!-- ref:replace-external-service -->lesson 02<!-- /ref -->). No HTTP at all: fast and simple.

# %%
class FakeGateway:
    def __init__(self):
        self.charges: list[tuple[int, str]] = []

    async def charge(self, *, amount_cents: int, reference: str) -> Charge:
        self.charges.append((amount_cents, reference))
        return Charge(id="ch_fake", amount_cents=amount_cents)


@pytest.fixture
def fake_gateway():
    fake = FakeGateway()
    with override_dependency(shelter_app, get_payment_gateway, lambda: fake):
        yield fake

# %% [markdown]
# Now a bug. Imagine a colleague edits `PaymentGateway.charge` and sends the amount under the wrong
# name, `amount_cents` (the provider expects `amount`). We simulate that release with a subclass
# whose `charge()` sends that body (and keeps only the happy path of the real method, all this test
# needs), installed where `get_payment_gateway` looks the class up when it runs: the module
# `app.services.payments`.

# %%
class GatewayWithABug(PaymentGateway):
    async def charge(self, *, amount_cents: int, reference: str) -> Charge:
        response = await self._client.post(
            f"{self._base_url}/v1/charges",
            json={"amount_cents": amount_cents, "currency": "EUR", "reference": reference},  # <- the bug
            headers={"Authorization": f"Bearer {self._api_key}", "Idempotency-Key": reference},
        )
        body = response.json()
        return Charge(id=body["id"], amount_cents=body["amount"])


@pytest.fixture(params=["as shipped", "with a bug"])
def release(request, monkeypatch):
    if request.param == "with a bug":
        monkeypatch.setattr(payments_module, "PaymentGateway", GatewayWithABug)

# %% [markdown]
# The same payment test, written both ways, run against both releases. (The key list is compared
# sorted, so the failure message is the same on every run.)
#
# **Quiz 12.2.** Which of the four runs fail?
# - **a)** None: both tests check it.
# - **b)** Both "with a bug" runs.
# - **c)** Only the respx test "with a bug".
# - **d)** Only the fake test "with a bug".

# %% tags=["quiz-answer"]
answer("12.2", "c")

# %% jupyter={"source_hidden": true}
async def test_pay_with_respx(client, reservation, payments, release):
    charge = payments.post("/v1/charges").respond(201, json={"id": "ch_123", "amount": 9000})
    assert (await client.post(f"/adoptions/{reservation['id']}/pay")).json()["status"] == "paid"
    assert sorted(json.loads(charge.calls.last.request.content)) == ["amount", "currency", "reference"]


async def test_pay_with_a_fake(client, reservation, fake_gateway, release):
    assert (await client.post(f"/adoptions/{reservation['id']}/pay")).json()["status"] == "paid"
    assert fake_gateway.charges == [(9000, f"adoption-{reservation['id']}")]


run_tests("test_pay_with_respx", "test_pay_with_a_fake", expect="failed")

# %% [markdown]
# Only the respx test sees the wrong field name. The fake test cannot: with the dependency overridden,
# no `PaymentGateway` (buggy or not) is ever built, so it checks the route's use of the gateway and
# nothing below. Fakes are fine for tests about the route's logic; keep at least the respx tests for the
# code that talks to the provider.

# %% [markdown]
# ## 4. `unittest.mock.patch`, `autospec` and `AsyncMock`
#
# ### Claim check: patch the payment call with `unittest.mock.patch` and give it a `return_value`
#
# Source: cmdragon, ["如何用FastAPI玩转多模块测试与异步任务，让代码不再"闹脾气"？" ("Multi-module tests
# and async tasks in FastAPI")](https://blog.cmdragon.cn/posts/ddbfa0447a5d0d6f9af12e7a6b206f70/),
# blog.cmdragon.cn, 2025-09-10. In our words: in a FastAPI test, replace the payment service with
# `patch` on the module's `charge` function and make its `return_value` a success dictionary. Two
# questions: where to patch, and what a `return_value` means for an `async` method.
#
# Where first. `patch` replaces a name in one namespace; it helps only if the code under test looks the
# name up *there, at call time*. The route got `get_payment_gateway` once, when `Depends(...)` was
# evaluated at import: patching that function in either module changes nothing.

# %%
@pytest.mark.parametrize("target", ["app.services.payments.get_payment_gateway", "app.routes.adoptions.get_payment_gateway"])
async def test_patch_the_dependency_function(client, reservation, target):
    with patch(target, return_value=FakeGateway()):
        response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert response.status_code == 200


run_tests("test_patch_the_dependency_function", expect="failed")

# %% [markdown]
# Both patches are ignored: the real gateway ran and sent a real request, which respx stopped. For a
# FastAPI dependency, `dependency_overrides` is the way. A method is different: `gateway.charge` is
# looked up on the class at every call, so `PaymentGateway.charge` is a good target.
#
# **Quiz 12.3.** With `patch("app.services.payments.PaymentGateway.charge") as mock_charge` and
# `mock_charge.return_value = {"status": "success"}`, the route runs
# `charge = await gateway.charge(...)` and then reads `charge.id`. What happens?
# - **a)** `await` fails: a dictionary is not awaitable.
# - **b)** `charge` is the plain dictionary, and `charge.id` fails.
# - **c)** The payment succeeds: the mock answers every attribute.
# - **d)** `patch` refuses to replace an `async` method.

# %% tags=["quiz-answer"]
answer("12.3", "b")

# %% jupyter={"source_hidden": true}
async def test_patch_with_a_dictionary_as_return_value(client, reservation):
    with patch("app.services.payments.PaymentGateway.charge") as mock_charge:
        print(type(mock_charge).__name__)
        mock_charge.return_value = {"status": "success"}
        response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert response.status_code == 200


run_tests("test_patch_with_a_dictionary_as_return_value", expect="failed", args=["-s"])

# %% [markdown]
# Since Python 3.8, `patch` sees that `charge` is an `async def` and makes an [`AsyncMock`](../GLOSSARY.md#asyncmock): its
# `return_value` is what `await` gives back. So the "coroutine problem" is gone, and the bug is the
# shape: our route needs a `Charge`, not the post's dictionary. The coroutine problem still bites when
# you hand `patch` a plain `MagicMock` yourself (or on Python < 3.8):

# %%
with patch.object(PaymentGateway, "charge", MagicMock(return_value=Charge("ch_1", 9000))):
    async with httpx.AsyncClient() as http:
        try:
            await PaymentGateway(http, "https://payments.example.com", "key").charge(amount_cents=9000, reference="r")
        except TypeError as exc:
            print("TypeError:", exc)

# %% [markdown]
# Right target, right shape, and [`autospec=True`](../GLOSSARY.md#autospec) (next section explains why): the test passes, and the
# mock can say how it was awaited. An autospecced method records `self` too, hence the `ANY`.

# %%
# %%ipytest

async def test_patch_the_method_with_autospec(client, reservation):
    with patch.object(PaymentGateway, "charge", autospec=True, return_value=Charge("ch_1", 9000)) as mock_charge:
        response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert response.json()["payment_id"] == "ch_1"
    mock_charge.assert_awaited_once_with(ANY, amount_cents=9000, reference=f"adoption-{reservation['id']}")

# %% [markdown]
# **Verdict:** <!-- verdict:patch-payment-return-value -->patching is a fair tool, with three corrections for our app<!-- /verdict -->. Patch where the name is
# looked up when the code runs: a method on its class works; a FastAPI dependency function does not,
# because `Depends` holds the original (use `dependency_overrides`). On Python 3.8+ `patch` makes an
# `AsyncMock` for an `async def`, so `return_value` is the awaited result, no coroutine needed, but it
# must have the real shape (`Charge`, not a dictionary). And like the fake, it skips the HTTP code.

# %% [markdown]
# ### Why `autospec` (deep dive)
#
# A plain mock accepts any method name and any arguments. Two small bugs in code that uses a gateway:
# a misspelled method, and a keyword the real method does not take.

# %%
async def pay_typo(gateway):
    return await gateway.charge_card(amount_cents=9000, reference="adoption-1")


async def pay_wrong_keyword(gateway):
    return await gateway.charge(amount=9000, reference="adoption-1")


for pay in [pay_typo, pay_wrong_keyword]:
    print(pay.__name__, "with AsyncMock():", type(await pay(AsyncMock())).__name__, "returned, no error")

# %% [markdown]
# Both "work" against an `AsyncMock()`: every attribute is another mock, every call is accepted. With
# `create_autospec` the mock copies the real class: unknown attributes and wrong signatures raise the
# errors production would raise, and `charge` is still an `AsyncMock`, because it is `async def`.

# %%
errors = []
for pay in [pay_typo, pay_wrong_keyword]:
    gateway = create_autospec(PaymentGateway, instance=True)
    try:
        await pay(gateway)
    except (AttributeError, TypeError) as exc:
        errors.append(type(exc).__name__)
        print(f"{pay.__name__} with autospec: {type(exc).__name__}: {exc}")
print("charge is an", type(gateway.charge).__name__)
assert errors == ["AttributeError", "TypeError"]

# %% [markdown] tags=["instructor"]
# **Instructor notes (parts 3-4).** Common mistakes: overriding `get_payment_gateway` with a function
# that takes arguments (they become request parameters, <!-- ref:override-mistakes -->lesson 02<!-- /ref -->'s 422); patching the function that
# was passed to `Depends` and wondering why nothing changes (the claim check); forgetting that an
# autospecced method records `self`, so `assert_awaited_once_with(amount_cents=...)` fails with a
# confusing diff. If someone asks "then why not always respx?": respx tests need the request format,
# fakes and mocks only the method signature; use respx for the gateway's own tests and for a few
# end-to-end paths, fakes where the route's logic is the subject.

# %% [markdown]
# ## 5. Background tasks
#
# Reserving an animal adds the reservation mail with [`BackgroundTasks`](../GLOSSARY.md#background-task): FastAPI sends it after the
# response. `ASGITransport` only returns when the whole ASGI call is over, background tasks
# included, so the mail is there the moment `await client.post(...)` returns. No sleeping, no polling.
# A second reservation of the same animal is a 409, and sends nothing.

# %%
# %%ipytest

async def test_reservation_mail_has_been_sent_when_the_response_arrives(reservation, notifier):
    assert notifier.sent == [
        ("ana@example.org", "Luna is reserved for you", "Please pay the adoption fee of EUR 90.00 within 48 hours.")
    ]


async def test_a_409_sends_no_mail(client, reservation, notifier):
    other = (await client.post("/adopters", json={"name": "Bo", "email": "bo@example.org"})).json()
    response = await client.post("/adoptions", json={"animal_id": reservation["animal_id"], "adopter_id": other["id"]})
    assert response.status_code == 409
    assert len(notifier.sent) == 1  # Ana's mail only

# %% [markdown]
# What if the mail server is down? A notifier that raises:

# %%
class BrokenNotifier:
    async def send(self, to: str, subject: str, body: str) -> None:
        raise ConnectionError("mail server down")

# %% [markdown]
# **Quiz 12.4.** The reservation succeeds, the route returns, then the background mail raises. What does
# the test's `await client.post("/adoptions", ...)` do, with `ASGITransport`'s defaults?
# - **a)** It raises the `ConnectionError`.
# - **b)** It returns a 500.
# - **c)** It returns the 201: the response was complete before the task ran.
# - **d)** It hangs.

# %% tags=["quiz-answer"]
answer("12.4", "a")

# %% [markdown]
# The test below reserves one animal with the default transport and another with
# `raise_app_exceptions=False`, and records what each call gave and the animal's status afterwards.

# %%
OUTCOMES = []


async def test_a_failing_background_task(client, sessions):
    luna = (await client.post("/animals", json={"name": "Luna", "species": "cat"})).json()
    max_ = (await client.post("/animals", json={"name": "Max", "species": "dog"})).json()
    ana = (await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})).json()
    with override_dependency(shelter_app, get_notifier, BrokenNotifier):
        for animal, raise_app_exceptions in [(luna, True), (max_, False)]:
            transport = ASGITransport(app=shelter_app, raise_app_exceptions=raise_app_exceptions)
            async with AsyncClient(transport=transport, base_url="http://test") as http:
                try:
                    response = await http.post("/adoptions", json={"animal_id": animal["id"], "adopter_id": ana["id"]})
                    outcome = f"HTTP {response.status_code}"
                except ConnectionError as exc:
                    outcome = f"raised ConnectionError: {exc}"
            async with sessions() as session:
                status = (await session.get(Animal, animal["id"])).status
            OUTCOMES.append((f"raise_app_exceptions={raise_app_exceptions}", outcome, f"{animal['name']} is {status}"))


run_tests("test_a_failing_background_task")
print(*OUTCOMES, sep="\n")
assert [outcome for _, outcome, _ in OUTCOMES] == ["raised ConnectionError: mail server down", "HTTP 201"]

# %% [markdown]
# With the default `raise_app_exceptions=True` the test gets the task's exception instead of the
# response, although the reservation was committed (Luna is reserved). With `False` it gets the 201.
# In production the second is what happens: the client already has its 201, the server logs the
# traceback, and nobody tells Ana. Keep the default in tests (a broken task should fail loudly), and
# decide in the app what a failed mail means: here, a reservation without a mail, which the route
# cannot report any more. (The sync `TestClient` behaves the same: `raise_server_exceptions=True`.)

# %% [markdown]
# Every test of this notebook ran in a rolled-back transaction, the failing background task included.
# A brand-new connection sees only committed rows:

# %%
async def committed_rows() -> dict[str, int]:
    engine = create_async_engine(nb.database_url)
    try:
        async with engine.connect() as conn:
            return {table: await conn.scalar(select(func.count()).select_from(model)) for table, model in
                    [("animals", Animal), ("adopters", Adopter), ("adoptions", Adoption)]}
    finally:
        await engine.dispose()


print("rows left behind:", await committed_rows())
assert await committed_rows() == {"animals": 0, "adopters": 0, "adoptions": 0}

# %% [markdown]
# ## Sources and further reading
#
# - cmdragon, ["如何用FastAPI玩转多模块测试与异步任务，让代码不再"闹脾气"？" ("Multi-module tests and async
#   tasks in FastAPI")](https://blog.cmdragon.cn/posts/ddbfa0447a5d0d6f9af12e7a6b206f70/),
#   blog.cmdragon.cn, 2025-09-10: the `patch` advice of part 4.
# - respx 0.23, [Guide](https://lundberg.github.io/respx/guide/) (routes, `side_effect`,
#   `assert_all_mocked`, `assert_all_called`).
# - httpx 0.28, [ASGI transport](https://www.python-httpx.org/advanced/transports/#asgi-transport)
#   (`raise_app_exceptions`).
# - FastAPI, [Testing Dependencies with Overrides](https://fastapi.tiangolo.com/advanced/testing-dependencies/)
#   and [Background Tasks](https://fastapi.tiangolo.com/tutorial/background-tasks/).
# - Python 3.11, [`unittest.mock`](https://docs.python.org/3.11/library/unittest.mock.html):
#   [where to patch](https://docs.python.org/3.11/library/unittest.mock.html#where-to-patch),
#   [autospeccing](https://docs.python.org/3.11/library/unittest.mock.html#autospeccing) and
#   [`AsyncMock`](https://docs.python.org/3.11/library/unittest.mock.html#unittest.mock.AsyncMock).
#
# Versions: `patch` picks `AsyncMock` for an `async def` since Python 3.8; `ASGITransport` is how
# httpx 0.28 talks to an app (`AsyncClient(app=...)` is gone); this notebook runs respx 0.23.1 and
# FastAPI 0.165.

# %% [markdown] tags=["key-points"]
# ## Key points
# - Mock the provider at httpx's transport with respx: the app's real gateway code runs, and the test
#   can assert on the JSON and headers it sent and on how it maps 402, 500 and timeouts.
# - respx fails any request nobody registered (`assert_all_mocked`), with an `AssertionError` that
#   the app's `except httpx.HTTPError` cannot swallow.
# - A fake gateway through `dependency_overrides` is fast and simple, but skips the HTTP code: a bug in
#   building the request passes unseen.
# - `patch` where the name is looked up at call time; a function given to `Depends` is not such a
#   name. Use `autospec=True`: typos and wrong signatures then fail as they would in production.
#   `patch` makes an `AsyncMock` for an `async def`; its `return_value` is the awaited result and
#   must have the real shape.
# - `BackgroundTasks` have run when `ASGITransport` returns: assert their effects right away. A task
#   that raises makes the client call raise (default `raise_app_exceptions=True`), after the route's
#   work was committed.
#
# **Next:** [13 · Testing scheduled jobs](13_scheduled_jobs.ipynb)
