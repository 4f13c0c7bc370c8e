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
# # 17 · Your own project: the helper copied or installed, and the plugin

# %% [markdown] tags=["overview"]
# **Teaching:** 34 min · **Exercises:** 12 min
#
# **Prerequisites:** 16 · Capstone (this notebook runs its project again), 05 · Rollback fixtures and
# 08 · When savepoints break (the helper and its SQLite fix)
#
# **You will be able to**
# - adapt the capstone's conftest to a schema made by migrations, a SQLModel app and a sync app
#   tested with `TestClient`;
# - write expensive shared data once per module and still isolate each test (layered isolation);
# - bring the isolation helper into your project by copying it or by `pip install`, and say when
#   the `pytest-sqla` plugin is the better choice, from a run of both on the same tests.

# %%
from course.notebook import setup
from course.quiz import answer

nb = setup("17")
nb

# %% [markdown]
# Everything else this notebook uses. As in <!-- ref:real-pytest-run -->lesson 16<!-- /ref -->, pytest runs in a subprocess on a project in
# a temporary directory; `course.capstone` holds that notebook's two helpers (write the project
# from its own cells, run `python -m pytest` on it and keep its summary line).

# %%
import json
import re
import shutil
import tempfile
from pathlib import Path

from IPython.core.magic import register_cell_magic
from IPython.display import Markdown, display
from sqlalchemy import make_url

from course import benchlab, capstone, figures
from course.checks import l17
from course.database import count_rows

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~34 min teaching + 12 min exercise and quizzes).** Part 1
# rebuilds the capstone's project in a few seconds. Parts 2 and 3 are the shapes learners ask about
# (migrations, SQLModel, sync apps, shared data); a workshop short of time can show only the run
# cell of each. Part 4 is the comparison: let the room predict what pytest-sqla does to the sample
# app out of the box before running the side-by-side cell. If a run cell fails with a traceback
# instead of a summary, print `run.stdout` in a new cell.

# %% [markdown]
# ## 1. The capstone's project, again
#
# The project of <!-- ref:capstone-project -->lesson 16<!-- /ref -->, file by file as that notebook wrote it (the exercise's file aside),
# in a fresh temporary directory: the helper `isolation.py`, `pytest.ini`, [`conftest.py`](../GLOSSARY.md#conftestpy), two test
# files.

# %%
project = Path(tempfile.mkdtemp(prefix="own-project-"))
print(capstone.write_project(project))

# %% [markdown]
# The conftest gives each pytest process its own database: `<name>_master` in a serial run, next to
# this notebook's. That is where every run below writes, and where we count what is left.

