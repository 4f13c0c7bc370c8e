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
# # 12 · Capstone: your own conftest.py

# %% [markdown] tags=["overview"]
# **Teaching:** 20 min · **Exercises:** 10 min
#
# **Prerequisites:** 01 to 10 (this notebook puts their pieces together)
#
# **You will be able to**
# - assemble a complete `conftest.py` for an async FastAPI + SQLAlchemy app: one database per
#   pytest-xdist worker, the schema created once, rollback isolation per test, the session
#   override, a recording notifier, payments mocked with respx, the lifespan run;
# - run the **real** `pytest` on it, in random order, in file order and on two workers, and prove
#   that no run leaves a row behind;
# - prove that the suite notices when isolation is missing (a negative control), and explain why
#   an `IntegrityError` in tests nearly always means leftover rows;
# - check your own project against a ten-point list.

# %%
from course.notebook import setup
from course.quiz import answer

nb = setup("12")
nb

# %% [markdown]
# Everything else this notebook uses. This time pytest does not run inside the kernel: we write a
# small project to a temporary directory and run `python -m pytest` on it in a subprocess, exactly
# as you will run your own suite.

# %%
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from IPython.core.magic import register_cell_magic
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

import tests.isolation
from course.database import count_rows

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~20 min teaching + 10 min exercise).** Part 1 (~8 min) is
# reading code, not running it: walk through the conftest cell by cell and ask, for each block,
# "which lesson showed what breaks without this?" (the checklist at the end has the answers). Part
# 2 (~5 min) runs the real pytest in random order, then on two workers; a run takes 2 to 6 seconds,
# the `-n 2` run up to 12 on a busy machine (three processes import the app). Part 3 (~5 min) is the
# negative control: let the room predict which tests fail before running it, then the clean rerun. If a run cell fails with a traceback instead of a
# summary, print `last_run.stdout` in a new cell: the conftest is code the learner may have edited.
# On PostgreSQL a run that hangs usually means a previous kernel still holds a connection in a
# transaction on a worker database: restart the kernel and run from the top.

# %% [markdown]
# ## 1. The project, file by file
#
# The project lives in a fresh temporary directory, never in the repository's `tests/`. A small
# cell magic, `%%project_file NAME`, writes the cell's text to `NAME` in that directory (like
# IPython's `%%writefile`, but it prints the file name without the random temporary path).

# %%
project = Path(tempfile.mkdtemp(prefix="capstone-"))


@register_cell_magic
def project_file(name, cell):
    path = project / name.strip()
    path.write_text(cell)
    print(f"wrote {path.name} ({len(cell.splitlines())} lines)")

# %% [markdown]
# First the helper of lessons 04 and 05, `tests/isolation.py`. It imports nothing from the app, so
# it is copied as it is, next to the conftest. That is the point of keeping it separate: in your
# project this is one `cp`.

# %%
shutil.copy(tests.isolation.__file__, project / "isolation.py")
print(sorted(p.name for p in project.iterdir()))

# %% [markdown]
# pytest's settings. `asyncio_mode = auto` makes every `async def` test and fixture asynchronous
# without a mark; the two loop scopes put every fixture and every test on **one** event loop for the
# whole run, so the session-scoped engine's pooled connections are never used from another loop
# (lesson 02; with asyncpg the other loop is `attached to a different loop`).

# %%
# %%project_file pytest.ini
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session

# %% [markdown]
# Now the conftest, in four cells: each writes one part, and a cell after them joins the parts into
# `conftest.py`. Part 1: **which database**. Each
# process gets a sibling of the database you name in `DATABASE_URL`: `<name>_master` in a serial
# run, `<name>_gw0`, `<name>_gw1` ... under pytest-xdist (lesson 10). The app reads its setting at
# import time, so the conftest points `DATABASE_URL` at the test database **before** importing the
# app: even a test that bypasses the override can then only write to a test database.

# %%
# %%project_file conftest_1_database.py
"""Fixtures for the shelter app. To reuse: copy this file and isolation.py, change the app imports."""

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

# xdist starts its workers from the controller process, which has already imported this file:
# remember the database you chose under a name of its own, or worker gw0 would derive its
# database from the controller's (<name>_master_gw0).
BASE_URL = os.environ.setdefault("TEST_BASE_DATABASE_URL", os.environ["DATABASE_URL"])
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "master")


