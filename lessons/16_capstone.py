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
# # 16 · Capstone: your own conftest.py

# %% [markdown] tags=["overview"]
# **Teaching:** 45 min · **Exercises:** 12 min
#
# **Prerequisites:** 01 to 14 (this notebook puts their pieces together; 10 is optional)
#
# **You will be able to**
# - assemble a complete `conftest.py` for an async FastAPI + SQLAlchemy app: one database per
#   pytest-xdist worker, the schema created once, rollback isolation per test, the session
#   override, a recording notifier, payments mocked with respx, the lifespan run;
# - run the **real** `pytest` on it, in random order, in file order and on two workers, and prove
#   that no run leaves a row behind;
# - prove that the suite notices when isolation is missing (a negative control), and tell an
#   `IntegrityError` from leftover rows apart from one the test or the database's sequences caused;
# - check your own project against a ten-point list (adapted to other shapes of
#   project in the next notebook).

# %%
from course.notebook import setup
from course.quiz import answer

nb = setup("16")
nb

# %% [markdown]
# Everything else this notebook uses. This time pytest does not run inside the kernel: we write a
# small project to a temporary directory and run `python -m pytest` on it, as you run your suite.

# %%
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from IPython.core.magic import register_cell_magic
from IPython.display import Markdown, display
from sqlalchemy import make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

import tests.isolation
from app.models import Animal
from course import benchlab, capstone
from course.checks import l16
from course.database import count_rows

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~45 min teaching + 12 min exercise and quizzes).** Part 1 (~8 min) is
# reading code, not running it: walk through the conftest cell by cell and ask, for each block,
# "which lesson showed what breaks without this?" (the checklist at the end has the answers). Part
# 2 (~5 min) runs the real pytest in random order, then on two workers; each run takes a few
# seconds, the `-n 2` run longest (three processes import the app). Part 3 (~5 min) is the negative
# control: let the room predict which tests fail before running it, then the clean rerun. If a run cell fails with a traceback instead of a
# summary, print `last_run.stdout` in a new cell: the conftest is code the learner may have edited.
# On PostgreSQL a run that hangs usually means a previous kernel still holds a connection in a
# transaction on a worker database: restart the kernel and run from the top.

# %% [markdown]
# ## 1. The project, file by file
# <!-- topic:capstone-project -->
#
# The project lives in a fresh temporary directory, never in the repository's `tests/`. A small
# cell magic, `%%project_file NAME`, writes the cell's text to `NAME` in that directory (like
# IPython's `%%writefile`, but it prints the file name without the random temporary path; with
# `--append` it adds to the file, so that a long file can be written in short cells).

# %%
project = Path(tempfile.mkdtemp(prefix="capstone-"))


@register_cell_magic
def project_file(line, cell):
    name, *flags = line.split()
    path = project / name
    with path.open("a" if "--append" in flags else "w") as file:
        file.write(cell)
    print(f"{'added to' if '--append' in flags else 'wrote'} {path.name} ({len(path.read_text().splitlines())} lines)")

# %% [markdown]
# First the helper of <!-- ref:isolation-helper,sqlite-savepoint-fix -->lessons 05 and 08<!-- /ref -->, `tests/isolation.py`. It imports nothing from the app, so
# it is copied as it is, next to the conftest. That is the point of keeping it separate: in your
# project this is one `cp`.

# %%
shutil.copy(tests.isolation.__file__, project / "isolation.py")
print(sorted(p.name for p in project.iterdir()))

# %% [markdown]
# pytest's settings. `asyncio_mode = auto` makes every `async def` test and fixture asynchronous
# without a mark; the two [loop scopes](../GLOSSARY.md#loop-scope) put every fixture and every test on **one** event loop for the
# whole run, so the [session-scoped](../GLOSSARY.md#function-scoped-fixture) engine's pooled connections are never used from another loop
# (<!-- ref:event-loop-scopes -->lesson 04<!-- /ref -->; with asyncpg the other loop is `attached to a different loop`).

# %%
# %%project_file pytest.ini
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session

# %% [markdown]
# Now the conftest, in parts joined into [`conftest.py`](../GLOSSARY.md#conftestpy) afterwards. Part 1: **which database**. Each
# process gets a sibling of your `DATABASE_URL`'s database: `<name>_master` in a serial run,
# `<name>_gw0`, `<name>_gw1` ... under [pytest-xdist](../GLOSSARY.md#xdist-worker) (<!-- ref:database-per-worker -->lesson 14<!-- /ref -->). It is set **before** the app is
# imported (the app reads it then): even a test that bypasses the [override](../GLOSSARY.md#dependency-override) only reaches a test
# database.