# %%
def sibling(url: str, suffix: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        parsed = parsed.set(database=str(path.with_name(f"{path.stem}_{suffix}{path.suffix}")))
    else:
        parsed = parsed.set(database=f"{parsed.database}_{suffix}")
    return parsed.render_as_string(hide_password=False)


test_database_url = sibling(nb.database_url, "master")
stem = lambda url: Path(make_url(url).database).stem  # noqa: E731 (SQLite: the file name without .sqlite)
print("the runs write to this notebook's database name +", repr(stem(test_database_url).removeprefix(stem(nb.database_url))))

# %% [markdown]
# The `%%project_file NAME` magic of <!-- ref:capstone-project -->lesson 16<!-- /ref -->, to add files to the project (`--append` adds to one).

# %%
@register_cell_magic
def project_file(line, cell):
    name, *flags = line.split()
    path = project / name
    with path.open("a" if "--append" in flags else "w") as file:
        file.write(cell)
    print(f"{'added to' if '--append' in flags else 'wrote'} {path.name} ({len(path.read_text().splitlines())} lines)")

# %% [markdown]
# One run of the whole project first, as <!-- ref:capstone-project -->lesson 16<!-- /ref --> ended: the starting point is green.

# %%
run, summary = capstone.pytest_run(project, nb.database_url, "-p", "no:sqla")
print(summary)
assert (run.returncode, summary) == (0, "13 passed"), run.stdout[-2000:]

# %% [markdown]
# Thirteen passed, as in <!-- ref:capstone-project -->lesson 16<!-- /ref -->. Now the shapes of project that need a little more.

# %% [markdown]
# ## 2. Migrations, SQLModel and sync apps
# <!-- topic:migrations-sqlmodel-sync-apps -->
#
# **A schema made by migrations (Alembic).** Migrate once per run, in a wide fixture, then isolate
# each test as before: migrations are DDL, far too slow per test (<!-- ref:isolation-benchmark -->lesson 14<!-- /ref -->'s drop/create). Alembic
# is not in the learner's install, so `Base.metadata.create_all` stands in for the migration. With
# Alembic, migrate on a connection of the test's engine: set `config.attributes["connection"]` to it,
# then `command.upgrade(config, "head")`, with an `env.py` that migrates on that connection (Alembic's
# cookbook, "Sharing a Connection"). An `env.py` that opens its own engine migrates the database
# `alembic.ini` names, not the test's. The helper's docstring has the recipe; the repository tests it.
# The snippet is sync: it serves the next two cases too.

# %%
# %%project_file test_own_sync.py
import os

import pytest
from sqlalchemy import create_engine, make_url
from isolation import fix_sqlite_savepoints, isolated_sessions

from app.models import Animal, Base


@pytest.fixture(scope="module")
def sync_engine():
    url = make_url(os.environ["DATABASE_URL"])  # the conftest pointed it at this process's database
    sync_driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    engine = create_engine(url.set(drivername=sync_driver))
    fix_sqlite_savepoints(engine)  # before the first connection
    Base.metadata.create_all(engine)  # with Alembic: command.upgrade(config, "head"), once
    yield engine
    engine.dispose()

# %% [markdown]
# **SQLModel.** SQLModel apps call `session.exec(...)`, which SQLAlchemy's `Session` does not have
# (`AttributeError: 'Session' object has no attribute 'exec'`). The helper takes the session class
# to make: `isolated_sessions(engine, class_=sqlmodel.Session)` (async:
# `isolated_async_sessions(engine, class_=sqlmodel.ext.asyncio.session.AsyncSession)`). Version
# note: SQLModel 0.0.50 installs with the pinned SQLAlchemy 2.1.9.

# %%
# %%project_file test_own_sync.py --append


@pytest.mark.parametrize("run", [1, 2])
def test_sqlmodel_sessions_isolate(sync_engine, run):
    import sqlmodel

    with isolated_sessions(sync_engine, class_=sqlmodel.Session) as factory:
        with factory() as session:
            assert session.exec(sqlmodel.select(Animal)).all() == []  # the other run's row is gone
            session.add(Animal(name="Luna", species="cat"))
            session.commit()  # releases a SAVEPOINT: nothing reaches the database
            assert [a.name for a in session.exec(sqlmodel.select(Animal))] == ["Luna"]

# %% [markdown]
# **Quiz 17.1.** A sync app's test writes `client = TestClient(sync_app)` at the top of the test and
# never uses `with`. The requests work. What does not happen?
# - **a)** The dependency override: it is only read inside a `with` block.
# - **b)** The app's lifespan (its startup and shutdown code) never runs.
# - **c)** The rollback: the sync session commits for real without a `with` block around the client.
# - **d)** Nothing is missing; `with` only closes the client earlier.

# %% tags=["quiz-answer"]
answer("17.1", "b")

# %% [markdown]
# **A sync app with `TestClient`.** The sync twins: `isolated_sessions`, `sync_session_dependency`,
# and `with TestClient(app)` to run the [lifespan](../GLOSSARY.md#lifespan). The snippet's app is a small sync app on the same
# tables.

# %%
# %%project_file test_own_sync.py --append


from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from isolation import override_dependency, sync_session_dependency

sync_app = FastAPI()


def get_db():  # the app's real dependency: a session on the app's own engine
    raise RuntimeError("the test forgot the override")


@sync_app.post("/animals", status_code=201)
def add_animal(name: str, db: Session = Depends(get_db)):
    db.add(Animal(name=name, species="dog"))
    db.commit()
    return {"names": sorted(db.scalars(select(Animal.name)))}


@pytest.mark.parametrize("run", [1, 2])
def test_a_sync_app_with_testclient(sync_engine, run):
    with isolated_sessions(sync_engine) as factory:
        with override_dependency(sync_app, get_db, sync_session_dependency(factory)):
            with TestClient(sync_app) as client:
                assert client.post("/animals", params={"name": "Rex"}).json() == {"names": ["Rex"]}

# %% [markdown]
# ## 3. Expensive shared data, written once: layered isolation
# <!-- topic:layered-isolation -->
#
# Some data is expensive to make (a user with a hashed password, a catalogue of a thousand rows);
# made per test, it costs per test. Django solves this with
# `TestCase.setUpTestData`: the data is created **once** for a test class, inside an [outer
# transaction](../GLOSSARY.md#outer-transaction), and each test runs inside a [SAVEPOINT](../GLOSSARY.md#savepoint) rolled back after it: it sees the shared data,
# may change it, and the next test finds it intact. `tests/isolation.py` has
# the same two layers, [layered isolation](../GLOSSARY.md#layered-isolation): `isolated_async_sessions(engine)` for the outer transaction, and
# `nested_async_sessions(factory)` for one test's SAVEPOINT on top of it:
#
# ```mermaid
# sequenceDiagram
#     participant M as module fixture (once)
#     participant T as each test
#     participant D as database connection
#     M->>D: BEGIN (never committed)
#     M->>D: INSERT shared rows
#     T->>D: SAVEPOINT (nested_async_sessions)
#     T->>D: the test's writes, its commits = RELEASE of inner savepoints
#     T->>D: ROLLBACK TO SAVEPOINT (the test's writes are gone)
#     Note over T,D: the next test starts from the shared rows again
#     M->>D: ROLLBACK after the module's last test, 0 rows left
# ```
#
# The module fixture writes two animals once and logs each run; this module's `sessions` (which
# the conftest's `client` uses) layers each test on top. A module- or [session-scoped](../GLOSSARY.md#function-scoped-fixture) async fixture
# needs `loop_scope="session"`, so that its connection lives on the loop the tests use.

# %%
# %%project_file test_own_layered.py
from pathlib import Path

import pytest
import pytest_asyncio
from isolation import isolated_async_sessions, nested_async_sessions

from app.models import Animal

CREATED = Path(__file__).with_name("shared_data_created.log")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shelter(engine):
    async with isolated_async_sessions(engine) as outer:
        async with outer() as session:  # closed before the tests run
            session.add_all([Animal(name="Rex", species="dog"), Animal(name="Luna", species="cat")])
            await session.commit()  # into the outer transaction, not the database
        with CREATED.open("a") as log:
            log.write("shared animals created\n")
        yield outer


@pytest.fixture
async def sessions(shelter):  # replaces the conftest's `sessions` in this module only
    async with nested_async_sessions(shelter) as factory:
        yield factory

# %% [markdown]
# The tests: each sees exactly the two shared animals, adds its own; one tries a shared name again.

# %%
# %%project_file test_own_layered.py --append


async def names(client) -> list[str]:
    return sorted(animal["name"] for animal in (await client.get("/animals")).json())


@pytest.mark.parametrize("run", [1, 2, 3])
async def test_each_test_starts_from_the_shared_data(client, run):
    assert await names(client) == ["Luna", "Rex"]  # no other test's Max
    assert (await client.post("/animals", json={"name": "Max", "species": "dog"})).status_code == 201
    assert await names(client) == ["Luna", "Max", "Rex"]


async def test_the_shared_rows_are_real_rows(client):
    assert (await client.post("/animals", json={"name": "Rex", "species": "cat"})).status_code == 409

# %% [markdown]
# Now the four cases, in random order: the sync file (migrate once, SQLModel, `TestClient`) and the
# layered file. Then the proofs: how many times the shared data was created, and the rows left.

# %%
run, summary = capstone.pytest_run(project, nb.database_url, "test_own_sync.py", "test_own_layered.py",
                                   "-p", "randomly", "--randomly-seed=12", "-p", "no:sqla")
created = (project / "shared_data_created.log").read_text().splitlines()
rows = await count_rows(test_database_url)
print(summary)
print("shared data created:", len(created), "time(s) for 4 tests")
print("rows left in the test database:", rows)
assert (run.returncode, summary) == (0, "8 passed"), run.stdout[-2000:]
assert len(created) == 1 and sum(rows.values()) == 0

# %% [markdown]
# Eight passed: the SQLModel and `TestClient` runs each found an empty table, each layered test
# found the two shared animals and none of its neighbours' Max, and the shared data was written once
# for four tests; nothing reached the database. Two rules (see the helper's docstring): every
# session that writes during the layer comes from its factory, and the session that wrote the
# shared data is closed before the tests run.

# %% [markdown]
# **Quiz 17.2.** The same layered file run with `pytest -n 2` (two xdist workers, tests spread over
# both). How many times is the shared data written?
# - **a)** Once: a module-scoped fixture runs once per run, whatever the number of processes.
# - **b)** Four times, once per test, because each worker has its own database.
# - **c)** Never: under xdist module-scoped fixtures are skipped.
# - **d)** Up to twice: once in each worker process that runs at least one of the module's tests.

# %% tags=["quiz-answer"]
answer("17.2", "d")

# %% [markdown]
# A fixture's scope is counted per process: each [xdist](../GLOSSARY.md#xdist-worker) worker is a separate pytest with its own
# fixtures (and, with the capstone's conftest, its own database).

# %% [markdown]
# What it saves, from the stored run of the course's layered benchmark (`python -m bench.layered`:
# the same tests with an expensive set-up, a password hash, per test or written once):

# %% tags=["nbval-ignore-output"]
display(Markdown(benchlab.layered_table()))

# %% [markdown]
# ## 4. Copied, installed, or a plugin
# <!-- topic:helper-or-plugin -->
#
# The helper reaches your project in one of two ways, the same file either way:
#
# - **copied**: `cp tests/isolation.py yourproject/tests/` (what part 1 did), then
#   `from isolation import ...` or, when your tests have names of their own, as a namespace:
#   `from tests import isolation as iso`;
# - **installed**: `pip install ./packaging/rollback-isolation` from a checkout of this repository
#   gives the module `rollback_isolation`, byte for byte the same file (`import rollback_isolation as iso`).
#
# The other way is a plugin someone else maintains: [`pytest-sqla`](https://pypi.org/project/pytest-sqla/)
# 0.0.2 (pinned in this course's requirements) gives fixtures such as `sqla_async_sessionmaker`, a
# factory of sessions joined to a per-test transaction, configured by `PYTEST_SQLA_URL` (or
# `--sqla-url`, or `sqla_url` in the pytest settings). Its tests are our tests: a second copy of
# `test_animals.py` in a sub-directory whose conftest installs the plugin's factory as the app's
# session dependency. The dict its `sqla_session_options` fixture returns comes from an environment
# variable, so that one project serves every run below.

# %% [markdown]
# **Quiz 17.4.** Before the plugin, one case for the copied or installed helper. Your test suite
# uses the helper's `override_dependency`, and a route opens a session
# from the app's own `SessionLocal` instead of the dependency. What happens?
# - **a)** The request fails with `IsolationBreach`, naming what to replace, before anything is written.
# - **b)** The write is committed to the test database and the next test finds it.
# - **c)** The write is rolled back with the test, like every other.
# - **d)** pytest stops the whole run at once with a usage error in the conftest.

# %% tags=["quiz-answer"]
answer("17.4", "a")

# %% [markdown]
# Now the plugin's project: a sub-directory of the project, with the same tests.

# %%
plugin_project = project / "plugin"
plugin_project.mkdir()
shutil.copy(project / "pytest.ini", plugin_project)
shutil.copy(project / "test_animals.py", plugin_project)
print(sorted(p.name for p in plugin_project.iterdir()))

# %% [markdown]
# The plugin's conftest. The [override](../GLOSSARY.md#dependency-override) is written by hand (the plugin has no helper for it), and
# the client runs the lifespan as the capstone's does.

# %%
# %%project_file plugin/conftest.py
import json
import os

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from app.db import get_session
from app.main import app


@pytest.fixture(scope="session")
def sqla_session_options():
    return json.loads(os.environ.get("SESSION_OPTIONS", "{}"))


@pytest.fixture
async def client(sqla_async_sessionmaker):
    async def get_test_session():
        async with sqla_async_sessionmaker() as session:
            yield session

    app.dependency_overrides[get_session] = get_test_session
    try:
        async with LifespanManager(app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http
    finally:
        del app.dependency_overrides[get_session]

# %% [markdown]
# **Quiz 17.3.** The plugin's sessions are made with SQLAlchemy's defaults (`sqla_session_options`
# returns `{}` out of the box). The sample app's own `async_sessionmaker` is not. What do the nine
# tests of `test_animals.py` do under the plugin's fixtures?
# - **a)** All nine pass: the sessions still join the per-test transaction, so nothing changes.
# - **b)** Every test fails at once: the plugin refuses to start without `sqla_metadata`.
# - **c)** The tests that create an animal fail: after `commit()` the route reads the animal's
#   attributes, which the commit expired, and loading them again is I/O outside an `await`.
# - **d)** The second test that creates Luna gets a 409: the plugin commits.

# %% tags=["quiz-answer"]
answer("17.3", "c")

# %% [markdown]
# The side-by-side run: the same nine tests, by the real pytest, under the course's helper (the
# capstone's conftest, `-p no:sqla`), then under pytest-sqla out of the box, then under pytest-sqla
# with `{"expire_on_commit": False}`. After each run, the rows left in the test database. The
# plugin runs with `-p sqla` (this repository turns the plugin off everywhere else: it loads in every
# pytest process once installed) and `-o sqla_schema=none`: the helper's run has made the schema, as
# your migrations would.

# %%
runs = {}
plugin_args = ("-p", "sqla", "-o", "sqla_schema=none")
for label, directory, args, options in [
        ("helper (tests/isolation.py)", project, ("test_animals.py", "-p", "no:sqla"), None),
        ("pytest-sqla, out of the box", plugin_project, plugin_args, {}),
        ("pytest-sqla, expire_on_commit=False", plugin_project, plugin_args, {"expire_on_commit": False})]:
    env = None if options is None else {"PYTEST_SQLA_URL": test_database_url, "SESSION_OPTIONS": json.dumps(options)}
    run, summary = capstone.pytest_run(directory, nb.database_url, *args, env=env)
    left = sum((await count_rows(test_database_url)).values())
    runs[label] = (run, summary)
    print(f"{label:38} {summary:22} rows left: {left}")
    assert left == 0

# %% [markdown]
# The helper: nine passed, nothing left. The plugin out of the box: six of nine fail, nothing left
# either (its rollback works); the error is not about isolation at all. What the failures say (on
# SQLite the same words come with the statement that needed the I/O, `SAVEPOINT sa_savepoint_N`):

# %%
failed = runs["pytest-sqla, out of the box"][0].stdout
error = re.search(r"MissingGreenlet\)?:? (greenlet_spawn[^.]*\.)", failed)  # PostgreSQL and SQLite word it alike
print("MissingGreenlet:", error.group(1))
assert runs["pytest-sqla, out of the box"][1] == "6 failed, 3 passed"
assert runs["pytest-sqla, expire_on_commit=False"][1] == runs["helper (tests/isolation.py)"][1] == "9 passed"

# %% [markdown]
# `MissingGreenlet`: the route returned the animal it had just committed; FastAPI read its `id` and
# `name` to build the response; the plugin's session had expired them on commit (SQLAlchemy's
# default), so reading them meant a query, in synchronous code, which async SQLAlchemy cannot do.
# The app's own sessionmaker says `expire_on_commit=False`, and so does the helper unless told
# otherwise (it was written for async apps); the plugin keeps SQLAlchemy's default until its
# `sqla_session_options` fixture says more. With that one option it passes the same nine tests.

# %% [markdown]
# ### Exercise 1: the plugin's session options
#
# Give the dict that the plugin project's `sqla_session_options` should return for the sample app.
# The check runs the nine tests under pytest-sqla's fixtures with your dict, by the real pytest,
# and counts the rows left. Several values are plausible; only the test run decides.
#
# > Hint: `app/db.py` makes the app's own sessions; compare its `async_sessionmaker(...)` call with
# > SQLAlchemy's defaults.

# %%
SESSION_OPTIONS = ...
# BEGIN SOLUTION
SESSION_OPTIONS = {"expire_on_commit": False}
# END SOLUTION

# %%
await l17.check_session_options(SESSION_OPTIONS, plugin_project, nb.database_url, test_database_url)

# %% [markdown] tags=["instructor"]
# **Instructor notes (exercise).** Usual answers, each named by the check: `{}` (the plugin's
# default), `{"expire_on_commit": "False"}` (a non-empty string is true), `{"autoflush": False}` (a
# real option, not the one that matters here), and `join_transaction_mode` or `bind`, which the
# plugin refuses: every session is bound to the test's connection.

# %% [markdown]
# What it costs, from the stored run of the course's floor benchmark (`python -m bench.floor
# --pytest-sqla DIR`: 150 tests of 1 or 3 requests, CPU of the pytest process, median of 3 runs):
# pytest-sqla takes <!-- fig:sqla.postgresql.r1.x_fixture -->1.17 ×<!-- /fig --> the helper's CPU per
# test on PostgreSQL with one request per test (<!-- fig:sqla.postgresql.r3.x_fixture -->1.16 ×<!-- /fig -->
# with three), and <!-- fig:sqla.sqlite.r1.x_fixture -->1.17 ×<!-- /fig --> on SQLite
# (<!-- fig:sqla.sqlite.r3.x_fixture -->1.07 ×<!-- /fig --> with three). The same figures, printed from
# the results file:

# %%
for db in ("postgresql", "sqlite"):
    print(db, {f"{n} request(s)": figures.text(f"sqla.{db}.r{n}.x_fixture") for n in (1, 3)})

# %% [markdown]
# A few tenths of a millisecond per test either way: the choice is about what each gives.
#
# | | the helper (`tests/isolation.py`, `rollback_isolation`) | `pytest-sqla` 0.0.2 |
# |---|---|---|
# | what you add | one file (copied) or one package (installed); your conftest calls it | a plugin: fixtures appear once it is installed |
# | configuration | code in your conftest (engine, options, session class) | `--sqla-url` / `PYTEST_SQLA_URL` / `sqla_url`, `sqla_metadata`, `sqla_schema`; options by overriding fixtures |
# | layers (shared data written once) | `nested_async_sessions(outer)`, part 3 | per-test fixtures only |
# | dependency shapes | `session_dependency`, `sessionmaker_dependency`, sync twins, `client.portal` recipes | you write the override yourself (above) |
# | an override that does not apply | the request fails loudly with `IsolationBreach`, naming the dependency | a breach of its transaction fails the test's teardown (`IsolationError`) |
# | xdist | one database per worker (`create_worker_database`) | one shared database (SQLite: a file per worker) |
# | databases | tested here on PostgreSQL and SQLite | also names MySQL and MariaDB drivers (not run in this course) |
# | schema | yours to make (as migrations would) | creates and drops `sqla_metadata`'s tables, or `sqla_schema = none` |
#
# **When to choose which.** A plugin, when you want fixtures without owning code, your sessions
# are plain ones, and one database for the run is fine: set the URL, override `sqla_session_options`
# to match your app, write the dependency override. The helper, when you need shared data written once, a
# loud failure when an override misses, a database per xdist worker, or sync tests on an async app;
# or when you would rather read and own sixty lines than add a dependency.

# %% [markdown]
# Clean up: the temporary project goes, and so does the test database the runs created.

# %%
left = await capstone.remove_project(project, [test_database_url])
print("project removed:", not project.exists(), "| test database left:", len(left))

# %% [markdown]
# ## Sources and further reading
#
# - SQLAlchemy 2.1: [Joining a Session into an External Transaction (such as for test
#   suites)](https://docs.sqlalchemy.org/en/21/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites),
#   [asyncio: preventing implicit IO](https://docs.sqlalchemy.org/en/21/orm/extensions/asyncio.html#preventing-implicit-io-when-using-asyncsession)
#   (`expire_on_commit=False`, `MissingGreenlet`).
# - pytest-sqla 0.0.2: [PyPI](https://pypi.org/project/pytest-sqla/0.0.2/) (its fixtures' docstrings
#   are its reference).
# - SQLModel: [testing with a session override](https://sqlmodel.tiangolo.com/tutorial/fastapi/tests/);
#   Alembic: [running migrations from code](https://alembic.sqlalchemy.org/en/latest/api/commands.html).
# - Django: [`TestCase.setUpTestData`](https://docs.djangoproject.com/en/stable/topics/testing/tools/#django.test.TestCase.setUpTestData),
#   the idea behind part 3.
# - This repository's README, "Use the isolation helper in your own project": every recipe of the
#   helper, each proved by a test.

# %% [markdown] tags=["key-points"]
# ## Key points
# - Migrate once per run, isolate per test; SQLModel needs `class_=sqlmodel.Session`; a sync app
#   uses the sync twins and `with TestClient(app)`.
# - Shared data written once per module in an outer transaction, a SAVEPOINT per test on top: each
#   test sees the shared rows, none sees its neighbours'.
# - The helper is one file: copy it, or `pip install ./packaging/rollback-isolation`.
# - `pytest-sqla` isolates the same tests at a similar CPU cost, once its sessions are made like
#   your app's (`expire_on_commit=False` for this one); it lacks layers, dependency helpers and
#   the loud failure of an override that does not apply.
#
# **Previous:** [16 · Capstone: your own conftest.py](16_capstone.ipynb). **The end.** Back to the start:
# [00 · Start here](00_start_here.ipynb), or the course's [README](../README.md).
