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
# # 15 · Why is my suite slow?

# %% [markdown] tags=["overview"]
# **Teaching:** 37 min · **Exercises:** 12 min
#
# **Prerequisites:** 05 · Rollback fixtures, 14 · Speed and scale
#
# **You will be able to**
# - find the slow phase of a test suite with `pytest --durations` (fixtures' setup and teardown, or
#   the tests themselves), and profile a fixture with `cProfile` (or pyinstrument) to read off the one
#   function that costs;
# - explain why `httpx.AsyncClient()` in the app's lifespan made every test slow, and why building
#   its TLS context once per process is safe while a shared *mutable* object is not;
# - measure pytest's start-up with `python -X importtime` and switch off a plugin that a run does not
#   need (`-p no:nbval`);
# - guard a speed fix with a test that counts work (contexts built, modules imported), never time.

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("15", traceback="line")
nb

# %% [markdown]
# Everything else this notebook uses. `setup("15")` has pointed `DATABASE_URL` at this notebook's own,
# empty database, so importing `app` now is safe.

# %%
import cProfile
import inspect
import pstats
import ssl
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path
from unittest.mock import patch

# %%
import certifi
import httpx
import pytest
import respx
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

import app.http
from app.config import get_settings
from app.db import get_session
from app.main import app as shelter_app
from app.models import Base
from app.services.notifications import get_notifier
from course.checks import l15
from course.exercise import check_test
from course.notebook import run_async
from tests.fakes import RecordingNotifier
from tests.isolation import fix_sqlite_savepoints, isolated_async_sessions, override_dependency, session_dependency

# %% [markdown] tags=["instructor"]
# **Instructor notes (whole notebook, ~37 min teaching + 12 min exercise and quizzes).** The story is a real one:
# this course's own reference suite ran about 20 tests per second until we profiled it, and the
# cause was one line in the app's lifespan. Part 1 (~8 min): let the room guess where the time goes
# before running `--durations` (quiz 11.1); most people guess the database. Part 2 (~7 min): the
# profile; say clearly that the fix is in the app, not in the tests. Part 3 (~8 min): why sharing the
# TLS context is safe, and the mutable counter-example (quiz 11.2). Exercise (~10 min). Parts 4 and 5
# (~10 min): what a request costs now, and start-up; the claim check (~4 min). Numbers printed in cells
# vary with the machine and its load: discuss ratios, and the counts (contexts built, modules imported), which do not vary.
# Nothing here differs between SQLite and PostgreSQL except the absolute timings.

# %% [markdown]
# ## 1. A suite, and where its time goes
#
# The fixtures are like those of `tests/conftest.py`: a session-wide engine, rollback-isolated sessions
# per test (<!-- ref:rollback-fixture -->lesson 05<!-- /ref -->), a recording notifier, [respx](../GLOSSARY.md#respx) for the payment provider, and a `client` that
# enters the app's [lifespan](../GLOSSARY.md#lifespan) for every test, so that each test gets a fresh `app.state`.
# (`tests/conftest.py` now enters it once per process, which is cheaper still; here it stays per
# test, because what a lifespan costs is what this lesson hunts.)

# %%
@pytest.fixture(scope="session")
async def engine():
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    if engine.dialect.name == "sqlite":  # as the app does: foreign keys only when asked
        event.listen(engine.sync_engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine):
    async with isolated_async_sessions(engine) as factory:
        yield factory


@pytest.fixture
async def client(sessions):
    notifier = RecordingNotifier()
    with (override_dependency(shelter_app, get_session, session_dependency(sessions)),
          override_dependency(shelter_app, get_notifier, lambda: notifier),
          respx.mock(base_url=get_settings().payment_gateway_url, assert_all_called=False)):
        async with LifespanManager(shelter_app) as started:
            async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://test") as http:
                yield http

# %% [markdown]
# Twenty small tests, each one request that writes and one that reads back:

# %%
@pytest.mark.parametrize("n", range(20))
async def test_create_then_read(client, n):
    created = await client.post("/animals", json={"name": f"Rex {n}", "species": "dog"})
    assert created.status_code == 201
    read = await client.get(f"/animals/{created.json()['id']}")
    assert read.json()["name"] == f"Rex {n}"

