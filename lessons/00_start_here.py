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
# # 00 · Start here
#
# This course tests a small FastAPI + SQLAlchemy application against a **real database**, SQLite or
# PostgreSQL, from inside Jupyter. This first notebook shows you the four things every later one
# relies on: the sample app, pytest running inside a cell, the database switch, and how quizzes and
# exercises work.
#
# <!-- course:site -->
# **The course as a website:** not published yet. `.venv/bin/python -m course site` builds it into `_build/site/` (open `index.html`); `python -m course publish OWNER/NAME` gives it its address, https://OWNER.github.io/NAME/.
# <!-- /course:site -->

# %% [markdown] tags=["overview"]
# **Teaching:** 32 min · **Exercises:** 12 min
#
# **Prerequisites:** pytest basics (test functions, fixtures, `assert`) and `async`/`await`.
#
# **You will be able to**
# - say what the sample app does and where its parts live (`app/`, `tests/isolation.py`, `lessons/`,
#   `solutions/`, `notebooks/`), and send it a request in-process with `httpx.AsyncClient` and
#   `ASGITransport`, with the app's lifespan running;
# - run pytest inside a cell with `%%ipytest`, and explain why the course runs it in a thread and
#   makes a failing test fail the cell;
# - switch between PostgreSQL and SQLite and check which one a notebook is using;
# - work through a lesson: answer a quiz, complete an exercise and read what its check says, and
#   keep a Binder session within its memory by shutting down the kernels of finished notebooks.

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~32 min + 12 min quizzes and exercise).** Suggested pace: the
# app and the first request 10 min, tests in cells 12 min, database switch 4 min, how exercises work
# and memory on Binder 6 min; quizzes 4 min, the exercise 8 min.
# Before the class: start PostgreSQL if you want to demo it (`export DATABASE_URL=$(scripts/postgres
# start)` in the shell that launches Jupyter) and run this notebook once, so the first import is warm.
#
# Common first-hour problems:
# - *Cells run out of order.* A learner who runs an import of `app` before the setup cell gets the
#   app's development database. Fix: "Kernel → Restart and run all". Every notebook is safe to re-run
#   from the top; `setup()` empties the notebook's database.
# - *"PostgreSQL is not reachable at ..."* from the setup cell: `DATABASE_URL` names a server that is
#   not running. The message prints the remedies (unset it: the course starts your own server; or
#   a SQLite URL); the kernel must be restarted afterwards.
# - *`database is locked`* (SQLite) or a cell that hangs (PostgreSQL): an interrupted cell left a
#   connection inside a transaction. Restart the kernel and run from the top.
# - *`Runner.run() cannot be called from a running event loop`* in a learner's own cell: they called
#   `ipytest.run(...)` with `run_in_thread=False`, or ran tests before the setup cell configured
#   ipytest. Section 3 shows exactly this error; point them back to it.
# - *"not yet: ... still passes when ..."* under an exercise: the learner's test passes against the
#   app but also against a broken version of it. The message names the broken version; ask which
#   assertion would tell the two apart.
# - On Binder, an idle session is culled after a while; the notebook simply runs again from the top.
#   Memory is tight there (section 6): ask everyone to shut down the kernels of finished notebooks.

# %% [markdown]
# ## The setup cell
# <!-- topic:test-database-selection -->
#
# Every notebook starts with this cell. `setup("00")` gives the notebook its **own database**, empty,
# points the `DATABASE_URL` environment variable at it *before* anything imports the app (the app
# reads its settings once, at import), and configures pytest for cells. The last line shows which
# database you got.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("00")
nb

# %% [markdown]
# ## 1. The sample app: Paws & Whiskers
#
# An animal shelter's API. Animals arrive (names are unique), adopters register (e-mails are unique),
# an adopter reserves an animal (an *adoption*: a fee to pay, a confirmation e-mail sent in the
# background), then pays the fee through an external payment gateway. A scheduled job expires
# reservations left unpaid. Small, but it has the parts real applications trip over in tests.
#
# Here are its routes, read from the OpenAPI description FastAPI builds for the application object
# (the same one its interactive docs show: in JupyterLab, the launcher's **Shelter API (Swagger UI)**
# tile serves the app and opens them; on a terminal, `python -m app` serves them at `/docs`):

