"""Which event loop the helper's async fixtures need, shown by running pytest with other settings.

A session-scoped layer (``isolated_async_sessions`` in a ``scope="session"`` fixture, then
``nested_async_sessions`` per test) opens one connection, and a connection belongs to the
event loop that opened it. A probe project (written to a temporary directory, run by a fresh
pytest with its own ini options and ``-p no:nbval``) shows the three outcomes:

- the session-scoped async fixture has no ``loop_scope`` while the default is ``function``:
  pytest-asyncio stops at set-up with ``ScopeMismatch ... _function_scoped_runner``;
- the layer runs on the session loop, the tests on their own function loops: asyncpg fails
  with ``... attached to a different loop``; aiosqlite does not mind, so a SQLite-only run
  hides the bug;
- layer, per-test fixture and tests all on the session loop (``loop_scope="session"`` on the
  fixture, ``asyncio_default_test_loop_scope = "session"``): it passes on both databases.

The plain per-test helper on a session-wide pooled engine has the same trap (the pool hands
the second test the first test's connection, opened on the first test's loop); ``NullPool``
(a new connection per checkout) avoids it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.database import backend, selected_url

pytestmark = pytest.mark.subprocess  # each test runs a pytest of its own: its own step of run-tests.sh

BACKEND = backend(selected_url())

PROBE_CONFTEST = '''
import os
import pytest, pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from tests.isolation import isolated_async_sessions, nested_async_sessions

URL = os.environ["PROBE_DATABASE_URL"]

@pytest_asyncio.fixture(scope="session", loop_scope=os.environ.get("LAYER_LOOP_SCOPE") or None)
async def outer():
    engine = create_async_engine(URL)
    async with isolated_async_sessions(engine) as factory:
        async with factory() as session:
            await session.execute(text("SELECT 1"))  # the shared data would be written here
            await session.commit()
        yield factory
    await engine.dispose()

@pytest.fixture(scope="session")
def pooled_engine():  # sync: creating an engine connects nothing and needs no loop
    options = {"poolclass": NullPool} if os.environ.get("PROBE_POOL") == "null" else {}
    return create_async_engine(URL, **options)

if os.environ.get("PROBE_MODE") == "per-test":
    @pytest.fixture
    async def layer(pooled_engine):  # the plain per-test helper on a session-wide engine
        async with isolated_async_sessions(pooled_engine) as factory:
            yield factory
else:
    @pytest.fixture
    async def layer(outer):
        async with nested_async_sessions(outer) as factory:
            yield factory
'''

PROBE_TESTS = '''
from sqlalchemy import text

async def test_first(layer):
    async with layer() as session:
        assert await session.scalar(text("SELECT 1")) == 1

async def test_second(layer):
    async with layer() as session:
        assert await session.scalar(text("SELECT 1")) == 1
'''


def run_probe(
    tmp_path: Path, database_url: str, *, default_loop_scope: str, layer_loop_scope: str = "", mode: str = "layer", pool: str = ""
) -> str:
    (tmp_path / "conftest.py").write_text(PROBE_CONFTEST)
    (tmp_path / "test_probe.py").write_text(PROBE_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env.update(PROBE_DATABASE_URL=database_url, LAYER_LOOP_SCOPE=layer_loop_scope, PROBE_MODE=mode, PROBE_POOL=pool)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:nbval", "-p", "no:randomly", "-p", "no:cacheprovider",
        "-c", os.devnull, "--rootdir", str(tmp_path), "-q", "-o", "asyncio_mode=auto",
        "-o", f"asyncio_default_fixture_loop_scope={default_loop_scope}",
        "-o", f"asyncio_default_test_loop_scope={default_loop_scope}",
        str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    return result.stdout + result.stderr


@pytest.mark.negative_control
def test_a_session_scoped_layer_without_loop_scope_stops_with_scope_mismatch(tmp_path, database_url):
    output = run_probe(tmp_path, database_url, layer_loop_scope="", default_loop_scope="function")
    assert "ScopeMismatch" in output and "_function_scoped_runner" in output, output
    assert "2 errors" in output, output


@pytest.mark.negative_control
@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param("2 passed", id="sqlite-hides-it")
        if BACKEND == "sqlite"
        else pytest.param("attached to a different loop", id="postgresql-fails")
    ],
)
def test_a_layer_on_the_session_loop_used_from_function_loops(tmp_path, database_url, outcome):
    output = run_probe(tmp_path, database_url, layer_loop_scope="session", default_loop_scope="function")
    assert outcome in output, output


def test_everything_on_the_session_loop_passes_on_both_databases(tmp_path, database_url):
    output = run_probe(tmp_path, database_url, layer_loop_scope="session", default_loop_scope="session")
    assert "2 passed" in output and "error" not in output.lower(), output


@pytest.mark.negative_control
@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param("2 passed", id="sqlite-hides-it")
        if BACKEND == "sqlite"
        else pytest.param("attached to a different loop", id="postgresql-fails")
    ],
)
def test_per_test_isolation_on_a_pooled_session_wide_engine_from_function_loops(tmp_path, database_url, outcome):
    output = run_probe(tmp_path, database_url, default_loop_scope="function", mode="per-test")
    assert outcome in output, output  # the second test gets the first test's pooled connection and loop


def test_per_test_isolation_from_function_loops_works_with_nullpool(tmp_path, database_url):
    output = run_probe(tmp_path, database_url, default_loop_scope="function", mode="per-test", pool="null")
    assert "2 passed" in output and "error" not in output.lower(), output