# %% [markdown]
# Our app, before this lesson's fix, created its outgoing HTTP client in the lifespan with
# `httpx.AsyncClient(timeout=...)` and nothing else. Today's `app/main.py` passes
# `verify=tls_context()`. The context manager below puts the old behaviour back for a moment:
# `httpx.create_ssl_context()` is what `httpx.AsyncClient()` calls when it gets no `verify=`.

# %%
def the_old_lifespan():
    """The app as it was: every lifespan builds its HTTP client's TLS context from scratch."""
    return patch("app.main.tls_context", httpx.create_ssl_context)

# %% [markdown]
# `pytest --durations=N` lists the N slowest phases (setup, call, teardown) of a run. Before you run
# it on the old app:
#
# **Quiz 15.1.** Each test above makes two requests that hit the database. Which phase do you expect
# at the top of the `--durations` list?
# - **a)** `call`: the two requests and their SQL are the work of a test.
# - **b)** `teardown`: rolling back the outer transaction.
# - **c)** `setup`: whatever the test's fixtures do before its body runs.
# - **d)** none stands out: the three phases take about the same time.

# %% tags=["quiz-answer"]
answer("15.1", "c")

# %% tags=["nbval-ignore-output"]
with the_old_lifespan():
    run_tests("test_create_then_read", args=["--durations=5", "--durations-min=0"])

# %% [markdown]
# The top of the list is `setup`, every time, and it is several times a test's `call`. (The numbers
# vary from run to run and machine to machine; the order does not.) Setup is the fixtures:
# the engine once, then per test an [outer transaction](../GLOSSARY.md#outer-transaction), the [dependency overrides](../GLOSSARY.md#dependency-override), respx, and the
# lifespan. To tell them apart, profile one of them.

# %% [markdown]
# ## 2. Profile the suspect
#
# `cProfile` (standard library) records every function call of the thread it runs in. We enter the
# old lifespan 20 times under it and print the five functions that took the most time of their own
# (`tottime`). [pyinstrument](https://pyinstrument.readthedocs.io) gives the same answer as a tree,
# with less overhead; it is not installed with the course.

# %%
async def enter_lifespan(times: int) -> None:
    for _ in range(times):
        async with LifespanManager(shelter_app):
            pass


def profile(coroutine_function, *args) -> pstats.Stats:
    async def profiled():
        profiler = cProfile.Profile()  # profiles the thread that enables it: the loop's
        profiler.enable()
        await coroutine_function(*args)
        profiler.disable()
        return pstats.Stats(profiler)

    return run_async(profiled())


with the_old_lifespan():
    old_profile = profile(enter_lifespan, 20)

# %% tags=["nbval-ignore-output"]
old_profile.sort_stats("tottime").print_stats(5);

# %% [markdown]
# One function stands out: `load_verify_locations`, which reads and parses the whole certificate
# bundle into the new context, once per lifespan. The assertion below checks it is at the top
# (that does not depend on the machine's speed):

# %%
def own_time_by_function(stats: pstats.Stats) -> dict[str, float]:
    return {name: tottime for (_, _, name), (_, _, tottime, _, _) in stats.stats.items()}


own = own_time_by_function(old_profile)
top = max(own, key=own.get)
share = own[top] / sum(own.values())
print(f"the most expensive function: {top}")
assert "load_verify_locations" in top

# %% tags=["nbval-ignore-output"]
print(f"its share of the time of entering the lifespan: {share:.0%}")

# %% [markdown]
# How big is what it loads? Certifi's bundle, which httpx uses by default:

# %% tags=["nbval-ignore-output"]
bundle = Path(certifi.where()).read_text()
print(f"{bundle.count('BEGIN CERTIFICATE')} certificates, {len(bundle) // 1024} KiB of PEM, parsed for every new context")
assert bundle.count("BEGIN CERTIFICATE") > 100