# %%
from app.main import app as shelter

for path, operations in shelter.openapi()["paths"].items():
    for method, operation in operations.items():
        print(f"{method.upper():5} {path:30} {operation['summary']}")

# %% [markdown]
# Animals and adopters are created and read; `POST /animals/arrivals` registers a newcomer under the
# first free name from a list of candidates (<!-- ref:retry-routes -->lesson 09<!-- /ref --> tests its retry); adoptions are reserved, then
# paid through the gateway (<!-- ref:mock-gateway -->lesson 12<!-- /ref --> mocks it). Each part of the app lives in one obvious module, and
# the first line of each module's docstring says what it is for:

# %%
import importlib

MODULES = ["app.config", "app.db", "app.models", "app.schemas", "app.naive", "app.services.payments", "app.jobs"]
for name in MODULES + ["tests.isolation", "tests.conftest"]:
    print(f"{name:22} {importlib.import_module(name).__doc__.strip().splitlines()[0]}")

# %% [markdown]
# Where to find things:
#
# | where | what |
# |---|---|
# | `app/routes/` | the endpoints listed above; `app/db.py` holds `get_session`, the dependency every route uses |
# | `tests/isolation.py` | the rollback-isolation helper this course builds up to; it imports nothing from the app, so you can copy it into your project |
# | `tests/conftest.py` | the reference fixtures: what the whole course arrives at, in one file |
# | `notebooks/` | the notebooks you work in: exercises have placeholders, quiz answers are blank |
# | `solutions/` | the same notebooks with the exercises solved and every output stored |
# | `lessons/` | the text sources both are generated from (for contributors) |

# %% [markdown]
# ## 2. A first request, without a server
# <!-- topic:asyncclient-transport -->
#
# Tests do not need a running server: `httpx.AsyncClient` can hand each request straight to the ASGI
# application through [`ASGITransport`](../GLOSSARY.md#asgi-transport). One catch: `ASGITransport` sends requests only. It never runs
# the app's **[lifespan](../GLOSSARY.md#lifespan)**, the startup and shutdown code (this app creates its outgoing HTTP client
# there). The health check makes the difference visible. First without the lifespan, on a fresh app
# object (`create_app()`), so that this cell shows the same thing every time it runs:

# %%
from httpx import ASGITransport, AsyncClient

from app.main import create_app

async with AsyncClient(transport=ASGITransport(app=create_app()), base_url="http://test") as http:
    response = await http.get("/health")
print(response.status_code, response.json())

# %% [markdown]
# 503: the requests reached the app, but its startup code never ran. `asgi_lifespan.LifespanManager`
# runs the lifespan around the client, as a real server would:

# %%
from asgi_lifespan import LifespanManager

async with LifespanManager(create_app()) as started:
    async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
        response = await http.get("/health")
print(response.status_code, response.json())

# %% [markdown]
# Now something that writes. `POST /animals` creates an animal; names are unique in the database.
#
# Quizzes look like this: a question, options, then an answer cell. Put the letter of your choice
# between the quotes of `answer(...)` and run the cell: it tells you whether you are right and why.
# A wrong answer prints why that option is wrong; try another. The right answer is not written
# anywhere in the notebook (the course keeps only a hash of it).
#
# **Quiz 00.1.** We send `POST /animals` with `{"name": "Rex", "species": "dog"}` twice in a row.
# What does the second request get?
# - **a)** `201 Created`: a second Rex, with a new id.
# - **b)** `409 Conflict` with a message saying Rex already exists.
# - **c)** `500 Internal Server Error`: the database refuses the duplicate and the app crashes.
# - **d)** `422 Unprocessable Entity`: the body is invalid.

# %% tags=["quiz-answer"]
answer("00.1", "b")

# %% [markdown]
# Let us see. Both requests go through one client, inside the lifespan. The app uses its own engine
# (`app.db.engine`), which keeps a pool of connections tied to the [event loop](../GLOSSARY.md#loop-scope) they were opened on;
# disposing of it at the end keeps later cells, which run on other loops, from reusing them
# (<!-- ref:event-loop-scopes -->lesson 04<!-- /ref --> shows what happens otherwise). We print neither the id nor the arrival time: they differ
# from run to run.

