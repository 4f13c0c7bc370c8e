"""scripts/postgres: the throwaway server's life cycle, on its own port and directory.

Runs the real script (initdb, pg_ctl) against a free port and a fresh directory, so it never
touches the server DATABASE_URL may point at. Skipped where no PostgreSQL binaries exist: the
script would apt-get install them as root, which a test must not do.
"""

import glob
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.subprocess  # runs scripts/postgres (and servers): its own step of run-tests.sh

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
    """psql over TCP with the URL's password in PGPASSWORD: an argument would be public (/proc/PID/cmdline)."""
    parsed = make_url(url)
    libpq_url = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    out = subprocess.run(["psql", "-X", "-At", libpq_url, "-c", sql], env=dict(os.environ, PGPASSWORD=parsed.password),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("args", [[], ["bogus"], ["stop", "--force"]])
def test_bad_usage_exits_2_with_usage_on_stderr(args):
    result = run(os.environ, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage:" in result.stderr


def test_url_needs_a_started_server(tmp_path):
    env = dict(os.environ, COURSE_PG_PORT="5555", COURSE_PG_DB="zoo", COURSE_PG_DIR=str(tmp_path / "none"))
    result = run(env, "url")
    assert (result.returncode, result.stdout) == (1, "")
    assert "Run: scripts/postgres start" in result.stderr


def test_default_directory_is_not_a_predictable_tmp_path():
    source = SCRIPT.read_text()
    assert "/tmp/course-postgres" not in source
    assert "chown -R" not in source  # a planted link inside the directory could redirect it


URL = re.compile(r"postgresql\+asyncpg://course:([0-9a-f]{32})@127\.0\.0\.1:(\d+)/script_test\n")


@needs_postgres
def test_life_cycle(env):
    port, data_dir = env["COURSE_PG_PORT"], Path(env["COURSE_PG_DIR"])

    first = run(env, "start")
    assert first.returncode == 0, first.stderr
    assert "No such file or directory" not in first.stderr  # the first start has no server.log yet
    assert URL.fullmatch(first.stdout), first.stdout  # exactly one line: $(scripts/postgres start) works
    url = first.stdout.strip()
    assert URL.fullmatch(first.stdout).group(2) == port
    again = run(env, "start")  # idempotent, same password
    assert (again.returncode, again.stdout) == (0, url + "\n"), again.stderr
    assert "already running" in again.stderr
    assert run(env, "url").stdout == url + "\n"

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


@needs_postgres
def test_tcp_needs_the_password_and_the_role_is_no_superuser(env):
    url = run(env, "start").stdout.strip()
    assert psql(url, "select rolsuper from pg_roles where rolname = current_user") == "f"
    libpq = url.replace("+asyncpg", "")
    for wrong in (libpq.replace(libpq.split(":")[2].split("@")[0], "0" * 32),  # wrong password
                  f"postgresql://postgres@127.0.0.1:{env['COURSE_PG_PORT']}/postgres"):  # the superuser, no password
        out = subprocess.run(["psql", "-X", "-At", "-w", wrong, "-c", "select 1"], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and "password" in out.stderr, out.stderr
    password_file = Path(env["COURSE_PG_DIR"]) / "password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(env["COURSE_PG_DIR"]).stat().st_mode) == 0o700


@needs_postgres
def test_refuses_a_server_it_did_not_start(env, tmp_path):
    assert run(env, "start").returncode == 0
    intruder = dict(env, COURSE_PG_DIR=tempfile.mkdtemp(prefix="course-pg-other-"))
    try:
        result = run(intruder, "start")  # same port, another directory: not its server
        assert (result.returncode, result.stdout) == (1, "")
        assert f"something else is already listening on 127.0.0.1:{env['COURSE_PG_PORT']}" in result.stderr
        assert re.search(r"COURSE_PG_PORT=\d+ scripts/postgres start", result.stderr), result.stderr
    finally:
        run(intruder, "purge")


def test_refuses_a_symlinked_directory(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    env = dict(os.environ, COURSE_PG_PORT=str(_free_port()), COURSE_PG_DIR=str(link))
    result = run(env, "start")
    assert result.returncode == 1 and result.stdout == ""
    assert "is a symbolic link; refusing to use it" in result.stderr
    assert list(target.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to own a directory as someone else")
def test_refuses_a_directory_someone_else_owns(tmp_path):
    foreign = Path(tempfile.mkdtemp(prefix="course-pg-foreign-"))
    os.chown(foreign, 65534, 65534)  # nobody
    try:
        env = dict(os.environ, COURSE_PG_PORT=str(_free_port()), COURSE_PG_DIR=str(foreign))
        result = run(env, "start")
        assert result.returncode == 1 and result.stdout == ""
        assert "belongs to uid 65534, not to you; refusing to use it" in result.stderr
    finally:
        shutil.rmtree(foreign)


# --- a directory another user could swap under root (check-then-use) -------------------------

def _refused(env, *args):
    result = run(env, *args)
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    return result.stderr


def test_refuses_a_directory_whose_parent_every_user_can_write():
    """Such a parent lets anyone replace the directory by a link between the script's check and its use."""
    parent = Path(tempfile.mkdtemp(prefix="course-pg-open-"))
    try:
        parent.chmod(0o777)
        env = dict(os.environ, COURSE_PG_PORT=str(_free_port()), COURSE_PG_DIR=str(parent / "pg"))
        message = _refused(env, "start")
        assert f"{parent} is writable by every user (and not sticky like /tmp)" in message
        assert f"chmod o-w {parent}" in message
        assert list(parent.iterdir()) == []  # refused before creating anything
        (parent / "pg").mkdir(mode=0o700)
        assert f"refusing {parent}/pg" in _refused(env, "purge")  # purge deletes: refused there too
        assert (parent / "pg").is_dir()
        # Control: sticky like /tmp, others cannot rename or delete what is ours: accepted.
        parent.chmod(0o1777)
        assert run(env, "purge").returncode == 0
        assert not (parent / "pg").exists()
    finally:
        shutil.rmtree(parent)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to own a directory as someone else")
def test_as_root_refuses_a_directory_inside_one_another_user_owns():
    """The attack: the owner of the parent swaps the directory for a link to a victim directory
    after the check, and root hands the victim to 'postgres'. Refused before anything is touched."""
    parent = Path(tempfile.mkdtemp(prefix="course-pg-foreign-parent-"))
    victim = Path(tempfile.mkdtemp(prefix="course-pg-victim-"))
    try:
        (parent / "pg").mkdir(mode=0o700)  # looks fine itself: root's, mode 700
        os.chown(parent, 65534, 65534)  # but nobody owns where it is
        parent.chmod(0o755)
        env = dict(os.environ, COURSE_PG_PORT=str(_free_port()), COURSE_PG_DIR=str(parent / "pg"))
        message = _refused(env, "start")
        assert f"{parent} belongs to uid 65534, who could swap what it holds for a symbolic link" in message
        assert (parent / "pg").stat().st_uid == 0 and list((parent / "pg").iterdir()) == []  # not handed to postgres
        # the same with a deeper path whose missing parents the script would create
        env["COURSE_PG_DIR"] = str(parent / "a" / "b" / "pg")
        assert "belongs to uid 65534" in _refused(env, "start")
        assert not (parent / "a").exists()
        # A group-writable parent: as root, refused too (a member of the group could swap it).
        os.chown(parent, 0, 0)
        parent.chmod(0o775)
        env["COURSE_PG_DIR"] = str(parent / "pg")
        assert f"{parent} is writable by its group (and not sticky)" in _refused(env, "start")
        assert victim.stat().st_uid == 0
    finally:
        shutil.rmtree(parent)
        shutil.rmtree(victim)


def test_a_link_on_the_way_is_resolved_once_and_its_target_checked(tmp_path):
    """COURSE_PG_DIR through a symbolic link to a world-writable place: the real place is checked."""
    open_dir = Path(tempfile.mkdtemp(prefix="course-pg-open-target-"))
    try:
        open_dir.chmod(0o777)
        (tmp_path / "via").symlink_to(open_dir)
        env = dict(os.environ, COURSE_PG_PORT=str(_free_port()), COURSE_PG_DIR=str(tmp_path / "via" / "pg"))
        assert f"{open_dir} is writable by every user" in _refused(env, "start")
    finally:
        shutil.rmtree(open_dir)