# %% [markdown]
# ## 3. The fix: build the context once per process
# <!-- topic:tls-context-once -->
#
# An `ssl.SSLContext` holds settings and trusted certificates; httpx only reads it when it opens a
# connection. One per process is enough, and httpx accepts a ready one as `verify=`. That is all
# `app/http.py` does:

# %%
print(inspect.getsource(app.http.tls_context))
assert app.http.tls_context() is app.http.tls_context()  # built on the first call, the same object after

# %% [markdown]
# Side by side: the old lifespan and today's, entered the same number of times, interleaved so that
# the machine's load hits both alike. We count contexts built (with `patch(..., wraps=...)`, which
# records calls and still runs the real function) and time the rounds.

# %%
async def timed_rounds(rounds: int, per_round: int) -> dict[str, float]:
    spent = {"old": 0.0, "new": 0.0}
    for _ in range(rounds):
        for which in ("old", "new"):
            started = time.perf_counter()
            if which == "old":
                with the_old_lifespan():
                    await enter_lifespan(per_round)
            else:
                await enter_lifespan(per_round)
            spent[which] += time.perf_counter() - started
    return spent


with patch("ssl.create_default_context", wraps=ssl.create_default_context) as contexts_built:
    spent = run_async(timed_rounds(rounds=5, per_round=6))
print(f"{contexts_built.call_count} TLS contexts built for 30 old and 30 new lifespans")
assert contexts_built.call_count == 30  # the old ones only

# %% tags=["nbval-ignore-output"]
for which, seconds in spent.items():
    print(f"{which}: {seconds / 30 * 1000:.2f} ms per lifespan")
print(f"the old lifespan takes {spent['old'] / spent['new']:.0f} × as long as today's")
assert spent["old"] > 2 * spent["new"]  # in fact far more; a generous margin for a loaded machine

# %% [markdown]
# Entering the lifespan now costs a fraction of a millisecond (the printed numbers), so the course's
# fixtures keep entering it per test. The counts are the robust proof: 30 contexts for 30 old
# lifespans, none for 30 new ones.
#
# ```mermaid
# flowchart LR
#     P["process start"] --> T["tls_context(): built once, then only read"]
#     T --> L1["test 1: lifespan -> new AsyncClient(verify=context)"]
#     T --> L2["test 2: lifespan -> new AsyncClient(verify=context)"]
#     L1 --> S1["app.state of test 1, closed at teardown"]
#     L2 --> S2["app.state of test 2, closed at teardown"]
# ```
#
# What stays per test: the lifespan, so `app.state.http_client` and the [scheduler](../GLOSSARY.md#scheduler) are new for each
# test and closed after it; the dependency overrides; the outer transaction. What is shared across the
# process: one `SSLContext`.

# %% [markdown]
# What if a test does change the shared object? Two tests, run in this order:

# %%
async def test_a_turns_off_hostname_checks(client):
    app.http.tls_context().check_hostname = False  # "just for my self-signed test server"


async def test_b_expects_the_default(client):
    hostname_checks = app.http.tls_context().check_hostname
    assert hostname_checks, "hostname checks are off for every client"

# %% [markdown]
# **Quiz 15.2.** Each test has its own lifespan, so its own `httpx.AsyncClient`. What happens to
# `test_b_expects_the_default` when it runs after `test_a_turns_off_hostname_checks`?
# - **a)** It passes: its lifespan built a fresh client, with the default settings.
# - **b)** It fails: both clients were given the same context object, and test A changed it.
# - **c)** It passes: `SSLContext` settings are copied into each client when it is created.
# - **d)** Test A fails first: an `SSLContext` in use refuses changes.

# %% tags=["quiz-answer"]
answer("15.2", "b")

# %% jupyter={"source_hidden": true}
try:
    run_tests("test_a_turns_off_hostname_checks", "test_b_expects_the_default", expect="failed")
finally:
    app.http.tls_context().check_hostname = True  # repair the process-wide object
assert app.http.tls_context().check_hostname

# %% [markdown]
# Test A passed and test B failed: a new client does not mean new settings when the settings object is
# shared. The rule for anything you share between tests (a [TLS context](../GLOSSARY.md#tls-context), a loaded model, a compiled
# schema): nobody changes it. A test that needs other TLS settings builds its own context and passes
# it to its own client.

