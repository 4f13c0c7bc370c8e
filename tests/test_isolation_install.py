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
"""

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import tests.isolation
from course.database import backend, selected_url

pytestmark = pytest.mark.subprocess  # builds, creates venvs, installs from PyPI, runs pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HELPER = Path(tests.isolation.__file__)
DISTRIBUTION = REPO_ROOT / "packaging" / "rollback-isolation"
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
    assert [n for n in names if not n.startswith("rollback_isolation-")] == ["rollback_isolation.py"]
    assert not any(n.endswith("entry_points.txt") for n in names)  # nothing that pytest would load by itself
    with tarfile.open(built["sdist"]) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith("/rollback_isolation.py"))
        assert sdist.extractfile(member).read() == HELPER.read_bytes()
    # a wheel built from the sdist (no repository around it) carries the same bytes
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, built["sdist"])
    with zipfile.ZipFile(next(tmp_path.glob("*.whl"))) as again:
        assert again.read("rollback_isolation.py") == HELPER.read_bytes()


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


def probe_url(tmp_path: Path, database_url: str) -> str:
    if BACKEND == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'installed.sqlite'}"
    return make_url(database_url).render_as_string(hide_password=False)  # this worker's test database


@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_the_installed_helper_passes_with_the_oldest_and_newest_versions_it_claims(
    combination, built, tmp_path, database_url
):
    python = cached_venv(combination, COMBINATIONS[combination] + DRIVERS)
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", built["wheel"])
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
