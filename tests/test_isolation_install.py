"""The helper installs as well as it copies: ``pip install packaging/rollback-isolation``.

The distribution's one module, ``rollback_isolation``, is ``tests/isolation.py`` byte for
byte (its build backend copies the file into the wheel). Proved here by building the wheel
(and the sdist, and a wheel from that sdist), installing it into a fresh venv from PyPI's
SQLAlchemy, importing ``isolated_async_sessions`` and comparing the installed file with the
copyable one; then by running a small suite of the installed module (commits rolled back, a
session-wide layer, the guard, one database per worker, the sync half) in venvs with the oldest and the newest
versions it claims. Those venvs are cached in ``~/.cache/course-rollback-isolation/`` (or
``$XDG_CACHE_HOME``), one per combination: the first run downloads from PyPI, later runs
reuse them. On the database the suite runs on (SQLite, or PostgreSQL through asyncpg).

The wheel's opt-in pytest plugin (``rollback_isolation_plugin``, its ``pytest11`` entry point) in
the same venvs: a project that does not opt in sees no fixture and no other change (``--fixtures``
equals that of ``-p no:rollback_isolation``; negative control: one ini line lists them); one that
opts in gets its commits rolled back on SQLite and on PostgreSQL (a database of its own on the
selected server), and the same suite with plain sessions of the engine leaks a row and fails;
a project's own ``rollback_isolation_engine`` replaces the plugin's; a missing URL or loop setting
is named in the error.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import tests.isolation
from course.database import backend, prepare, selected_url, sibling_url

pytestmark = pytest.mark.subprocess  # builds, creates venvs, installs from PyPI, runs pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HELPER = Path(tests.isolation.__file__)
DISTRIBUTION = REPO_ROOT / "packaging" / "rollback-isolation"
PLUGIN = DISTRIBUTION / "rollback_isolation_plugin.py"
BACKEND = backend(selected_url())

#: The oldest and the newest versions the distribution claims (pyproject.toml says the same).
COMBINATIONS = {
    "oldest": ["SQLAlchemy==2.0.0", "pytest==8.3.5", "pytest-asyncio==0.26.0"],
    "newest": ["SQLAlchemy==2.1.9", "pytest==9.2.0", "pytest-asyncio==1.5.0"],
}
DRIVERS = ["aiosqlite==0.22.1", "asyncpg==0.32.0", "greenlet==3.5.6"]

INSTALLED_SUITE = '''
import os

import pytest
import pytest_asyncio
from sqlalchemy import String, create_engine, func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import rollback_isolation as iso  # a namespace import: no name of the project's own can clash

URL = os.environ["PROBE_URL"]


class Base(DeclarativeBase):
    pass


class Pet(Base):
    __tablename__ = "installed_probe_pets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class App:  # what override_dependency needs of an app: the overrides dict (and routes, if any)
    dependency_overrides: dict = {}
    routes: list = []


def get_session():  # the app's real dependency
    raise AssertionError("overridden")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine():
    engine = create_async_engine(URL)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    async with engine.begin() as conn:
        assert await conn.scalar(select(func.count()).select_from(Pet)) == 0  # nothing leaked
        await conn.run_sync(Base.metadata.drop_all)
    await engine.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared(engine):
    async with iso.isolated_async_sessions(engine) as outer:
        async with outer() as session:
            session.add(Pet(name="Shared"))
            await session.commit()
        yield outer


@pytest.fixture
async def sessions(shared):
    async with iso.nested_async_sessions(shared) as factory:
        yield factory


@pytest.mark.parametrize("run", range(2))
async def test_commits_are_rolled_back_and_the_layer_stays(run, sessions):
    async with sessions() as session:
        session.add(Pet(name="Rex"))  # the same name each run: a leak would collide
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(Pet)) == 2


async def test_the_guard_refuses_a_session_of_the_engine(sessions, engine):
    with pytest.raises(iso.IsolationBreach, match="its writes would be real"):
        with iso.override_dependency(App, get_session, iso.session_dependency(sessions)):
            async with AsyncSession(engine) as own:
                await own.scalar(select(func.count()).select_from(Pet))


def test_one_database_per_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    url = iso.create_worker_database(f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite'}", Base.metadata.create_all)
    assert url.database.endswith("w_gw7.sqlite")
    engine = create_engine(url.set(drivername="sqlite"))
    with Session(engine) as fresh:
        assert fresh.scalar(select(func.count()).select_from(Pet)) == 0  # the schema is there
    engine.dispose()


def test_the_sync_half(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'sync.sqlite'}")
    Base.metadata.create_all(engine)
    with iso.isolated_sessions(engine) as factory:
        with factory() as session:
            session.add(Pet(name="Sync"))
            session.commit()
    with Session(engine) as fresh:
        assert fresh.scalar(select(func.count()).select_from(Pet)) == 0
    engine.dispose()
'''

INSTALLED_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


def clean_env() -> dict[str, str]:
    drop = ("PYTEST_ADDOPTS", "PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV", "DATABASE_URL")
    return {k: v for k, v in os.environ.items() if k not in drop}


def run(*command: str | Path, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout}\n{done.stderr}"
    return done


def make_venv(where: Path) -> Path:
    run(sys.executable, "-m", "venv", where)
    return where / "bin" / "python"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, DISTRIBUTION)
    run(sys.executable, "-c", f"import sys; sys.path.insert(0, {str(DISTRIBUTION)!r}); import backend; "
        f"backend.build_sdist({str(out)!r})")  # fmt: skip
    (wheel,) = out.glob("rollback_isolation-*.whl")
    (sdist,) = out.glob("rollback_isolation-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_the_wheel_and_the_sdist_hold_the_helper_byte_for_byte(built, tmp_path):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        assert wheel.read("rollback_isolation.py") == HELPER.read_bytes()
        assert [n for n in names if not n.startswith("rollback_isolation-")] == ["rollback_isolation.py", "rollback_isolation_plugin.py"]
        assert wheel.read("rollback_isolation_plugin.py") == PLUGIN.read_bytes()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        # the one thing pytest loads by itself: the plugin module, never the copyable one (tests below: inert until opted in)
        assert wheel.read(entry_points).decode().split() == ["[pytest11]", "rollback_isolation", "=", "rollback_isolation_plugin"]
    with tarfile.open(built["sdist"]) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith("/rollback_isolation.py"))
        assert sdist.extractfile(member).read() == HELPER.read_bytes()
    # a wheel built from the sdist (no repository around it) carries the same bytes
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, built["sdist"])
    with zipfile.ZipFile(next(tmp_path.glob("*.whl"))) as again:
        assert again.read("rollback_isolation.py") == HELPER.read_bytes()
        assert again.read("rollback_isolation_plugin.py") == PLUGIN.read_bytes()
        assert "[pytest11]" in again.read("rollback_isolation-0.1.0.dist-info/entry_points.txt").decode()


def test_a_fresh_venv_imports_it_and_the_installed_file_is_the_copyable_one(built, tmp_path):
    python = make_venv(tmp_path / "venv")
    run(python, "-m", "pip", "install", "-q", built["wheel"])  # SQLAlchemy from PyPI, as a user gets it
    probe = "from rollback_isolation import isolated_async_sessions; import rollback_isolation; print(rollback_isolation.__file__)"
    installed = Path(run(python, "-c", probe, cwd=tmp_path).stdout.strip())
    assert installed.parent.name == "site-packages" and tmp_path in installed.parents
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == hashlib.sha256(HELPER.read_bytes()).hexdigest()


def cached_venv(name: str, requirements: list[str]) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "course-rollback-isolation"
    key = hashlib.sha256(json.dumps([sys.version, requirements]).encode()).hexdigest()[:12]
    where = cache / f"{name}-{key}"
    python = where / "bin" / "python"
    if not (where / "complete").exists():  # made once, then reused
        cache.mkdir(parents=True, exist_ok=True)
        run(sys.executable, "-m", "venv", "--clear", where)
        run(python, "-m", "pip", "install", "-q", *requirements)
        (where / "complete").write_text("\n".join(requirements) + "\n")
    return python


@contextlib.contextmanager
def installed(combination: str, wheel: Path):
    """The cached venv of ``combination`` with this wheel in it, for this process alone meanwhile.

    Several tests (and xdist workers) reinstall the wheel into the same cached venv: a file lock
    keeps one reinstall from landing under another test's pytest run.
    """
    python = cached_venv(combination, COMBINATIONS[combination] + DRIVERS)
    with open(python.parent.parent / "in-use.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel)
        yield python


def probe_url(tmp_path: Path, database_url: str) -> str:
    if BACKEND == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'installed.sqlite'}"
    return make_url(database_url).render_as_string(hide_password=False)  # this worker's test database


@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_the_installed_helper_passes_with_the_oldest_and_newest_versions_it_claims(
    combination, built, tmp_path, database_url
):
    with installed(combination, built["wheel"]) as python:
        the_installed_suite_passes(python, combination, tmp_path, database_url)


def the_installed_suite_passes(python: Path, combination: str, tmp_path: Path, database_url: str) -> None:
    versions = run(python, "-c", "import sqlalchemy, pytest_asyncio; print(sqlalchemy.__version__, pytest_asyncio.__version__)")
    assert versions.stdout.split() == [COMBINATIONS[combination][0].split("==")[1], COMBINATIONS[combination][2].split("==")[1]]
    (tmp_path / "test_installed.py").write_text(textwrap.dedent(INSTALLED_SUITE))
    (tmp_path / "pytest.ini").write_text(INSTALLED_INI)
    env = clean_env() | {"PROBE_URL": probe_url(tmp_path, database_url)}
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestUnraisableExceptionWarning",
         str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0 and "5 passed" in done.stdout, done.stdout + done.stderr


# The opt-in pytest plugin (rollback_isolation_plugin.py, the wheel's pytest11 entry point).
PLUGIN_FIXTURES = ("rollback_isolation_engine", "isolated_sessions", "isolated_session")

NOT_OPTED_IN_CONFTEST = '''
import rollback_isolation as iso        # the module imported the usual ways: nothing registers
from rollback_isolation import *        # noqa: F403
'''

NOT_OPTED_IN_SUITE = '''
def test_its_own_fixtures_only(request):
    assert "isolated_session" not in request.fixturenames


def test_asks_for_a_plugin_fixture(isolated_session):
    pass
'''

PLUGIN_SUITE = '''
import pytest_asyncio
from sqlalchemy import text


@pytest_asyncio.fixture(scope="session", autouse=True, loop_scope="session")
async def schema(rollback_isolation_engine):
    async with rollback_isolation_engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS plugin_probe"))
        await conn.execute(text("CREATE TABLE plugin_probe (id INTEGER PRIMARY KEY)"))
    yield
    async with rollback_isolation_engine.begin() as conn:
        print("rows left:", await conn.scalar(text("SELECT count(*) FROM plugin_probe")))
        await conn.execute(text("DROP TABLE plugin_probe"))


async def test_a_writes_and_commits(isolated_session):
    await isolated_session.execute(text("INSERT INTO plugin_probe (id) VALUES (1)"))
    await isolated_session.commit()
    assert await isolated_session.scalar(text("SELECT count(*) FROM plugin_probe")) == 1


async def test_b_sees_no_row(isolated_sessions):
    async with isolated_sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM plugin_probe")) == 0
'''

#: The negative control: the same suite with plain sessions of the engine, which commit for good.
LEAKING_CONFTEST = '''
import pytest_asyncio
from sqlalchemy.ext.asyncio import async_sessionmaker


@pytest_asyncio.fixture(loop_scope="session")
async def isolated_sessions(rollback_isolation_engine):
    yield async_sessionmaker(rollback_isolation_engine)
'''


def pytest_in(python: Path, project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args], cwd=project,
        env=env or clean_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def header_less(output: str) -> list[str]:
    """The output without the header's plugin list and the summary's duration."""
    return [re.sub(r" in [0-9.]+s ", " ", line) for line in output.splitlines() if not line.startswith("plugins:")]


def project(where: Path, ini: str, files: dict[str, str]) -> Path:
    where.mkdir()
    (where / "pytest.ini").write_text(INSTALLED_INI + ini)
    for name, text in files.items():
        (where / name).write_text(textwrap.dedent(text))
    return where


@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_the_plugin_is_inert_until_a_project_opts_in(combination, built, tmp_path):
    files = {"conftest.py": NOT_OPTED_IN_CONFTEST, "test_project.py": NOT_OPTED_IN_SUITE}
    plain = project(tmp_path / "plain", "", files)
    opted = project(tmp_path / "opted", "rollback_isolation = true\n", files)
    with installed(combination, built["wheel"]) as python:
        listed = pytest_in(python, plain, "--fixtures")
        without_plugin = pytest_in(python, plain, "--fixtures", "-p", "no:rollback_isolation")
        ran = pytest_in(python, plain, "-q")
        opted_listed = pytest_in(python, opted, "--fixtures")
        loaded = pytest_in(python, plain, "--trace-config", "-q", "-k", "its_own")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for name in PLUGIN_FIXTURES:
        assert name not in listed.stdout, listed.stdout
    # the same output as with the plugin blocked, but for the header's list of installed plugins: nothing changed
    assert header_less(listed.stdout) == header_less(without_plugin.stdout), listed.stdout + without_plugin.stdout
    # the project's tests run as before: its own pass, one asking for a plugin fixture gets pytest's error
    outcome = {word.rstrip("s"): int(n) for n, word in re.findall(r"(\d+) (failed|passed|errors?)\b", ran.stdout.splitlines()[-1])}
    assert outcome in ({"failed": 1, "passed": 1}, {"passed": 1, "error": 1}), ran.stdout  # a warning may sit between them
    assert "fixture 'isolated_session' not found" in ran.stdout, ran.stdout
    # negative controls: the plugin is loaded in that project, and one ini line brings its fixtures
    assert "rollback_isolation_plugin" in loaded.stdout, loaded.stdout
    assert opted_listed.returncode == 0, opted_listed.stdout + opted_listed.stderr
    for name in PLUGIN_FIXTURES:
        assert f"\n{name}" in opted_listed.stdout, opted_listed.stdout
    assert opted_listed.stdout.count("\nisolated_session ") == 1  # registered once, import in conftest or not


@contextlib.contextmanager
def plugin_database(backend_name: str, tmp_path: Path):
    if backend_name == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'plugin.sqlite'}"
        return
    url = sibling_url(selected_url(), f"plugin_{os.environ.get('PYTEST_XDIST_WORKER', 'master')}")
    asyncio.run(prepare(url))  # this test's own database on the selected server, created if missing
    try:
        yield url
    finally:
        asyncio.run(drop_database(url))


async def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote_identifier(parsed.database)
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    finally:
        await admin.dispose()


@pytest.mark.parametrize("combination", list(COMBINATIONS))
@pytest.mark.parametrize(
    "backend_name",
    ["postgresql", "sqlite"],  # PostgreSQL first; it needs the selected server to be PostgreSQL
)
def test_an_opted_in_project_gets_its_rows_rolled_back(backend_name, combination, built, tmp_path):
    if backend_name == "postgresql" and BACKEND != "postgresql":
        pytest.skip("needs the PostgreSQL server (DATABASE_URL or ./run-tests.sh --postgres)")
    with plugin_database(backend_name, tmp_path) as url:
        if backend_name == "sqlite":  # the URL in the ini file
            ini, env = f"rollback_isolation_url = {url}\n", clean_env()
        else:  # a password stays out of files and command lines: the environment variable
            ini, env = "rollback_isolation = true\n", clean_env() | {"ROLLBACK_ISOLATION_URL": url}
        isolated = project(tmp_path / "isolated", ini, {"test_plugin.py": PLUGIN_SUITE})
        leaking = project(tmp_path / "leaking", ini, {"test_plugin.py": PLUGIN_SUITE, "conftest.py": LEAKING_CONFTEST})
        with installed(combination, built["wheel"]) as python:
            done = pytest_in(python, isolated, "-q", "-s", "-W", "error::pytest.PytestUnraisableExceptionWarning", env=env)
            control = pytest_in(python, leaking, "-q", "-s", env=env)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr
    assert "rows left: 0" in done.stdout
    # negative control: plain sessions of the same engine keep the row, and the second test says so
    assert "1 failed, 1 passed" in control.stdout and "assert 1 == 0" in control.stdout, control.stdout + control.stderr
    assert "rows left: 1" in control.stdout


OWN_ENGINE_CONFTEST = """
import os