# %%
import app.db

REX = {"name": "Rex", "species": "dog"}

async with LifespanManager(shelter) as started:
    async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
        first = await http.post("/animals", json=REX)
        second = await http.post("/animals", json=REX)
await app.db.engine.dispose()

print(first.status_code, {key: first.json()[key] for key in ("name", "species", "status")})
print(second.status_code, second.json())

# %% [markdown]
# The route caught the database's unique-constraint error and answered `409` with a message a client
# can show. And Rex is really in the database: the route **committed**. `count_rows` (course
# machinery) counts the rows in each table of a database with a connection of its own:

# %%
from course.database import count_rows

await count_rows(nb.database_url)

# %% [markdown]
# One row stays behind after our two requests. Run the request cell again and even the *first* POST
# gets a 409: the database remembers. Tests that share a database this way depend on each other; that
# is the whole subject of <!-- ref:leftover-rows -->lesson 01<!-- /ref -->. Here we simply empty the tables again (`reset_schema` is what
# `setup()` uses):

# %%
from course.notebook import reset_schema

await reset_schema(nb.database_url)
await count_rows(nb.database_url)

# %% [markdown]
# ### Claim check: `AsyncClient(app=app)` calls a FastAPI app in-process
#
# A [claim check](../GLOSSARY.md#claim-check) takes a piece of published advice, runs it here and gives it a verdict. Many tutorials build their async test client by passing the application straight to the client,
# among them "Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks" (2025,
# a blog about upgrading Python and Django applications) in every test it shows:
# `AsyncClient(app=app, base_url="http://test")`. We run exactly that construction with the httpx
# this course pins (0.28.1):

# %%
import httpx

try:
    AsyncClient(app=shelter, base_url="http://test")
except TypeError as exc:
    error = exc
print(f"httpx {httpx.__version__}: {type(error).__name__}: {error}")
assert "unexpected keyword argument 'app'" in str(error)

# %% [markdown]
# **Verdict:** <!-- verdict:asyncclient-app-in-process -->outdated<!-- /verdict -->. httpx 0.28 removed the `app=` shortcut (it had been deprecated since 0.27);
# such a test fails before sending a single request. Pass the app through a transport:
# `AsyncClient(transport=ASGITransport(app=app), base_url="http://test")`, and run the lifespan with
# `LifespanManager` when the app has one.

# %% [markdown]
# ## 3. Tests inside a cell
#
# [ipytest](https://github.com/chmp/ipytest) runs pytest on the tests defined in the notebook. First
# a **fixture**, defined in an ordinary cell as in a [`conftest.py`](../GLOSSARY.md#conftestpy): an HTTP client for the app with its
# lifespan running. It is [function-scoped](../GLOSSARY.md#function-scoped-fixture) (the default): each test gets its own.

# %%
import pytest


@pytest.fixture
async def client():
    async with LifespanManager(shelter) as started:
        async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
            yield http
    await app.db.engine.dispose()  # each pytest run has its own event loop: do not reuse connections


# %% [markdown]
# A cell that starts with `%%ipytest` defines tests and runs them at once. The report below it is
# pytest's own (the `-q` form):

# %%
# %%ipytest

async def test_health_is_ok_once_the_lifespan_ran(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "scheduler": False}


# %% [markdown]
# One dot per passing test. The test is a coroutine and needs no marker: the repository's
# `pyproject.toml` sets pytest-asyncio's `asyncio_mode = "auto"`, and notebooks read it like `tests/`
# does.
#
# `setup()` configured [ipytest](../GLOSSARY.md#ipytest) with two settings that are not its defaults. Both matter.
#
# **Why tests run in a thread.** The notebook's kernel already runs an event loop: that is why
# `await` works at the top level of a cell. pytest-asyncio starts an event loop of its own for the
# tests, and asyncio refuses to start one inside a running one. Here is a trivial async test, run
# once in the kernel's own thread (`run_in_thread=False`); we keep pytest's report and print only its
# error line:

# %%
import contextlib
import io

import ipytest


async def test_nothing_but_an_event_loop():
    assert True


report = io.StringIO()
with contextlib.redirect_stdout(report):
    code = ipytest.run("{MODULE}::test_nothing_but_an_event_loop", run_in_thread=False, raise_on_error=False)
print("pytest exit code:", code)
print(*[line for line in report.getvalue().splitlines() if line.startswith("E ")], sep="\n")
assert code == 1 and "cannot be called from a running event loop" in report.getvalue()

# %% [markdown]
# A test with nothing in it fails, because of where it ran. With `run_in_thread=True`, the setting
# `setup()` chose, pytest runs in a fresh thread that has no loop yet. `run_tests` (course machinery)
# runs the tests you name, with the notebook's settings:

# %%
run_tests("test_nothing_but_an_event_loop")

# %% [markdown]
# The second setting is about failures.
#
# **Quiz 00.2.** The next cell runs a broken test, `assert 1 + 1 == 3`, with ipytest's default,
# `raise_on_error=False` (`--tb=no` keeps the report to its summary line). What does the cell do?
# - **a)** It stops with the test's `AssertionError`, shown in red under the cell.
# - **b)** It stops with `ipytest.Error` after pytest's report, and the cell's last line never prints.
# - **c)** It prints the report and the exit code, and the cell completes without an error of its own.
# - **d)** It runs the test a second time, then stops with the failure.

# %% tags=["quiz-answer"]
answer("00.2", "c")

# %% jupyter={"source_hidden": true}
def test_arithmetic_is_broken():
    assert 1 + 1 == 3


code = ipytest.run("--tb=no", "{MODULE}::test_arithmetic_is_broken", raise_on_error=False)
print("The cell carried on; pytest exit code:", code)

# %% [markdown]
# The test failed, yet the cell ran to its end without an error: a notebook full of broken tests
# would "pass", and "Run all", nbval and CI would carry on. That is why `setup()` switches on
# `raise_on_error=True`: the same run then raises `ipytest.Error`. (We catch it here to
# show it; uncaught, it would make the cell fail.)

# %%
try:
    ipytest.run("--tb=no", "{MODULE}::test_arithmetic_is_broken")
except ipytest.Error as exc:
    print(f"ipytest.Error: {exc}")

# %% [markdown]
# So how does a lesson show a test failing *on purpose*? With `run_tests(..., expect="failed")`: the
# full report is shown, and the cell passes only because the test really failed. Had it passed, the
# cell would fail. Every deliberate failure in this course is shown this way, never as a red cell.

# %%
run_tests("test_arithmetic_is_broken", expect="failed")

# %% [markdown]
# One more behaviour to know before you write tests in cells.
#
# **Quiz 00.3.** `test_arithmetic_is_broken` was defined in an ordinary cell above and is still in the
# notebook. The next cell is a `%%ipytest` cell containing one new test. What happens to
# `test_arithmetic_is_broken`?
# - **a)** It runs again with the new test, and the cell fails.
# - **b)** Nothing: `%%ipytest` only ever runs tests named in its first line.
# - **c)** It runs, but its failure is ignored because the test was defined in an ordinary cell, not this one.
# - **d)** It is deleted from the notebook before the cell runs, so only the new test runs.

# %% tags=["quiz-answer"]
answer("00.3", "d")

# %% [markdown]
# The new test checks exactly that, from inside the run:

# %%
# %%ipytest

def test_the_cell_started_clean():
    assert "test_arithmetic_is_broken" not in globals()
    assert "test_nothing_but_an_event_loop" not in globals()


# %% [markdown]
# Before running, `%%ipytest` deletes every name starting with `test`/`Test` from the notebook, then
# runs the cell and all the tests it defined. Without that cleaning, a test you renamed or deleted in
# an earlier cell would keep running under its old name. Tests defined in ordinary cells stay until
# the next `%%ipytest` cell; that is why lessons run them with `run_tests("name", ...)`, by name.