def worker_url(url: str, worker: str) -> str:
    """The sibling database of ``url`` for one test process: <name>_<worker>."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        parsed = parsed.set(database=str(path.with_name(f"{path.stem}_{worker}{path.suffix}")))
    else:
        parsed = parsed.set(database=f"{parsed.database}_{worker}")
    return parsed.render_as_string(hide_password=False)


async def create_database(url: str) -> None:
    """CREATE DATABASE if it is missing (PostgreSQL); make the directory (SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
            if not exists:
                await conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.dispose()


TEST_DATABASE_URL = worker_url(BASE_URL, WORKER)
os.environ["DATABASE_URL"] = TEST_DATABASE_URL  # before the app is imported (below)

# %% [markdown]
# Part 2: **the app's pieces** (the only lines that name the app) and the engine. One engine per
# run, on the session loop, with the schema dropped and created once (lesson 04); the SQLite
# savepoint fix installed before its first connection (lesson 05). At the end it also disposes of
# the app's own engine, which a test uses only when the override is missing, but which must then
# not leave connections open.

# %%
# %%project_file conftest_2_engine.py
import respx  # noqa: E402
from asgi_lifespan import LifespanManager  # noqa: E402
from httpx import ASGITransport, AsyncClient  # noqa: E402
from isolation import fix_sqlite_savepoints, isolated_async_sessions, override_dependency, session_dependency  # noqa: E402

from app.config import get_settings  # noqa: E402
from app.db import engine as app_engine, get_session  # noqa: E402
from app.main import app  # noqa: E402
from app.models import Base  # noqa: E402
from app.services.notifications import get_notifier  # noqa: E402

#: The negative control of the course switches the session override off; never do this yourself.
OVERRIDE_SESSIONS = os.environ.get("CAPSTONE_SKIP_SESSION_OVERRIDE") != "1"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine():
    await create_database(TEST_DATABASE_URL)
    engine = create_async_engine(TEST_DATABASE_URL)
    fix_sqlite_savepoints(engine)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()
    await app_engine.dispose()

# %% [markdown]
# Part 3: **isolation** (lessons 04 to 06). `sessions` is a factory whose sessions all join the
# test's never-committed transaction with `create_savepoint`; `session` is one of them, for the
# test's own reads. Both function-scoped: they write.

# %%
# %%project_file conftest_3_isolation.py
@pytest.fixture
async def sessions(engine):
    async with isolated_async_sessions(engine) as factory:
        yield factory


@pytest.fixture
async def session(sessions):
    async with sessions() as session:
        yield session

# %% [markdown]
# Part 4: **the outside world and the client** (lessons 02 and 08). A notifier that records instead
# of mailing; the payment provider mocked at the HTTP transport by respx, so the app's real
# `PaymentGateway` code runs; the client, which overrides the session dependency (restored at exit,
# even when a test fails), runs the lifespan and talks to the app through `ASGITransport`.

# %%
# %%project_file conftest_4_client.py
@dataclass
class RecordingNotifier:
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


@pytest.fixture
def notifier():
    fake = RecordingNotifier()
    with override_dependency(app, get_notifier, lambda: fake):
        yield fake


@pytest.fixture
def payments():
    with respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client(sessions, notifier, payments):
    use_test_sessions = override_dependency(app, get_session, session_dependency(sessions))
    with use_test_sessions if OVERRIDE_SESSIONS else nullcontext():
        async with LifespanManager(app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http

# %% [markdown]
# The four parts become `conftest.py`:

# %%
parts = sorted(project.glob("conftest_*.py"))
(project / "conftest.py").write_text("\n\n".join(part.read_text().strip() for part in parts) + "\n")
for part in parts:
    part.unlink()
conftest_lines = (project / "conftest.py").read_text().splitlines()
print(f"conftest.py: {len(conftest_lines)} lines;", "project:", sorted(p.name for p in project.iterdir()))

# %% [markdown]
# Then the tests. They only ask for fixtures; none of them knows which database it runs on. The
# first file covers the animals and the lifespan. `test_the_database_starts_empty` is a cheap
# tripwire worth copying: in random order it runs somewhere in the middle, and it fails as soon as
# anything leaks.

# %%
# %%project_file test_animals.py
import pytest


async def test_the_lifespan_has_run(client):
    assert (await client.get("/health")).json() == {"status": "ok", "scheduler": False}


async def test_the_database_starts_empty(client):
    assert (await client.get("/animals")).json() == []


async def test_create_an_animal(client):
    response = await client.post("/animals", json={"name": "Luna", "species": "cat"})
    assert response.status_code == 201
    assert (response.json()["name"], response.json()["status"]) == ("Luna", "available")


async def test_a_duplicate_name_is_409(client):
    assert (await client.post("/animals", json={"name": "Luna", "species": "cat"})).status_code == 201
    response = await client.post("/animals", json={"name": "Luna", "species": "dog"})
    assert response.status_code == 409


async def test_an_arrival_takes_the_first_free_name(client):
    await client.post("/animals", json={"name": "Max", "species": "dog"})
    response = await client.post("/animals/arrivals", json={"species": "dog", "candidates": ["Max", "Cody"]})
    assert (response.status_code, response.json()["name"]) == (201, "Cody")


@pytest.mark.parametrize("species", ["dog", "cat", "rabbit"])
async def test_the_list_filters_by_species(client, species):
    for name, kind in [("Rex", "dog"), ("Luna", "cat"), ("Bun", "rabbit")]:
        assert (await client.post("/animals", json={"name": name, "species": kind})).status_code == 201
    listed = (await client.get("/animals", params={"species": species})).json()
    assert [a["species"] for a in listed] == [species]


async def test_an_unknown_animal_is_404(client):
    assert (await client.get("/animals/999999")).status_code == 404

# %% [markdown]
# The second file covers the adoption flow: the e-mail sent in the background and the three answers
# of the payment provider (accepted, declined, unreachable), mocked with respx.

# %%
# %%project_file test_adoptions.py
import httpx
import pytest

from app.models import Animal


@pytest.fixture
async def reservation(client):
    animal = await client.post("/animals", json={"name": "Luna", "species": "cat"})
    adopter = await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})
    assert (animal.status_code, adopter.status_code) == (201, 201)
    ids = {"animal_id": animal.json()["id"], "adopter_id": adopter.json()["id"]}
    response = await client.post("/adoptions", json=ids)
    assert response.status_code == 201
    return response.json()


