"""course/database.py: which database a test process uses, and the answer when it is not there.

The module is imported as a whole: its functions ``test_database_url`` and ``test_databases``
would otherwise be collected as tests.
"""

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqlalchemy.engine import make_url

import course.database as database
from app.config import DEFAULT_DATABASE_URL, REPO_ROOT

PG = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:54329/shelter"
UNREACHABLE_PG = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:1/shelter"


@pytest.fixture
def selected(monkeypatch):
    """Select a database as a learner would, with no xdist worker unless a test sets one."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv(database.SELECTED_VAR, raising=False)  # set by conftest for this run

    def select(url: str | None) -> None:
        if url is None:
            monkeypatch.delenv(database.ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(database.ENV_VAR, url)

    return select


def test_unset_database_url_selects_the_sqlite_file_under_dot_data(selected):
    selected(None)
    assert database.selected_url() == DEFAULT_DATABASE_URL
    assert database.backend(database.selected_url()) == "sqlite"


def test_empty_database_url_counts_as_unset(selected):
    selected("")
    assert database.selected_url() == DEFAULT_DATABASE_URL


@pytest.mark.parametrize("worker", ["master", "gw0", "gw7"])
def test_sqlite_test_database_is_a_sibling_file_per_worker(selected, worker):
    selected(None)
    expected = REPO_ROOT / ".data" / f"shelter_test_{worker}.sqlite"
    assert database.test_database_url(worker) == f"sqlite+aiosqlite:///{expected}"


@pytest.mark.parametrize("worker", ["master", "gw0", "gw7"])
def test_postgresql_test_database_is_a_sibling_database_per_worker_keeping_credentials(selected, worker):
    selected(PG)
    assert database.test_database_url(worker) == f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:54329/shelter_test_{worker}"
    assert database.backend(database.test_database_url(worker)) == "postgresql"


def test_worker_defaults_to_the_xdist_environment_variable_then_master(selected, monkeypatch):
    selected(PG)
    assert database.test_database_url().endswith("/shelter_test_master")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert database.test_database_url().endswith("/shelter_test_gw3")


def test_sqlite_sibling_keeps_directory_and_suffix(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"
    assert database.sibling_url(url, "gw1") == f"sqlite+aiosqlite:///{tmp_path / 'dev_test_gw1.db'}"


def test_the_test_database_is_never_the_selected_one(selected):
    for url in (None, PG):
        selected(url)
        assert database.test_database_url() != database.selected_url()


def test_this_process_uses_the_test_database_named_after_its_worker(database_url):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    name = Path(make_url(database_url).database).stem  # a SQLite file's stem or a PostgreSQL name
    assert name.endswith(f"{database.TEST_PREFIX}{worker}")
    assert name.count(database.TEST_PREFIX) == 1, name


def test_describe_sqlite_names_the_file_only(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'shelter_test_gw0.sqlite'}"
    assert database.describe(url) == "SQLite (aiosqlite), file shelter_test_gw0.sqlite"


def test_describe_postgresql_names_host_port_and_database_but_not_the_password():
    description = database.describe(PG)
    assert description == "PostgreSQL (asyncpg) at 127.0.0.1:54329, database shelter"
    assert "s3cret" not in description


async def test_prepare_sqlite_creates_the_parent_directory(tmp_path):
    target = tmp_path / "new" / "dir" / "t.sqlite"
    await database.prepare(f"sqlite+aiosqlite:///{target}")
    assert target.parent.is_dir()


async def test_prepare_unreachable_postgresql_says_how_to_start_it_or_fall_back():
    started = time.monotonic()
    with pytest.raises(database.DatabaseUnavailable) as caught:
        await asyncio.wait_for(database.prepare(UNREACHABLE_PG), timeout=30)
    message = str(caught.value)

    assert time.monotonic() - started < 10
    assert message.startswith("PostgreSQL is not reachable at 127.0.0.1:1 (")
    assert "scripts/postgres start" in message
    assert "unset DATABASE_URL" in message
    assert "s3cret" not in message  # the URL is shown with its password hidden
    assert "DATABASE_URL=postgresql+asyncpg://postgres:***@127.0.0.1:1/shelter" in message
    assert isinstance(caught.value.__cause__, OSError)


def test_suite_stops_with_code_3_and_instructions_when_postgresql_is_unreachable():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_")) and k != database.SELECTED_VAR}
    env[database.ENV_VAR] = "postgresql+asyncpg://postgres@127.0.0.1:1/shelter"
    repo = Path(__file__).resolve().parent.parent

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_animals.py"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr

    assert result.returncode == 3, output
    assert "PostgreSQL is not reachable at 127.0.0.1:1" in output
    assert "scripts/postgres start" in output and "unset DATABASE_URL" in output
    assert not re.search(r"\d+ (passed|failed|error)", output)  # stopped before running any test
    # 3-5 s on an idle machine, 15 s seen under heavy load: the bound only rules out a hang
    # (asyncpg's default connect timeout is 60 s), not a slow interpreter start.
    assert elapsed < 45, f"took {elapsed:.1f}s"