# %% [markdown]
# ## 4. PostgreSQL or SQLite
#
# One environment variable decides, for the app, the reference tests and every notebook:
# `DATABASE_URL`. Unset, the course uses **your own PostgreSQL server**: the first notebook (or
# `./launch.sh`) starts it with `scripts/postgres start` (the system's PostgreSQL where one is
# installed, otherwise the PostgreSQL 18 that `scripts/bootstrap` put into `.venv`), on 127.0.0.1,
# behind a password of its own; every later notebook finds it running and reuses it, and
# `scripts/postgres stop` stops it. If it cannot start, the course says why in one line and uses
# SQLite. SQLite on purpose, to compare, is one switch away: set a SQLite URL and launch Jupyter
# from the same shell:
#
# ```bash
# export DATABASE_URL=sqlite+aiosqlite:///$PWD/.data/shelter.sqlite   # SQLite files under .data/
# ./launch.sh
# unset DATABASE_URL                                                 # back to your PostgreSQL server
# ```
#
# On Binder PostgreSQL is already running and selected. A running kernel keeps the choice it started
# with: after changing the variable, restart the kernel and run the notebook from the top. Neither the
# notebooks nor the tests ever touch the database you name: each works in a sibling database of its
# own, created on demand.
#
# **Quiz 00.4.** `DATABASE_URL` is unset. Where do this notebook's requests and tests write?
# - **a)** Into a database of this notebook's own, `shelter_test_nb00`, on your own PostgreSQL server, emptied by `setup()`.
# - **b)** Into an in-memory SQLite database that disappears with the kernel.
# - **c)** Into the app's development database, `shelter`, which `python -m app` serves.
# - **d)** Into a SQLite file, `.data/shelter_test_nb00.sqlite`: PostgreSQL is used only when `DATABASE_URL` names it.

# %% tags=["quiz-answer"]
answer("00.4", "a")

# %% [markdown]
# `nb` knows which backend is active and where its database is; the app's settings agree with it.
# (The output depends on the database: the stored one is PostgreSQL's; on SQLite the course compares
# the cell with SQLite's output, and the assertions check it on either backend.)

# %% tags=["output-per-database"]
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config import get_settings

url = make_url(nb.database_url)
print("backend: ", nb.backend)
print("driver:  ", url.get_driver_name())
print("database:", Path(url.database).name)

assert get_settings().database_url == nb.database_url  # the app was pointed here before its import
assert url.get_driver_name() == {"sqlite": "aiosqlite", "postgresql": "asyncpg"}[nb.backend]
assert Path(url.database).stem.endswith("_test_nb00")

# %% [markdown]
# When the two databases behave differently (error messages, id [sequences](../GLOSSARY.md#sequence)), a lesson says so and
# checks the fact that holds for the backend in use, with `if nb.backend == "postgresql": ...`.

# %% [markdown]
# ## 5. Exercises and quizzes
#
# A blank answer cell, as you find it in `notebooks/`, does not fail: it tells you what to do.

# %%
answer("00.1", "")

# %% [markdown]
# A wrong answer prints the reason that option is wrong and asks you to try another; the cell does
# not fail, so *Run All* carries on. (In `solutions/`, where CI checks every stored answer, a wrong
# one raises `WrongAnswer` instead; this cell catches it, so it shows the same text in both.)

# %%
from course.quiz import WrongAnswer

try:
    answer("00.1", "c")
except WrongAnswer as exc:
    print(exc)

# %% [markdown]
# Exercises are code cells with a placeholder, `...  # YOUR CODE HERE`, that you replace. Each ends
# with a check that runs your code: untouched, it prints "Not attempted yet" and the cell passes, so
# skipping an exercise never breaks a later cell. For a test you write, the check runs it against the
# real app (it must pass) and against deliberately [broken versions](../GLOSSARY.md#broken-version) of the app (it must fail against
# each), and names any broken version your test does not catch. The worked answer is in `solutions/`.
#
# ### Exercise 1: a 404 with a readable message
#
# Complete `test_unknown_animal_is_404`: request `GET /animals/999999` (no such animal) and check
# both the status code and the JSON body.
#
# > Hint: the route is `get_animal` in `app/routes/animals.py`; its `HTTPException` becomes a body
# > `{"detail": "..."}`. `assert response.status_code != 500` is not enough: an app that answers
# > `200` with an empty body passes it.