# %%
# %%project_file conftest_1a_database.py
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

# %% [markdown]
# Still part 1: create that database when it is missing (PostgreSQL; SQLite creates the file on
# first use), and point `DATABASE_URL` at it.

# %%
# %%project_file conftest_1b_create.py
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
            if not exists:  # a name is an identifier, not a value: quote it as one, never f'"{name}"'
                quoted = conn.dialect.identifier_preparer.quote_identifier(parsed.database)
                await conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    finally:
        await admin.dispose()


TEST_DATABASE_URL = worker_url(BASE_URL, WORKER)
os.environ["DATABASE_URL"] = TEST_DATABASE_URL  # before the app is imported (below)

# %% [markdown]
# Part 2: **the app's pieces** (the only lines that name the app) and the engine. One engine per
# run, on the session loop, with the schema dropped and created once (<!-- ref:fixture-scopes -->lesson 06<!-- /ref -->); the SQLite
# [savepoint](../GLOSSARY.md#savepoint) fix installed before its first connection (<!-- ref:sqlite-savepoint-fix -->lesson 08<!-- /ref -->). At the end it also disposes of
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
# Part 3: **isolation** (<!-- ref:rollback-fixture,retry-routes -->lessons 05 to 09<!-- /ref -->). `sessions` is a factory whose sessions all join the
# test's never-committed transaction with [`create_savepoint`](../GLOSSARY.md#join-mode); `session` is one of them, for the
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
# Part 4: **the outside world and the client** (<!-- ref:replace-external-service,mock-gateway -->lessons 02 and 12<!-- /ref -->). A notifier that records instead
# of mailing; the payment provider mocked at the HTTP transport by [respx](../GLOSSARY.md#respx), so the app's real
# `PaymentGateway` code runs; the client, which overrides the session dependency (restored at exit,
# even when a test fails), runs the [lifespan](../GLOSSARY.md#lifespan) and talks to the app through [`ASGITransport`](../GLOSSARY.md#asgi-transport).

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


# %% [markdown]
# More of the same file: creating, duplicates, arrivals.

# %%
# %%project_file test_animals.py --append


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


# %%
# %%project_file test_animals.py --append


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


# %% [markdown]
# The tests of that file: the mail, then the three answers of the provider.

# %%
# %%project_file test_adoptions.py --append


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
# <!-- topic:real-pytest-run -->
#
# `pytest_run` runs `python -m pytest` in the project directory, with this notebook's database in
# `DATABASE_URL`, and keeps pytest's last line (the summary) without its duration. Two options keep
# the run small and clean: `-p no:cacheprovider` (no `.pytest_cache` left anywhere) and `-p no:nbval
# -p no:schemathesis -p no:hypothesispytest -p no:sqla` (plugins installed in this environment for other
# steps, pytest-sqla for the comparison of <!-- ref:helper-or-plugin -->lesson 17<!-- /ref -->; useless here: loading them costs each pytest process more than a second, <!-- ref:plugin-startup -->lesson 15<!-- /ref -->).