import pytest_asyncio
from sqlalchemy.ext.asyncio import create_async_engine


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rollback_isolation_engine():  # the project's own engine replaces the plugin's
    engine = create_async_engine(os.environ["OWN_URL"])
    yield engine
    await engine.dispose()
"""


@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_the_plugin_uses_a_projects_own_engine_and_says_what_is_missing(combination, built, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'own.sqlite'}"
    own = project(tmp_path / "own", "rollback_isolation = true\n", {"test_plugin.py": PLUGIN_SUITE, "conftest.py": OWN_ENGINE_CONFTEST})
    no_url = project(tmp_path / "no_url", "rollback_isolation = true\n", {"test_plugin.py": PLUGIN_SUITE})
    function_loops = tmp_path / "function_loops"
    function_loops.mkdir()
    (function_loops / "pytest.ini").write_text(f"[pytest]\nasyncio_mode = auto\nrollback_isolation_url = {url}\n")
    (function_loops / "test_plugin.py").write_text(textwrap.dedent(PLUGIN_SUITE))
    with installed(combination, built["wheel"]) as python:
        done = pytest_in(python, own, "-q", "-s", env=clean_env() | {"OWN_URL": url})
        missing = pytest_in(python, no_url, "-q")
        wrong_loops = pytest_in(python, function_loops, "-q")
    assert done.returncode == 0 and "2 passed" in done.stdout and "rows left: 0" in done.stdout, done.stdout + done.stderr
    # opted in without a URL or an engine: every test errors, saying what to set
    assert "2 errors" in missing.stdout and "no database URL: set rollback_isolation_url" in missing.stdout, missing.stdout
    # opted in with the tests on their own loops: pytest stops at once, saying which setting to change
    assert wrong_loops.returncode == 4, wrong_loops.stdout + wrong_loops.stderr
    assert "set asyncio_default_test_loop_scope = session" in wrong_loops.stderr