# %% [markdown]
# ### Exercise 1: a test that keeps the fix fixed
#
# A colleague could bring the old line back without anyone noticing: every test still passes, only
# slower. Write `test_the_lifespan_builds_no_tls_context`: enter the app's lifespan a few times and
# assert that no TLS context was built. Count, do not time: a time bound passes on a fast laptop and
# fails on a loaded CI machine.
#
# > Hint: `with patch("ssl.create_default_context", wraps=ssl.create_default_context) as built:`
# > counts calls in `built.call_count`. Enter the lifespan once *before* you count: the first client
# > of a process builds the one shared context.

# %%
async def test_the_lifespan_builds_no_tls_context():
    # BEGIN SOLUTION
    async with LifespanManager(shelter_app):  # the process's first client may build the one context
        pass
    with patch("ssl.create_default_context", wraps=ssl.create_default_context) as built:
        for _ in range(3):
            async with LifespanManager(shelter_app):
                pass
    assert built.call_count == 0
    # END SOLUTION


check_test(
    "test_the_lifespan_builds_no_tls_context",
    mutants=l15.MUTANTS,  # the old app, and a tls_context() without its cache
    hint="count calls of ssl.create_default_context while you enter the lifespan (after a warm-up entry)",
)

# %% [markdown]
# ## 4. Where does the rest of a test go?
#
# With the lifespan cheap, what is a test made of? We profile 100 tests' worth of work, written as
# one loop so that the profiler sees it all in one thread: a rollback-isolated session factory, the
# override, the lifespan, a client, one `POST /animals`. Then we sum each function's own time by the
# package it belongs to.

# %%
async def single_request_tests(count: int) -> None:
    engine = create_async_engine(nb.database_url)
    fix_sqlite_savepoints(engine)
    for n in range(count):
        async with isolated_async_sessions(engine) as factory:
            with override_dependency(shelter_app, get_session, session_dependency(factory)):
                async with LifespanManager(shelter_app) as started:
                    async with AsyncClient(transport=ASGITransport(app=started.app), base_url="http://t") as http:
                        assert (await http.post("/animals", json={"name": f"A{n}", "species": "cat"})).status_code == 201
    await engine.dispose()


request_profile = profile(single_request_tests, 100)

# %% [markdown]
# A helper that names the package of each function (its file under `site-packages`, or the standard
# library module); waiting for I/O (`select`/`epoll`, the queue of aiosqlite's thread) gets its own line.

# %% jupyter={"source_hidden": true}
GROUPS = {"sqlalchemy": "SQLAlchemy", "asyncpg": "database driver", "aiosqlite": "database driver",
          "fastapi": "FastAPI + Starlette", "starlette": "FastAPI + Starlette", "pydantic": "pydantic",
          "pydantic_core": "pydantic", "httpx": "httpx (the test client)", "asgi_lifespan": "lifespan",
          "asyncio": "event loop", "selectors": "event loop", "greenlet": "SQLAlchemy"}


def package_of(filename: str, function: str) -> str:
    if filename == "~":  # a built-in: name it by what it does
        if any(word in function for word in ("poll", "select", "SimpleQueue", "recv", "send")):
            return "waiting for I/O or the driver's thread"
        for word, group in (("greenlet", "SQLAlchemy"), ("pydantic", "pydantic"), ("sqlite3", "database driver")):
            if word in function:
                return group
        return "Python built-ins"
    path = Path(filename)
    if "site-packages" in path.parts:
        return GROUPS.get(path.parts[path.parts.index("site-packages") + 1], "other packages")
    if "app" in path.parts or "tests" in path.parts or "ipykernel_" in filename:
        return "the app, the course's helpers and this notebook"
    stdlib = path.stem if path.parent.name.startswith("python3") else path.parent.name
    return GROUPS.get(stdlib, "other standard library")

# %% tags=["nbval-ignore-output"]
by_package: dict[str, float] = {}
for (filename, _, function), (_, _, tottime, _, _) in request_profile.stats.items():
    group = package_of(filename, function)
    by_package[group] = by_package.get(group, 0.0) + tottime