async def test_a_reservation_mails_the_adopter(reservation, notifier):
    assert [(to, subject) for to, subject, _ in notifier.sent] == [("ana@example.org", "Luna is reserved for you")]


async def test_paying_completes_the_adoption(client, reservation, payments, session):
    payments.post("/v1/charges").respond(201, json={"id": "ch_1", "amount": 9000})
    response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert (response.status_code, response.json()["status"]) == (200, "paid")
    assert (await session.get(Animal, reservation["animal_id"])).status == "adopted"


async def test_a_declined_payment_is_402(client, reservation, payments):
    payments.post("/v1/charges").respond(402, json={"reason": "card expired"})
    response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert response.json() == {"detail": "Payment declined: card expired."}


async def test_an_unreachable_provider_is_502(client, reservation, payments):
    payments.post("/v1/charges").mock(side_effect=httpx.ConnectError("no route"))
    response = await client.post(f"/adoptions/{reservation['id']}/pay")
    assert response.status_code == 502

# %% [markdown]
# ## 2. Run the real pytest
#
# `pytest_run` runs `python -m pytest` in the project directory, with this notebook's database in
# `DATABASE_URL`, and keeps pytest's last line (the summary) without its duration. Two options keep
# the run small and clean: `-p no:cacheprovider` (no `.pytest_cache` left anywhere) and
# `-p no:nbval` (the notebook plugin installed in this environment, useless here and slow to load).