# %%
from course.checks import l00


async def test_unknown_animal_is_404(client):
    # BEGIN SOLUTION
    response = await client.get("/animals/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "No animal with id 999999."}
    # END SOLUTION


l00.check_unknown_animal_is_404()  # your test against the real app, then against broken versions


# %% [markdown]
# Finally, this notebook leaves its database as it found it:

# %%
assert sum((await count_rows(nb.database_url)).values()) == 0
print("rows left in this notebook's database: 0")

# %% [markdown]
# ## 6. Working on Binder: memory
#
# Every open notebook has a kernel of its own, a Python process that keeps the app, SQLAlchemy,
# pytest and everything the notebook imported in memory until you shut it down. Closing the browser
# tab does not stop it. How much does this notebook's kernel hold now? (`psutil` reads the resident
# memory of the process; the number depends on the machine, so the course does not compare it.)

# %% tags=["nbval-ignore-output"]
import psutil

kernel_mb = psutil.Process().memory_info().rss / 2**20
print(f"this kernel holds about {kernel_mb:.0f} MB")
assert kernel_mb > 20  # a kernel with the app, SQLAlchemy and pytest loaded

# %% [markdown]
# A Binder session has little memory to share between all its kernels (often 1 to 2 GB, PostgreSQL
# included), so a few notebooks left running are enough to make the next one fail to start or be
# killed. When you finish a notebook, save it and shut its kernel down: *Kernel → Shut Down Kernel*,
# or the "Running Terminals and Kernels" panel in the left sidebar. Before a break, also download your
# work ([SAVING_YOUR_WORK.md](../SAVING_YOUR_WORK.md)): an idle Binder session is deleted.

# %% [markdown]
# ## Sources and further reading
#
# - httpx 0.28: [Transports, ASGI](https://www.python-httpx.org/advanced/transports/#asgi-transport).
# - asgi-lifespan 2.1: [README](https://github.com/florimondmanca/asgi-lifespan).
# - FastAPI 0.165: [Testing](https://fastapi.tiangolo.com/tutorial/testing/) and
#   [Async Tests](https://fastapi.tiangolo.com/advanced/async-tests/).
# - ipytest 0.14: [README](https://github.com/chmp/ipytest) (`%%ipytest`, `run_in_thread`, `raise_on_error`).
# - pytest-asyncio 1.5: [Configuration](https://pytest-asyncio.readthedocs.io/en/stable/reference/configuration.html)
#   (`asyncio_mode = "auto"`).
# - Binder: [user guide, resource limits](https://mybinder.readthedocs.io/en/latest/about/about.html#how-much-memory-am-i-given-when-using-binder).

# %% [markdown] tags=["key-points"]
# ## Key points
#
# - The sample app is an async FastAPI + SQLAlchemy 2.x shelter; its routes commit, and a duplicate
#   name is a `409` with a readable message, not a crash.
# - `AsyncClient(transport=ASGITransport(app=app), base_url="http://test")` talks to the app without a
#   server; `ASGITransport` skips the lifespan, `LifespanManager` runs it. `AsyncClient(app=...)` is gone.
# - In a notebook, pytest runs in a thread (the kernel's event loop is busy) and a failing test must
#   fail the cell; `setup()` configures both. An exercise's check runs your code and says what is
#   missing; a blank exercise never fails its cell. Deliberate failures are shown with
#   `run_tests(..., expect="failed")`.
# - `%%ipytest` first deletes every `test*` name in the notebook, then runs the tests of its cell.
# - `DATABASE_URL` picks the backend (unset: your own PostgreSQL server, started on demand); each notebook works in its own
#   `..._test_nbNN` database, emptied by `setup()`; `nb.backend` says which one is active.
# - What the app commits stays in the database. <!-- ref:leftover-rows -->Lesson 01<!-- /ref --> shows what that does to a test suite.
# - On Binder, shut down the kernel of every notebook you have finished.
#
# **Next:** [01 · Naive tests and why they flake](01_naive_tests.ipynb)
