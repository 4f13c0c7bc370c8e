"""scripts/postgres: the throwaway server's life cycle, on its own port and directory.

Runs the real script (initdb, pg_ctl) against a free port and a fresh directory, so it never
touches the server DATABASE_URL may point at. Skipped where no PostgreSQL binaries exist: the
script would apt-get install them as root, which a test must not do.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres"


def _have_postgres_binaries() -> bool:
    if os.environ.get("COURSE_PG_BIN"):
        return True
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout
        if os.access(os.path.join(bindir.strip(), "initdb"), os.X_OK):
            return True
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


needs_postgres = pytest.mark.skipif(
    not (_have_postgres_binaries() and shutil.which("psql")),
    reason="PostgreSQL server binaries or psql not installed",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env():
    # Directly under /tmp: as root the script hands the directory to the 'postgres' user,
    # which could not traverse pytest's mode-700 tmp_path.
    port = _free_port()
    env = dict(os.environ, COURSE_PG_PORT=str(port), COURSE_PG_DB="script_test",
               COURSE_PG_DIR=tempfile.mkdtemp(prefix=f"course-pg-test-{port}-"))
    yield env
    subprocess.run([str(SCRIPT), "purge"], env=env, capture_output=True, timeout=60)


def run(env, *args):
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def psql(url, sql):
    libpq_url = url.replace("+asyncpg", "")
    out = subprocess.run(["psql", "-X", "-At", libpq_url, "-c", sql],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("args", [[], ["bogus"], ["stop", "--force"]])
def test_bad_usage_exits_2_with_usage_on_stderr(args):
    result = run(os.environ, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage:" in result.stderr


def test_url_follows_the_settings():
    env = dict(os.environ, COURSE_PG_PORT="5555", COURSE_PG_DB="zoo")
    assert run(env, "url").stdout == "postgresql+asyncpg://postgres@127.0.0.1:5555/zoo\n"


@needs_postgres
def test_life_cycle(env):
    port, data_dir = env["COURSE_PG_PORT"], Path(env["COURSE_PG_DIR"])
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/script_test"

    first = run(env, "start")
    assert first.returncode == 0, first.stderr
    assert first.stdout == url + "\n"  # exactly one line: $(scripts/postgres start) works
    again = run(env, "start")  # idempotent
    assert (again.returncode, again.stdout) == (0, url + "\n"), again.stderr
    assert "already running" in again.stderr

    assert psql(url, "select 1") == "1"
    # durable defaults (a benchmark relies on them), loopback only, room for xdist workers
    assert psql(url, "show fsync") == "on"
    assert psql(url, "show listen_addresses") == "127.0.0.1"
    assert psql(url, "show max_connections") == "200"
    psql(url, "create table kept (x int); insert into kept values (42)")

    assert (run(env, "status").returncode, run(env, "status").stdout) == (0, url + "\n")
    assert run(env, "stop").returncode == 0
    assert run(env, "stop").returncode == 0  # stopping a stopped server is fine
    stopped = run(env, "status")
    assert (stopped.returncode, stopped.stdout) == (1, "")

    restarted = run(env, "start")  # the cluster and its data survive a stop
    assert restarted.returncode == 0, restarted.stderr
    assert psql(url, "select x from kept") == "42"

    assert run(env, "purge").returncode == 0
    assert not data_dir.exists()
    assert run(env, "status").returncode == 1
