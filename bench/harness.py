"""The pytest plugin every strategy's conftest loads (``pytest_plugins = ["bench.harness"]``).

It provides what does not differ between strategies, so that the only thing a strategy
changes is its ``sessions`` fixture (how the app's sessions are made and how the data is
cleaned up afterwards):

* this process's database, recreated empty with the 12-table schema in
  ``pytest_sessionstart`` (before the clock starts) and dropped in ``pytest_sessionfinish``;
* ``engine`` (session scope), ``client`` (the course's client fixture: dependency override,
  the app's lifespan entered for every test, ``httpx.AsyncClient`` over ``ASGITransport``,
  notifier faked) and ``bench``;
* the clock. ``pytest_runtest_protocol`` is wrapped: the *test phase* of a process runs
  from the start of its first test's setup to the end of its last test's teardown, so it
  contains every fixture setup and cleanup of every test and nothing of interpreter
  start-up, imports, collection, schema creation or database dropping. Each process writes
  ``<worker>.json`` into ``BENCH_TIMING_DIR``; the runner takes the union of the workers'
  phases (first start to last end, ``time.monotonic`` is system-wide on Linux).

Environment (set by the runner): ``BENCH_STRATEGY``, ``BENCH_BASE_URL``,
``BENCH_TIMING_DIR``; ``BENCH_EXPECT_ISOLATION=1|0`` overrides what the isolation checks
expect (the smoke test's negative control uses it); ``BENCH_LIFESPAN=test|session``.
"""

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.databases import drop_with_children, make_engine, process_url, recreate

STRATEGY = os.environ["BENCH_STRATEGY"]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "master")
DATABASE_URL = process_url(os.environ["BENCH_BASE_URL"], STRATEGY, WORKER)
EXPECT_ISOLATION = os.environ.get("BENCH_EXPECT_ISOLATION", "0" if STRATEGY == "none" else "1") == "1"
TIMING_DIR = Path(os.environ["BENCH_TIMING_DIR"]) if os.environ.get("BENCH_TIMING_DIR") else None

# The app builds its own engine from DATABASE_URL at import time: point it at this process's
# benchmark database before anything imports `app` (it is never used: every strategy
# overrides the session dependency, but it must never be the dev database either).
os.environ["DATABASE_URL"] = DATABASE_URL

from asgi_lifespan import LifespanManager  # noqa: E402
from httpx import ASGITransport, AsyncClient  # noqa: E402

from app.db import get_session  # noqa: E402
from app.services.notifications import get_notifier  # noqa: E402
from bench.api import create_bench_app  # noqa: E402
from bench.schema import TABLES, metadata  # noqa: E402
from tests.fakes import RecordingNotifier  # noqa: E402
from tests.isolation import override_dependency, session_dependency  # noqa: E402

bench_app = create_bench_app()

_clock = {"first_start": None, "last_end": None, "durations": []}
_outcomes: dict[str, str] = {}
_phases: dict[str, list[float]] = {"setup": [], "call": [], "teardown": []}
_checks = {"run": 0, "after_writes": 0, "leaked_rows_seen": 0}


_in_controller = False


def _is_xdist_controller(config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


@pytest.hookimpl(trylast=True)  # after xdist's own pytest_configure has registered "dsession"
def pytest_configure(config):
    global _in_controller
    _in_controller = _is_xdist_controller(config)


def pytest_report_header(config):
    return (f"bench: strategy={STRATEGY} database={DATABASE_URL.rsplit('/', 1)[-1]} "
            f"expect_isolation={EXPECT_ISOLATION} lifespan={LIFESPAN}")


def pytest_sessionstart(session):
    if not _in_controller:
        asyncio.run(recreate(DATABASE_URL, metadata))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.monotonic()
    if _clock["first_start"] is None:
        _clock["first_start"] = start
    yield
    _clock["last_end"] = end = time.monotonic()
    _clock["durations"].append(end - start)


def pytest_runtest_logreport(report):
    if _in_controller:  # an xdist controller also sees its workers' reports: they count there
        return
    _phases[report.when].append(report.duration)
    previous = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.skipped:
        _outcomes.setdefault(report.nodeid, "skipped")
    elif report.when == "call" and previous is None:
        _outcomes[report.nodeid] = "passed"


def pytest_sessionfinish(session, exitstatus):
    if _in_controller:
        return
    if TIMING_DIR is not None and _clock["first_start"] is not None:
        TIMING_DIR.mkdir(parents=True, exist_ok=True)
        (TIMING_DIR / f"{WORKER}.json").write_text(json.dumps({
            "worker": WORKER,
            "strategy": STRATEGY,
            "database": DATABASE_URL.rsplit("/", 1)[-1],
            "first_start": _clock["first_start"],
            "last_end": _clock["last_end"],
            "test_phase_s": _clock["last_end"] - _clock["first_start"],
            "durations": _clock["durations"],
            "phases": _phases,
            "outcomes": dict(Counter(_outcomes.values())),
            "isolation_checks": dict(_checks),
            "expect_isolation": EXPECT_ISOLATION,
        }))
    asyncio.run(drop_with_children(DATABASE_URL))


@pytest.fixture(scope="session")
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture(scope="session")
async def engine(database_url):
    """This process's engine (the schema was created in pytest_sessionstart)."""
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


async def _started_app():
    async with LifespanManager(bench_app) as started:
        yield started.app


#: "test" (default): the app's lifespan runs for every test, as the stored runs measured it (the course's
#: tests/conftest.py now enters it once per process: python -m bench.floor measures that fixture);
#: "session": once per process (an ablation: it shows how much of a test is the lifespan).
LIFESPAN = os.environ.get("BENCH_LIFESPAN", "test")
started_app = pytest.fixture(_started_app, scope="session" if LIFESPAN == "session" else "function",
                             name="started_app")


@pytest.fixture
async def client(sessions, started_app):
    """The course's client fixture, for the benchmark app; ``sessions`` is the strategy's."""
    notifier = RecordingNotifier()
    with (
        override_dependency(bench_app, get_session, session_dependency(sessions)),
        override_dependency(bench_app, get_notifier, lambda: notifier),
    ):
        async with AsyncClient(transport=ASGITransport(app=started_app), base_url="http://test") as http:
            yield http


class Bench:
    """What the generated tests report, and the isolation check they run."""

    #: Rows this process's passing tests have written, per table (process-global).
    written: Counter = Counter()
    tests_written = 0

    def wrote(self, **rows: int) -> None:
        Bench.written.update(rows)
        Bench.tests_written += 1

    async def assert_isolation(self, client: AsyncClient) -> None:
        """Earlier tests' rows must be gone (or, without isolation, all still there)."""
        response = await client.get("/bench/row-counts")
        assert response.status_code == 200, response.text
        counts = response.json()
        assert set(counts) == set(TABLES)
        _checks["run"] += 1
        _checks["after_writes"] += Bench.tests_written > 0
        _checks["leaked_rows_seen"] += sum(counts.values())
        if EXPECT_ISOLATION:
            leftovers = {table: n for table, n in counts.items() if n}
            assert not leftovers, (
                f"strategy {STRATEGY!r}: rows left behind by the {Bench.tests_written} earlier tests "
                f"of this process: {leftovers}"
            )
        else:
            # No isolation: every row of every earlier test is still there, exactly. This is
            # the proof that the same check would catch leftovers under the other strategies.
            expected = {table: Bench.written.get(table, 0) for table in TABLES}
            assert counts == expected, f"strategy {STRATEGY!r}: expected exactly the earlier tests' rows"


@pytest.fixture
def bench() -> Bench:
    return Bench()