# %%
def pytest_run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run pytest on the project; return its exit code and its summary line, without the timing."""
    global last_run
    last_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", "-p", "no:nbval", *args],
        cwd=project, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DATABASE_URL": nb.database_url, "COLUMNS": "200", **(env or {})},
    )
    summary = last_run.stdout.strip().splitlines()[-1]
    return last_run.returncode, re.sub(r" in [\d.]+s.*$", "", summary).strip("= ")


def test_order(output: str) -> list[str]:
    """The test ids of a ``-vv`` run, in the order pytest ran them."""
    return re.findall(r"^(test_\S+) (?:PASSED|FAILED|ERROR)", output, re.M)

# %% [markdown]
# First run: random order, with a **fixed** seed (pytest-randomly). A random order finds tests that
# depend on each other (lesson 01); a fixed seed makes this run reproducible: anyone can rerun the
# same order. `-vv` (one `v` cancels `-q`) lists the tests as they run, so we can keep the order.

# %%
code, summary = pytest_run("-vv", "-p", "randomly", "--randomly-seed=2026")
print(summary)
random_run = last_run.stdout
random_order = test_order(random_run)
assert (code, summary) == (0, "13 passed")
print("first five:", *random_order[:5], sep="\n  ")

# %% [markdown]
# Thirteen passed, in an order that mixes the two files. pytest printed the seed in its header, so
# anyone can rerun this exact order. (Lesson 01 explained why a seed could not replay an order
# inside a notebook: the test ids there contain a module name that changes with every kernel. In a
# project on disk the ids are stable, and the seed replays the order.)

# %% [markdown]
# **Quiz 12.1.** A test fails in CI in random order and passes on your laptop. The CI log starts
# with `Using --randomly-seed=2026`. What do you do first?
# - **a)** Run the suite several times locally until it fails too.
# - **b)** Run `pytest -p randomly --randomly-seed=2026` locally: the same seed gives the same
#   order, so the failure comes back.
# - **c)** Switch randomness off with `-p no:randomly`: order-dependent failures are noise.
# - **d)** Nothing: a test that passes alone is correct.

# %% tags=["quiz-answer"]
answer("12.1", "b")

# %% [markdown]
# The seed is the first thing pytest-randomly prints:

# %%
print(next(line for line in random_run.splitlines() if "randomly-seed" in line))

# %% [markdown]
# Second run: two workers (pytest-xdist, `-n 2`). Each worker is a separate process with its own
# `PYTEST_XDIST_WORKER`, hence its own database.

# %%
code, summary = pytest_run("-n", "2", "-p", "randomly", "--randomly-seed=2026")
print(summary)
assert (code, summary) == (0, "13 passed")

# %% [markdown]
# **Quiz 12.2.** Which databases did the `-n 2` run use (its tests, not the earlier runs)?
# - **a)** This notebook's database itself: `DATABASE_URL` points there.
# - **b)** `<name>_master` only: the controller process creates it and the workers share it.
# - **c)** `<name>_gw0` and `<name>_gw1`, one per worker; the controller runs no test.
# - **d)** `<name>_master_gw0` and `<name>_master_gw1`.

# %% tags=["quiz-answer"]
answer("12.2", "c")

# %% [markdown]
# The databases next to this notebook's, and what they contain: each of the three has the app's
# tables (the schema was created there) and no rows. This notebook's own database is empty too.
# (Without `TEST_BASE_DATABASE_URL` in part 1, quiz answer d would have been right.)

# %%
worker_urls = {}
for worker in ["master", "gw0", "gw1"]:
    parsed = make_url(nb.database_url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        parsed = parsed.set(database=str(path.with_name(f"{path.stem}_{worker}{path.suffix}")))
    else:
        parsed = parsed.set(database=f"{parsed.database}_{worker}")
    worker_urls[worker] = parsed.render_as_string(hide_password=False)


async def rows_everywhere() -> dict[str, dict[str, int]]:
    everywhere = {"notebook": await count_rows(nb.database_url)}
    for worker, url in worker_urls.items():
        everywhere[worker] = await count_rows(url)
    return everywhere


rows = await rows_everywhere()
for database, counts in rows.items():
    print(f"{database:9}", counts)
assert all(counts == {"animals": 0, "adopters": 0, "adoptions": 0} for counts in rows.values())

# %% [markdown]
# Three runs, thirteen tests each, two orders, three processes' worth of databases: zero rows
# left. That is what "isolated" means, proved on whichever backend this notebook runs on.
#
# ## 3. A negative control: the same suite without the session override
#
# A suite that cannot fail proves nothing. So we break the conftest on purpose: the environment
# variable `CAPSTONE_SKIP_SESSION_OVERRIDE=1` leaves the app's own `get_session` in place. The test's
# `sessions` fixture still opens its rolled-back transaction, but no request uses it: every
# `commit()` of the app is real. File order, so that the failures are the same on every run.
#
# **Quiz 12.3.** What do you expect?
# - **a)** 13 passed: the `sessions` fixture still rolls back at the end of each test.
# - **b)** 13 passed, but rows are left in this notebook's own database.
# - **c)** Failures from the second test that reuses a name on, and rows left in `<name>_master`;
#   this notebook's own database stays empty.
# - **d)** Every test fails: the app cannot reach a database without the override.

# %% tags=["quiz-answer"]
answer("12.3", "c")

# %%
code, summary = pytest_run("-p", "no:randomly", "--tb=no", "-rfE", env={"CAPSTONE_SKIP_SESSION_OVERRIDE": "1"})
broken_output = last_run.stdout
print(summary)
failures = [line.split(" - ")[0] for line in broken_output.splitlines() if line.startswith(("FAILED", "ERROR"))]
print(*failures, sep="\n")
assert code == 1 and summary == "6 failed, 4 passed, 3 errors"

# %% [markdown]
# pytest runs the files in alphabetical order. The first adoption test reserves Luna for Ana, and the
# app commits both for real. Every later `reservation` fixture fails to create them again (`409`,
# at setup: the three errors). In `test_animals.py`, the tripwire `test_the_database_starts_empty`
# fails at once, and so does every test that creates Luna. The four that pass never reuse a name.
# The rows are still there after the run, in the worker's test database, and nowhere else:

# %%
rows = await rows_everywhere()
for database, counts in rows.items():
    print(f"{database:9}", counts)
assert sum(rows["master"].values()) > 0
assert sum(rows["notebook"].values()) == 0

# %% [markdown]
# That is why part 1 sets `DATABASE_URL` before importing the app: even this broken conftest could
# only damage a test database, which the next run recreates.

# %% [markdown]
# With the override back on, the suite runs in file order (pytest-randomly off): all pass again, and
# the worker's test database is clean at the end. Every run starts by recreating the schema, so the
# leftovers of the broken run did not get in the way.

# %%
code, summary = pytest_run("-vv", "-p", "no:randomly")
print(summary)
file_order = test_order(last_run.stdout)
rows = await rows_everywhere()
print("master   ", rows["master"])
print("first five:", *file_order[:5], sep="\n  ")
assert (code, summary) == (0, "13 passed") and sum(rows["master"].values()) == 0
assert file_order != random_order and sorted(file_order) == sorted(random_order)

# %% [markdown]
# ### Claim check: an `IntegrityError` on a unique column in tests almost always means leftover data, and wrapping the test's session in `begin_nested()` fixes it
#
# Seed 000 (a blog post on rollback fixtures) asks, in a quiz, for the most likely cause of a
# unique-constraint `IntegrityError` in tests, and answers: the rollback mechanism is not in
# effect, so data survives from test to test. Its fixture opens a session, enters
# `session.begin_nested()` and yields the session; the tests call the app through a client
# **without** overriding the app's session dependency. That is exactly our negative control: an
# isolated session for the test, real commits for the app. What did its failures say? (`-rfE`
# printed one line per failure and error, with its message.)

# %%
outcomes = re.findall(r"^(?:FAILED|ERROR) (\S+) - (.*)$", broken_output, re.M)
conflicts = [test for test, message in outcomes if "409" in message]
print(f"{len(conflicts)} of {len(outcomes)} failures and errors: a 409 where a 201 was expected")
print("the other one:", *[test for test, message in outcomes if "409" not in message])
assert len(outcomes) == 9 and len(conflicts) == 8

# %% [markdown]
# All but one are a `409`: the app caught an `IntegrityError` (a name or an e-mail already taken)
# and answered "conflict". The other one is the tripwire, which found rows where it expected none.

# %% [markdown]
# **Verdict:** the diagnosis is right, the remedy is not. A unique-constraint `IntegrityError` in a
# test nearly always means rows left behind by an earlier test or run, as our negative control shows.
# But a savepoint around the **test's** session cannot prevent it: the app commits through its own
# sessions, which the test's transaction never sees. The remedy is the dependency override that
# hands the app sessions joined to the test's transaction (part 4 of the conftest), plus a check
# that fails when rows leak (`test_the_database_starts_empty`, and the row counts above).

# %% [markdown]
# ### Exercise 1: tests for the adopters routes
#
# Add `test_adopters.py` to the project: creating an adopter answers `201` with the e-mail
# lowercased; a second adopter with the same e-mail (in another case) answers `409`; an unknown id
# answers `404`. Only the `client` fixture is needed. The next cell runs your file with the real
# pytest, in random order, and checks that nothing leaked.
#
# > Hint: `app/routes/adopters.py` has both routes. Write the file with the `%%project_file` magic,
# > like the test files above: `POST /adopters` takes `{"name": ..., "email": ...}`.

# %%
# %%project_file test_adopters.py
# BEGIN SOLUTION
async def test_an_adopter_is_created_with_a_lowercase_email(client):
    response = await client.post("/adopters", json={"name": "Ana", "email": "Ana@Example.org"})
    assert (response.status_code, response.json()["email"]) == (201, "ana@example.org")


async def test_the_same_email_twice_is_409(client):
    await client.post("/adopters", json={"name": "Ana", "email": "ana@example.org"})
    response = await client.post("/adopters", json={"name": "Ana B.", "email": "ANA@example.org"})
    assert response.status_code == 409


async def test_an_unknown_adopter_is_404(client):
    assert (await client.get("/adopters/999999")).status_code == 404
# END SOLUTION

# %%
if not (project / "test_adopters.py").exists():
    print("test_adopters.py is not written yet: run the cell above.")
else:
    code, summary = pytest_run("test_adopters.py", "-p", "randomly", "--randomly-seed=2026")
    print(summary)
    print("rows left in the test database:", sum((await rows_everywhere())["master"].values()))
    assert code in (0, 5), last_run.stdout  # 5: no tests collected yet

# %% [markdown] tags=["instructor"]
# **Instructor notes (exercise).** Usual mistakes: comparing the e-mail as sent (the route
# lowercases it); creating the first adopter in one test and expecting the 409 in another (exactly
# what isolation forbids: each test makes its own data); asserting a literal id such as
# `/adopters/1` (ids are not rolled back on PostgreSQL, lesson 04). A learner who gets "5 failed"
# after editing the conftest has usually broken the override: point them at the negative control.

# %% [markdown]
# ## 4. Your project, checked
#
# The ten things to get right in your own `conftest.py`, each shown breaking in the lesson named:
#
# 1. **One database for tests, never the dev one**, selected before the app is imported
#   ([00](00_start_here.ipynb), part 1 and the negative control above).
# 2. **One database per xdist worker**, named from `PYTEST_XDIST_WORKER`, derived from a base URL
#   the controller does not overwrite ([10](10_speed_and_scale.ipynb)).
# 3. **The schema once per run** on a session-scoped engine, never per test
#   ([04](04_rollback_fixtures.ipynb), [06](06_retry_routes.ipynb)).
# 4. **One event loop**: engine and tests on the session loop scope, set in the pytest settings
#   ([02](02_dependency_overrides.ipynb)).
# 5. **A never-committed outer transaction** per test, sessions joined with
#   `join_transaction_mode="create_savepoint"` ([04](04_rollback_fixtures.ipynb)).
# 6. **The SQLite driver fix** if you test on SQLite at all ([05](05_savepoints.ipynb)).
# 7. **Override the exact dependency** the routes use, with a parameterless replacement, restored
#   at exit ([02](02_dependency_overrides.ipynb)).
# 8. **Routes that retry use a savepoint per attempt** ([06](06_retry_routes.ipynb)).
# 9. **Fake the outside world** at the right seam: transport for HTTP, a dependency for mail, a
#   setting for the scheduler ([08](08_mocking.ipynb), [09](09_scheduled_jobs.ipynb)).
# 10. **Prove it**: random order with a printed seed, a tripwire test, a row count after the run,
#   and a negative control that fails ([01](01_naive_tests.ipynb), this notebook).

# %% [markdown]
# Clean up: the temporary project goes, and so do the worker databases this notebook created (they
# are test databases, but a database-level leftover check in CI should not find the negative
# control's rows).

# %%
shutil.rmtree(project)
for url in worker_urls.values():
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).unlink(missing_ok=True)
    else:
        admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        await admin.dispose()
print("project removed:", not project.exists())

# %% [markdown] tags=["key-points"]
# ## Key points
# - A complete `conftest.py` for an async FastAPI + SQLAlchemy app is about 115 lines: a test
#   database per process, one engine and schema per run, rollback isolation per test, the session
#   override, fakes for mail and payments, a lifespan-aware client. Only the app imports are specific.
# - `tests/isolation.py` is app-agnostic: copy it next to your conftest.
# - Run the suite in random order with a fixed, printed seed, in file order and with `-n`: all
#   must pass and leave zero rows in every test database.
# - Keep a negative control: without the session override the same suite fails with `409`s from
#   leftover rows. An `IntegrityError` in tests means leftover data; the cure is the override, not a
#   savepoint around the test's own session.
# - Point `DATABASE_URL` at the test database before importing the app: then even a broken test can
#   only damage a test database.
#
# **The end.** Back to the start: [00 · Start here](00_start_here.ipynb), or the course's
# [README](../README.md) for the schedule and how to run the course for others.