# %%
def pytest_run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run pytest on the project; return its exit code and its summary line, without the timing."""
    global last_run
    last_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", "-p", "no:nbval",
         "-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:sqla", *args],
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
# depend on each other (<!-- ref:order-dependence -->lesson 01<!-- /ref -->); a fixed seed makes this run reproducible: anyone can rerun the
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
# anyone can rerun this exact order (in a project on disk the test ids are stable, unlike in a
# notebook, <!-- ref:order-dependence -->lesson 01<!-- /ref -->).

# %% [markdown]
# **Quiz 16.1.** A test fails in CI in random order and passes on your laptop. The CI log starts
# with `Using --randomly-seed=2026`. What do you do first?
# - **a)** Run `pytest -p randomly --randomly-seed=2026` locally.
# - **b)** Run the suite locally again and again until it fails too, then bisect the order of the
#   tests by hand.
# - **c)** Switch randomness off with `-p no:randomly`: order-dependent failures are noise.
# - **d)** Nothing: a test that passes when run alone is correct.

# %% tags=["quiz-answer"]
answer("16.1", "a")

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
# **Quiz 16.2.** Which databases did the `-n 2` run use (its tests, not the earlier runs)?
# - **a)** This notebook's database itself: `DATABASE_URL` points there.
# - **b)** `<name>_master` only: the controller process imports the conftest first, creates that
#   database, and both workers share it.
# - **c)** `<name>_master_gw0` and `<name>_master_gw1`.
# - **d)** `<name>_gw0` and `<name>_gw1`, one per worker.

# %% tags=["quiz-answer"]
answer("16.2", "d")

# %% [markdown]
# The databases next to this notebook's, and what they contain: each of the three has the app's
# tables (the schema was created there) and no rows. This notebook's own database is empty too.
# (Without `TEST_BASE_DATABASE_URL` in part 1, quiz answer c would have been right.)

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
# **Quiz 16.3.** What do you expect?
# - **a)** 13 passed: the `sessions` fixture still opens its transaction and rolls it back at the end
#   of each test, whatever the app does with its own sessions.
# - **b)** Failures from the second test that reuses a name on, and rows left in `<name>_master`;
#   this notebook's own database stays empty.
# - **c)** 13 passed, but rows are left in this notebook's own database.
# - **d)** Every test fails: the app cannot reach a database without the override.

# %% tags=["quiz-answer"]
answer("16.3", "b")

# %% jupyter={"source_hidden": true}
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
# ### Claim check: an `IntegrityError` on a unique column in tests means leftover data, and wrapping the test's session in `begin_nested()` fixes it
# <!-- topic:integrity-error-claim -->
#
# Source: "如何在FastAPI中玩转'时光倒流'的数据库事务回滚测试？" ("How to play 'time travel'
# database transaction-rollback tests in FastAPI"), cmdragon's blog, 2025-09-09,
# [blog.cmdragon.cn/posts/bf9883a75ffa46b523a03b16ec56ce48](https://blog.cmdragon.cn/posts/bf9883a75ffa46b523a03b16ec56ce48/).
# In our words: in a quiz, the post asks for the most likely cause of a unique-constraint
# [`IntegrityError`](../GLOSSARY.md#integrityerror) in tests and answers that the rollback is not in effect, so data survives from
# test to test. Its fixture opens a session, enters [`session.begin_nested()`](../GLOSSARY.md#nested-transaction) and yields the
# session; the tests call the app through a client **without** overriding the app's session
# dependency. That is exactly our [negative control](../GLOSSARY.md#negative-control): an isolated session for the test, real commits
# for the app. What did its failures say? (`-rfE` printed one line per failure and error.)

# %%
outcomes = re.findall(r"^(?:FAILED|ERROR) (\S+) - (.*)$", broken_output, re.M)
conflicts = [test for test, message in outcomes if "409" in message]
print(f"{len(conflicts)} of {len(outcomes)} failures and errors: a 409 where a 201 was expected")
print("the other one:", *[test for test, message in outcomes if "409" not in message])
assert len(outcomes) == 9 and len(conflicts) == 8

# %% [markdown]
# All but one are a `409`: the app caught an `IntegrityError` (a name or an e-mail already taken)
# and answered "conflict". The other one is the tripwire, which found rows where it expected none.
# So leftovers are a likely cause. Not the only one: `test_a_duplicate_name_is_409` above makes an
# `IntegrityError` on purpose, in a perfectly isolated test. And on PostgreSQL there is a cause
# with no leftover row at all:
#
# **Quiz 16.4.** In an empty, isolated database, a test inserts an animal with an explicit
# `id=1` (a fixture row, as many suites have), then a second animal without an id. What happens
# on PostgreSQL?
# - **a)** The second animal gets id 2: like SQLite, the database looks at the largest id in the
#   table and adds one.
# - **b)** The explicit id is refused at once: PostgreSQL never accepts your own value for a
#   serial column.
# - **c)** An `IntegrityError` on the primary key: the id sequence never saw the explicit 1, so it
#   hands out 1 again.
# - **d)** The second insert waits for the first one's transaction to commit.

# %% tags=["quiz-answer"]
answer("16.4", "c")

# %% [markdown]
# The next cell does it, inside a rolled-back transaction of the isolation helper, so nothing
# stays. (SQLite has no [sequences](../GLOSSARY.md#sequence): it takes the largest id plus one, so there the same test
# passes, one more reason to run the suite on the database you deploy on.)

# %% tags=["nbval-ignore-output"]
engine = create_async_engine(nb.database_url)
async with tests.isolation.isolated_async_sessions(engine) as sessions:
    async with sessions() as session:
        if nb.backend == "postgresql":  # the sequence as in a fresh database, so that the cell can be re-run
            await session.execute(text("SELECT setval(pg_get_serial_sequence('animals', 'id'), 1, false)"))
        session.add(Animal(id=1, name="Luna", species="cat"))
        await session.commit()
        session.add(Animal(name="Max", species="dog"))
        try:
            await session.commit()
            outcome = f"no error: Max got id {(await session.scalar(text('SELECT max(id) FROM animals')))}"
        except IntegrityError as exc:
            outcome = f"IntegrityError: {str(exc.orig).splitlines()[0]}"
await engine.dispose()
print(f"{nb.backend}: {outcome}")
assert outcome.startswith("IntegrityError" if nb.backend == "postgresql" else "no error")

# %% [markdown]
# On PostgreSQL: `duplicate key value violates unique constraint "animals_pkey"`, in an empty,
# isolated database; a route that maps every `IntegrityError` to "name taken" would blame the wrong
# column. Sequences are not transactional, so no isolation helps: let the database choose ids, or
# move the sequence (`setval`) after inserting fixed ones.

# %% [markdown]
# **Verdict:** <!-- verdict:integrity-error-means-leftover-data -->the diagnosis is often right, the rule is too strong, and the remedy is wrong<!-- /verdict -->. A
# unique-constraint `IntegrityError` in a test often means rows left behind by an earlier test or
# run, as our negative control shows; but a test may cause one on purpose, and on PostgreSQL a row
# with an explicit id causes one with no leftover at all. A savepoint around the **test's** session
# cannot prevent leftovers: the app commits through its own sessions, which the test's transaction
# never sees. The remedy is the dependency override that hands the app sessions joined to the test's
# transaction (part 4 of the conftest), plus a check that fails when rows leak
# (`test_the_database_starts_empty`, and the row counts above).

# %% [markdown]
# ### Exercise 1: tests for the adopters routes
#
# Add `test_adopters.py` to the project: creating an adopter answers `201` with the e-mail
# lowercased; a second adopter with the same e-mail (in another case) answers `409`; an unknown id
# answers `404`. Only the `client` fixture is needed. The cell after it runs your file with the real
# pytest, in random order, against the real app and against four [broken versions](../GLOSSARY.md#broken-version) of it (your tests
# must fail against each), and checks that nothing leaked.
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
await l16.check_adopter_tests(project, nb.database_url, leftover_url=worker_urls["master"])

# %% [markdown] tags=["instructor"]
# **Instructor notes (exercise).** Usual mistakes, each named by the check: comparing only the
# status code of the creation (misses "the route forgets to lower-case e-mails"); a duplicate in the
# same case (misses "duplicate e-mails in another case are accepted"); `assert status_code >= 400`
# or `!= 201` for the duplicate (misses the 400 mutant); creating the first adopter in one test and
# expecting the 409 in another (fails against the real app in random order: exactly what isolation
# forbids); asserting a literal id such as `/adopters/1` (ids are not rolled back on PostgreSQL,
# <!-- ref:ids-after-rollback -->lesson 06<!-- /ref -->). The check is one pytest process: each test runs once per variant
# (`-p course.checks.l16_mutants` parametrizes them), so it costs one start-up.

# %% [markdown]
# ## 4. Your project, checked
#
# The ten things to get right in your own `conftest.py`, each shown breaking in the lesson named:
#
# 1. **One database for tests, never the dev one**, selected before the app is imported
#   (<!-- ref:test-database-selection -->[00](00_start_here.ipynb)<!-- /ref -->, part 1 and the negative control above).
# 2. **One database per xdist worker**, named from `PYTEST_XDIST_WORKER`, derived from a base URL
#   the controller does not overwrite (<!-- ref:database-per-worker -->[14](14_speed_and_scale.ipynb)<!-- /ref -->).
# 3. **The schema once per run** on a session-scoped engine, never per test
#   (<!-- ref:fixture-scopes -->[06](06_sequences_and_scope.ipynb)<!-- /ref -->, <!-- ref:recreate-database-per-test -->[10](10_recreate_database.ipynb)<!-- /ref -->).
# 4. **One event loop**: engine and tests on the session loop scope, set in the pytest settings
#   (<!-- ref:event-loop-scopes -->[04](04_event_loops.ipynb)<!-- /ref -->).
# 5. **A never-committed [outer transaction](../GLOSSARY.md#outer-transaction)** per test, sessions joined with
#   `join_transaction_mode="create_savepoint"` (<!-- ref:create-savepoint -->[05](05_rollback_fixtures.ipynb)<!-- /ref -->).
# 6. **The SQLite driver fix** if you test on SQLite at all (<!-- ref:sqlite-savepoint-fix -->[08](08_when_savepoints_break.ipynb)<!-- /ref -->).
# 7. **Override the exact dependency** the routes use, with a parameterless replacement, restored
#   at exit (<!-- ref:override-mistakes -->[02](02_dependency_overrides.ipynb)<!-- /ref -->).
# 8. **Routes that retry use a savepoint per attempt** (<!-- ref:savepoint-per-attempt -->[09](09_retry_routes.ipynb)<!-- /ref -->).
# 9. **Fake the outside world** at the right seam: transport for HTTP, a dependency for mail, a
#   setting for the [scheduler](../GLOSSARY.md#scheduler) (<!-- ref:mock-gateway -->[12](12_mocking.ipynb)<!-- /ref -->, <!-- ref:scheduler-off-in-tests -->[13](13_scheduled_jobs.ipynb)<!-- /ref -->).
# 10. **Prove it**: random order with a printed seed, a tripwire test, a row count after the run,
#   and a negative control that fails (<!-- ref:order-dependence -->[01](01_naive_tests.ipynb)<!-- /ref -->, this notebook).
#
# Four shapes of project need a little more (migrations, SQLModel, a sync app, expensive shared
# data), and the helper can be copied, installed or swapped for a plugin: the next lesson,
# [17 · Your own project: the helper copied or installed, and the plugin](17_your_own_project.ipynb), runs each of them.

# %% [markdown]
# Clean up: the temporary project goes, and so do the worker databases this notebook created (so
# that a leftover check in CI does not find the negative control's rows). `remove_project` (in
# `course/capstone.py`) deletes the folder, drops each database and returns those still there.

# %%
left = await capstone.remove_project(project, worker_urls.values())
print("project removed:", not project.exists(), "| worker databases left:", len(left))

# %% [markdown]
# ## Sources and further reading
#
# - SQLAlchemy 2.1: [Joining a Session into an External Transaction (such as for test
#   suites)](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites),
#   [Using SAVEPOINT](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#using-savepoint).
# - FastAPI 0.165: [Testing Dependencies with
#   Overrides](https://fastapi.tiangolo.com/advanced/testing-dependencies/),
#   [Testing](https://fastapi.tiangolo.com/tutorial/testing/) (`TestClient`),
#   [Async Tests](https://fastapi.tiangolo.com/advanced/async-tests/) (`httpx.AsyncClient`).
# - pytest-asyncio 1.5: [configuration](https://pytest-asyncio.readthedocs.io/en/stable/reference/configuration.html)
#   (`asyncio_default_fixture_loop_scope`, `asyncio_default_test_loop_scope`).
# - pytest-xdist 3.8: [identifying the worker
#   process](https://pytest-xdist.readthedocs.io/en/stable/how-to.html#identifying-the-worker-process-during-a-test);
#   pytest-randomly 5.1: [README](https://github.com/pytest-dev/pytest-randomly).
# - httpx 0.28: [transports](https://www.python-httpx.org/advanced/transports/) (`ASGITransport`);
#   respx 0.23: [guide](https://lundberg.github.io/respx/guide/).
# - PostgreSQL 15: [sequence functions](https://www.postgresql.org/docs/15/functions-sequence.html)
#   (`setval`, and why sequences are not rolled back).
# - The article of the [claim check](../GLOSSARY.md#claim-check): cmdragon, "如何在FastAPI中玩转'时光倒流'的数据库事务回滚测试？",
#   2025-09-09, [blog.cmdragon.cn](https://blog.cmdragon.cn/posts/bf9883a75ffa46b523a03b16ec56ce48/).

# %% [markdown] tags=["key-points"]
# ## Key points
# - A complete `conftest.py` for an async FastAPI + SQLAlchemy app is about a hundred lines: a test
#   database per process, one engine and schema per run, rollback isolation per test, the session
#   override, fakes for mail and payments, a lifespan-aware client.
# - `tests/isolation.py` is app-agnostic: copy it next to your conftest. It takes your session class
#   (SQLModel), has sync twins for `TestClient` apps, and layers (the next notebook).
# - Run the suite in random order with a fixed, printed seed, in file order and with `-n`: all
#   must pass and leave zero rows in every test database.
# - Keep a negative control: without the session override the same suite fails with `409`s from
#   leftover rows. An `IntegrityError` in tests often means leftover data, but not always (a
#   deliberate duplicate, a PostgreSQL sequence behind explicit ids); the cure for leftovers is the
#   override, not a savepoint around the test's own session.
# - Point `DATABASE_URL` at the test database before importing the app.
#
# **Next:** [17 · Your own project: the helper copied or installed, and the plugin](17_your_own_project.ipynb): migrations, SQLModel, sync apps,
# shared data written once, and the helper next to the `pytest-sqla` plugin. Or back to the start,
# [00 · Start here](00_start_here.ipynb), or the course's
# [README](../README.md) for the schedule and how to run the course for others.