total = sum(by_package.values())
for group, seconds in sorted(by_package.items(), key=lambda item: -item[1]):
    print(f"{seconds / total:6.1%}  {group}")
print(f"{total / 100 * 1000:.1f} ms of profiled time per single-request test")

# %% [markdown]
# No single line of the app stands out any more: the app's own code is a few per cent (asserted below),
# and the rest is spread over SQLAlchemy, the [event loop](../GLOSSARY.md#loop-scope), FastAPI and Starlette, httpx's in-memory
# transport and waiting for the database driver. What the usual suspects cost here:
#
# - middleware: the app has none;
# - validation: pydantic's compiled core validates the body and serialises the response in a few
#   per cent of the time at most (its line above);
# - session set-up: one `async_sessionmaker` call per request, joined to the test's connection, so no
#   pool checkout;
# - server defaults: the models' defaults are Python-side (`default=`), so an INSERT needs no extra
#   round trip to read generated values back.
#
# (The profiler slows everything down: compare shares, not its milliseconds.) There is nothing left
# here worth making the app less readable for.

# %%
own_code = by_package.get("the app, the course's helpers and this notebook", 0.0)
print(f"the app's own code is under a quarter of a request: {own_code < 0.25 * total}")
assert own_code < 0.25 * total

# %% [markdown]
# What does a cheaper test do to <!-- ref:isolation-benchmark -->lesson 14<!-- /ref -->'s benchmark, which compares isolation strategies?
#
# **Quiz 15.3.** Before the fix, a test took about 25 ms and rollback's cleanup about 0.5 ms of it.
# After the fix the same test takes 3 ms and the cleanup still 0.5 ms. What happens to the ratio
# "time with rollback isolation / time with no isolation"?
# - **a)** It stays the same: the cleanup did not change.
# - **b)** It shrinks: everything got faster.
# - **c)** It becomes exactly 1: the lifespan was the only difference between the runs, and it is gone.
# - **d)** It grows: the same cleanup is now a bigger part of a smaller total.

# %% tags=["quiz-answer"]
answer("15.3", "d")

# %% [markdown]
# Before: 25 / 24.5, about 1.02. After: 3 / 2.5 = 1.2. Once a test takes a few milliseconds, a cleanup
# of a fixed cost is no longer hidden in it. A benchmark that compares isolation strategies
# must not be dominated by a cost they all share, or every ratio looks like 1. (That is why the course's
# benchmark was re-run after this fix: `bench/results/` and the README.)

# %% [markdown]
# ## 5. Start-up: plugins you do not use
# <!-- topic:plugin-startup -->
#
# Every pytest process pays its start-up before the first test: the benchmark starts dozens, <!-- ref:real-pytest-run -->lesson 16<!-- /ref -->
# starts several, CI starts one per step. How long does `import pytest` take compared with the
# notebook plugin this course installs for CI?
#
# **Quiz 15.4.** No file of `tests/` mentions notebooks. Why would a plain `pytest tests` in this
# environment import nbformat (the notebook file format library) at all?
# - **a)** pytest loads every plugin registered under the `pytest11` entry point.
# - **b)** pytest imports every package installed in the environment at start-up.
# - **c)** `tests/conftest.py` imports it.
# - **d)** It would not: pytest imports a plugin only when it collects a file of that plugin's type (a notebook).

# %% tags=["quiz-answer"]
answer("15.4", "a")

# %% tags=["nbval-ignore-output"] jupyter={"source_hidden": true}
plugins = sorted(f"{ep.name} ({ep.dist.name})" for ep in entry_points(group="pytest11"))
print("pytest loads at start-up, from entry points:", *plugins, sep="\n  ")
assert any(name.startswith("nbval") for name in plugins)

# %% [markdown]
# `python -X importtime` prints one line per module imported, with its own and its cumulative time in
# microseconds. We run a tiny test file's collection (`--co`) in a fresh interpreter, in an empty
# directory (so that no configuration file applies): once as installed, and once with the plugins
# this course installs for other steps switched off: nbval (the notebooks), and, where CI's tools are
# installed too (`scripts/bootstrap --ci`), hypothesis and schemathesis (the fuzzing step,
# `scripts/serve-check`, which runs schemathesis's command line instead).

