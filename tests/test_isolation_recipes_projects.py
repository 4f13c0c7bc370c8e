"""The helper's recipes that need a project of their own, each run by a fresh pytest (subprocess).

* One database per worker, with and without pytest-xdist: the same conftest (``PYTEST_XDIST_WORKER``
  through ``worker_database_url``, ``create_worker_database`` in a session fixture) run serially
  with xdist turned off (``-p no:xdist``: as if it were not installed) and with ``-n 2``: each
  process creates its own database and schema exactly once.
* Both TOML spellings of the loop-scope settings: ``[tool.pytest.ini_options]`` (strings, any
  pytest) and pytest 9's native ``[tool.pytest]`` (TOML types) each run a session-wide layer on
  the active database; both tables at once stop pytest with its own message.
* The coverage ``omit`` line: a project that copies the helper to ``tests/isolation.py`` and
  measures ``tests/`` too keeps a 100 % gate only with the omit line.
* The helper docstring's statement on ``loop_scope``: a session-scoped async fixture without it
  stops with ``ScopeMismatch`` only when ``asyncio_default_fixture_loop_scope`` is narrower
  (``function``, ``module``); unset or ``session``, it runs.
* Names that cannot clash: the projects import the helper as a namespace (``from tests import
  isolation as iso``) next to a function of their own called ``override_dependency``.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import tests.isolation
from course.database import backend, selected_url

pytestmark = pytest.mark.subprocess

HELPER = Path(tests.isolation.__file__)
BACKEND = backend(selected_url())

LAYER_CONFTEST = '''
import os

import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, String, Table, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests import isolation as iso  # a namespace: the project's own override_dependency stays its own


def override_dependency(*args):  # the project's own helper of that name (the clash met in the field)
    return "the project's own"


CREATED = []


metadata = MetaData()
Table("pets", metadata, Column("id", Integer, primary_key=True), Column("name", String(50), unique=True))


def create_schema(connection):  # the create_all recipe (Alembic: command.upgrade on this connection)
    metadata.create_all(connection)
    CREATED.append(1)


@pytest.fixture(scope="session")
def database_url():  # sync: create_worker_database drives async URLs on a private loop
    url = iso.create_worker_database(os.environ["RECIPE_URL"], create_schema)
    with open(os.environ["RECIPE_LOG"], "a") as log:
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {url.database}\\n")
    return url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def layer(database_url):
    engine = create_async_engine(database_url)
    async with iso.isolated_async_sessions(engine) as outer:
        async with outer() as session:
            await session.execute(text("INSERT INTO pets (name) VALUES ('Shared')"))
            await session.commit()
        yield outer
    await engine.dispose()


@pytest.fixture
async def sessions(layer):
    async with iso.nested_async_sessions(layer) as factory:
        yield factory
'''

LAYER_TESTS = '''
import pytest
from sqlalchemy import text

from tests.conftest import CREATED, override_dependency


@pytest.mark.parametrize("n", range(4))
async def test_each_test_sees_the_layer_and_its_own_row(n, sessions):
    async with sessions() as session:
        await session.execute(text("INSERT INTO pets (name) VALUES ('Rex')"))  # a leak would collide
        await session.commit()
        assert await session.scalar(text("SELECT count(*) FROM pets")) == 2
    assert CREATED == [1] and override_dependency() == "the project's own"
'''

INI_OPTIONS = """
[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
"""

NATIVE = """
[tool.pytest]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
"""


def write_project(root: Path, pyproject: str) -> None:
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    shutil.copy(HELPER, root / "tests" / "isolation.py")
    (root / "tests" / "conftest.py").write_text(textwrap.dedent(LAYER_CONFTEST))
    (root / "tests" / "test_pets.py").write_text(textwrap.dedent(LAYER_TESTS))
    (root / "pyproject.toml").write_text(pyproject)


def recipe_url(root: Path, database_url: str, name: str) -> str:
    if BACKEND == "sqlite":
        return f"sqlite+aiosqlite:///{root / (name + '.sqlite')}"
    parsed = make_url(database_url)  # this worker's test database; the recipe adds _main, _gw0, ...
    return parsed.set(database=f"{parsed.database}_{name}").render_as_string(hide_password=False)


def run_pytest(root: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "DATABASE_URL")}
    env.update(RECIPE_URL=url, RECIPE_LOG=str(root / "created.log"), PYTHONPATH=str(root))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:nbval", "-p", "no:randomly", "-p", "no:cacheprovider",
               "--rootdir", str(root), *args, "tests"]  # fmt: skip
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def drop_databases(url: str, names: list[str]) -> None:
    if BACKEND == "sqlite":
        return
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def drop():
        admin = create_async_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                for name in names:
                    quoted = conn.dialect.identifier_preparer.quote_identifier(name)
                    await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        finally:
            await admin.dispose()

    asyncio.run(drop())


@pytest.mark.parametrize("workers", [pytest.param([], id="without-xdist"), pytest.param(["-n", "2"], id="xdist-n2")])
def test_one_database_per_worker_created_once_with_and_without_xdist(tmp_path, database_url, workers):
    write_project(tmp_path, INI_OPTIONS)
    url = recipe_url(tmp_path, database_url, "recipe")
    done = run_pytest(tmp_path, url, *(workers or ["-p", "no:xdist"]))
    created = sorted((tmp_path / "created.log").read_text().split("\n")[:-1]) if (tmp_path / "created.log").exists() else []
    try:
        assert done.returncode == 0 and "4 passed" in done.stdout, done.stdout + done.stderr
        expected = ["main"] if not workers else ["gw0", "gw1"]
        assert [line.split()[0] for line in created] == expected, created  # one creation per process
        for line in created:
            worker, name = line.split()
            assert Path(name).stem.endswith(f"_{worker}") or name.endswith(f"_{worker}"), line
    finally:
        drop_databases(url, [line.split()[1] for line in created])


@pytest.mark.parametrize("pyproject", [pytest.param(INI_OPTIONS, id="ini_options"), pytest.param(NATIVE, id="native-pytest9")])
def test_both_toml_spellings_of_the_loop_scopes_run_a_session_wide_layer(tmp_path, database_url, pyproject):
    write_project(tmp_path, pyproject)
    url = recipe_url(tmp_path, database_url, "toml")
    done = run_pytest(tmp_path, url, "-p", "no:xdist")
    try:
        assert done.returncode == 0 and "4 passed" in done.stdout and "error" not in done.stdout.lower(), (
            done.stdout + done.stderr
        )
    finally:
        drop_databases(url, [make_url(url).database + "_main"])


@pytest.mark.negative_control
def test_both_tables_at_once_stop_pytest_before_collection(tmp_path, database_url):
    write_project(tmp_path, INI_OPTIONS + NATIVE)
    done = run_pytest(tmp_path, recipe_url(tmp_path, database_url, "both"), "-p", "no:xdist")
    assert done.returncode != 0
    assert "Cannot use both [tool.pytest] (native TOML types) and [tool.pytest.ini_options]" in done.stdout + done.stderr


COVERAGE_OMIT = """
[tool.coverage.run]
source = ["tests"]
omit = ["*/tests/isolation.py"]
"""


@pytest.mark.parametrize("omit", [pytest.param(True, id="with-omit"), pytest.param(False, id="without-omit")])
def test_the_coverage_omit_line_keeps_a_gate_that_measures_tests(tmp_path, database_url, omit):
    write_project(tmp_path, INI_OPTIONS + (COVERAGE_OMIT if omit else COVERAGE_OMIT.replace('omit = ["*/tests/isolation.py"]\n', "")))
    url = recipe_url(tmp_path, database_url, "cov")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "DATABASE_URL", "COVERAGE_PROCESS_START")}
    env.update(RECIPE_URL=url, RECIPE_LOG=str(tmp_path / "created.log"), PYTHONPATH=str(tmp_path))
    try:
        for args in (["run", "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider", "tests"],
                     ["report", "--fail-under=100"]):
            done = subprocess.run([sys.executable, "-m", "coverage", *args], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
        assert ("tests/isolation.py" in done.stdout) is not omit, done.stdout
        assert (done.returncode == 0) is omit, done.stdout  # the gate: 100 % only with the omit line
    finally:
        drop_databases(url, [make_url(url).database + "_main"])


SCOPE_PROBE = '''
import pytest_asyncio


@pytest_asyncio.fixture(scope="session")  # no loop_scope: it follows asyncio_default_fixture_loop_scope
async def wide():
    yield "ready"


async def test_one(wide):
    assert wide == "ready"


async def test_two(wide):
    assert wide == "ready"
'''


@pytest.mark.parametrize(
    "default, outcome",
    [
        pytest.param(None, "2 passed", id="unset-passes"),
        pytest.param("session", "2 passed", id="session-passes"),
        pytest.param("module", "ScopeMismatch: You tried to access the module scoped fixture _module_scoped_runner", id="module-fails"),
        pytest.param("function", "ScopeMismatch: You tried to access the function scoped fixture _function_scoped_runner", id="function-fails"),
    ],
)
def test_a_session_scoped_async_fixture_without_loop_scope_fails_only_under_a_narrower_default(tmp_path, default, outcome):
    """The docstring's statement, as pytest-asyncio (pinned) behaves: ScopeMismatch only when the
    default fixture loop scope is narrower than the fixture's scope; unset, it uses the fixture's own."""
    (tmp_path / "test_probe.py").write_text(SCOPE_PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:nbval", "-p", "no:randomly", "-p", "no:cacheprovider",
               "-p", "no:xdist", "-c", os.devnull, "--rootdir", str(tmp_path), "-o", "asyncio_mode=auto", str(tmp_path)]
    if default is not None:
        command[-1:-1] = ["-o", f"asyncio_default_fixture_loop_scope={default}"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert outcome in done.stdout, done.stdout + done.stderr
    if default is None:
        assert "\"asyncio_default_fixture_loop_scope\" is unset" in done.stderr  # the deprecation warning