# %%
def pytest_start_up(*options: str) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "test_tiny.py").write_text("def test_nothing():\n    pass\n")
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pytest", "--co", "-q", "-s",
                               "-p", "no:cacheprovider", *options, "test_tiny.py"],
                              cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    modules = {line.rsplit("|", 1)[1].strip(): int(line.split("|")[1]) for line in lines[1:]}
    return {"modules": len(modules), "nbformat": "nbformat" in modules, "hypothesis": "hypothesis" in modules,
            "nbformat_us": modules.get("nbformat", 0), "pytest_us": modules.get("pytest", 0),
            "nbval.plugin": "nbval.plugin" in modules}

# %%
UNUSED_PLUGINS_OFF = ["-p", "no:nbval", "-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:sqla"]
installed, trimmed = pytest_start_up(), pytest_start_up(*UNUSED_PLUGINS_OFF)
for name, run in [("as installed", installed), ("plugins off", trimmed)]:
    print(f"{name:13} nbformat imported: {run['nbformat']}")
extra = installed["modules"] - trimmed["modules"]
print(f"the plugins bring {'more than 200' if extra > 200 else 'fewer than 200'} modules")
assert installed["nbformat"] and not (trimmed["nbformat"] or trimmed["hypothesis"])
assert extra > 200  # nbval alone brings about 300

# %% tags=["nbval-ignore-output"]
print(f"modules: {installed['modules']} as installed, {trimmed['modules']} with the plugins off")
print(f"import of nbformat (for nbval): {installed['nbformat_us'] / 1000:.0f} ms, of pytest itself: "
      f"{installed['pytest_us'] / 1000:.0f} ms ({installed['nbformat_us'] / installed['pytest_us']:.0f} ×)")

# %% [markdown]
# nbval brings in nbformat, jsonschema and their dependencies, and importing nbformat alone costs several
# times `import pytest` (printed above). Yet the plugin module itself, `nbval.plugin`, gets no line of its
# own. pytest loads an installed plugin by its entry point, and that calls `importlib.import_module`;
# `-X importtime` reports the imports that go through an `import` statement, not that function (the
# modules the plugin then imports with `import` do get lines). Seen with the standard library's `csv`:

# %%
def import_lines(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


by_statement, by_function = import_lines("import csv"), import_lines("import importlib; importlib.import_module('csv')")
print("`import csv` gives csv a line:", "csv" in by_statement, "| importlib.import_module('csv'):", "csv" in by_function)
print("nbval.plugin has a line in the pytest run above:", installed["nbval.plugin"])
assert "csv" in by_statement and "csv" not in by_function and not installed["nbval.plugin"]

# %% [markdown]
# The fix is configuration, not code: this repository's
# `pyproject.toml` has `addopts = "... -p no:nbval -p no:schemathesis -p no:hypothesispytest -p no:sqla"`,
# and `run-tests.sh` turns nbval back on for the notebook steps only (`pytest -p nbval ...`: a later
# `-p` wins; pytest-sqla comes back the same way, `-p sqla`, where <!-- ref:helper-or-plugin -->lesson 17<!-- /ref --> runs it). Subprocesses that do not read `pyproject.toml` (the benchmark's) pass the options themselves.

# %% [markdown]
# ### Tests per second, one request per test
# <!-- topic:tests-per-second -->
#
# *Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks* (a Python-upgrade
# consultancy's blog, 2025) says rollback-isolated CRUD tests run at around 500 per second; <!-- ref:rollback-speed-claim -->lesson 14<!-- /ref -->
# judges that claim against the stored benchmark, whose tests make 2 to 5 requests each:
# <!-- verdict:rollback-500-tests-per-second -->not reproduced here<!-- /verdict -->. Here the tests are lighter. We run 200
# single-request tests with the fixtures of section 1 through pytest, with the old lifespan and with
# today's, and print tests per second (pytest's own start-up included, so the rates are conservative).

# %%
@pytest.mark.parametrize("n", range(200))
async def test_one_request(client, n):
    assert (await client.post("/animals", json={"name": f"Tom {n}", "species": "cat"})).status_code == 201


def tests_per_second(count: int) -> float:
    started = time.perf_counter()
    run_tests(*(f"test_one_request[{n}]" for n in range(count)))
    return count / (time.perf_counter() - started)

# %% tags=["nbval-ignore-output"]
with the_old_lifespan():
    old_rate = tests_per_second(50)
new_rate = tests_per_second(200)
print(f"{nb.backend}: old lifespan {old_rate:.0f} tests/s, today's {new_rate:.0f} tests/s "
      f"({new_rate / old_rate:.1f} ×)")
assert new_rate > 2 * old_rate  # in fact several times; a generous margin for a loaded machine

# %% [markdown]
# The fixture fix pays here too: the same tests run more than twice as fast with today's lifespan as
# with the old one, whatever the isolation (the cell prints this machine's rates and asserts the
# factor). A rate is a property of the tests and of the machine, not
# of the fixture: yours will differ. Measure your own suite as this notebook did: `--durations`
# first, then a profile of the slow phase, then a side-by-side ratio.

# %% [markdown]
# Every test of this notebook ran inside a rolled-back transaction. A fresh connection sees no rows:

# %%
async def committed_animals() -> int:
    engine = create_async_engine(nb.database_url)
    try:
        async with engine.connect() as conn:
            return len((await conn.execute(Base.metadata.tables["animals"].select())).all())
    finally:
        await engine.dispose()


print("animals left behind:", run_async(committed_animals()))
assert run_async(committed_animals()) == 0

# %% [markdown]
# ## Sources and further reading
#
# - pytest 9.2, "Profiling test execution duration" (`--durations`, `--durations-min`):
#   https://docs.pytest.org/en/stable/how-to/usage.html#profiling-test-execution-duration
# - pytest 9.2, "Deactivating / unregistering a plugin by name" (`-p no:NAME`):
#   https://docs.pytest.org/en/stable/how-to/plugins.html#deactivating-unregistering-a-plugin-by-name
# - Python 3.11, "The Python Profilers" (`cProfile`, `pstats`): https://docs.python.org/3.11/library/profile.html
# - Python 3.11, command line option `-X importtime`: https://docs.python.org/3.11/using/cmdline.html#cmdoption-X
# - pyinstrument (a sampling profiler, not a course dependency): https://pyinstrument.readthedocs.io
# - httpx 0.28, "SSL" (passing an `ssl.SSLContext` as `verify=`): https://www.python-httpx.org/advanced/ssl/
# - *Using pytest Fixtures with FastAPI TestClient for Database Transaction Rollbacks*, a Python-upgrade
#   consultancy's blog, 2025 (its rate, measured above; <!-- ref:rollback-speed-claim -->lesson 14<!-- /ref --> judges the claim).

# %% [markdown] tags=["key-points"]
# ## Key points
# - Find the slow phase first: `pytest --durations=10`. A slow `setup` means a fixture, not your
#   tests or your database.
# - Profile the suspect (`cProfile`, pyinstrument) and look for one function with most of the own time.
#   Here it was `load_verify_locations`: `httpx.AsyncClient()` builds a new TLS context, certificate
#   bundle and all, every time it is created, and the app created one per lifespan, so per test.
# - Fix the cause where it lives: the app builds its TLS context once per process and passes it as
#   `verify=`. The fixtures still enter the lifespan per test, which keeps `app.state` fresh per test.
# - Share only what nobody changes. A shared mutable object (a context whose settings a test flips)
#   leaks from test to test exactly like a shared database row.
# - Guard speed fixes with counts (contexts built, modules imported), never with a time bound.
# - Start-up is part of a suite's cost: `python -X importtime` shows which plugin imports what;
#   `-p no:NAME` in `addopts` keeps unused plugins out, and a later `-p NAME` turns one back on.
#
# **Next:** [16 · Capstone: your own conftest.py](16_capstone.ipynb)
