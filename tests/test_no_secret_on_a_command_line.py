"""No token or password on any process's command line while the course starts.

Every local user can read every process's arguments (``/proc/PID/cmdline``, what ``ps`` shows);
only the environment (``/proc/PID/environ``) is private. On a shared machine (a JupyterHub, a lab
server) a Jupyter token there is code execution as the learner, a database password the learner's
data. So ``launch.sh`` gives Jupyter its token as ``JUPYTER_TOKEN``, and ``scripts/postgres`` gives
psql the role's password on its standard input.

Each test reads every process's arguments, over and over, while the course starts, as a second
user would, and looks for the secret; a canary the test passes as an argument on purpose is the
negative control (the same reading must find it). The PostgreSQL test also records the arguments
of every PostgreSQL program the script runs (wrappers in COURSE_PG_BIN), so even a psql that lives
a few milliseconds between two readings is seen.
"""

import glob
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.test_postgres_script import _free_port, needs_postgres

pytestmark = [
    pytest.mark.subprocess,  # starts JupyterLab, PostgreSQL
    pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc (Linux)"),
]

ROOT = Path(__file__).resolve().parent.parent


class CommandLines:
    """Every command line seen in /proc while it runs (a thread re-reading all of them)."""

    def __init__(self):
        self.seen: set[bytes] = set()
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _read_all(self) -> None:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        self.seen.add(f.read())
                except OSError:  # ended meanwhile
                    pass
        self.rounds += 1

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._read_all()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._read_all()  # and once more, after the start-up

    def containing(self, text: str) -> list[str]:
        return sorted(c.replace(b"\0", b" ").decode(errors="replace") for c in self.seen if text.encode() in c)


def test_launch_sh_gives_jupyter_its_token_through_the_environment(tmp_path):
    canary = "canary" + secrets.token_hex(8)  # an argument given to launch.sh on purpose
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTEST_"))}
    env.update(HOME=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite'}")
    lines: list[str] = []
    with CommandLines() as seen:
        server = subprocess.Popen([str(ROOT / "launch.sh"), "--no-browser", f"--ServerApp.custom_display_url=http://{canary}.invalid/"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        reader = threading.Thread(target=lambda: lines.extend(server.stderr), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 300  # bounds a hang; the assertions are about behaviour
            url = None
            while True:
                assert server.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "".join(lines)
                found = url or next((m for line in list(lines)
                                     if (m := re.search(r"http://localhost:(\d+)/lab/tree/\S+\?token=([0-9a-f]+)", line))), None)
                url = found
                if url:
                    try:
                        status = httpx.get(f"http://127.0.0.1:{url.group(1)}/api/status",
                                           headers={"Authorization": f"token {url.group(2)}"}, timeout=10)
                        if status.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                time.sleep(0.2)
            port, token = url.group(1), url.group(2)
            # The token launch.sh printed is the one in effect, and the server wants one.
            assert httpx.get(f"http://127.0.0.1:{port}/api/contents", timeout=10).status_code == 403
            assert httpx.get(f"http://127.0.0.1:{port}/api/contents", timeout=10,
                             headers={"Authorization": f"token {token}"}).status_code == 200
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)
    reader.join(timeout=10)
    assert len(token) == 48
    assert seen.containing(token) == []
    # Negative control: the same reading finds an argument of the server (the canary) and the server itself.
    assert any("jupyter" in c and "lab" in c for c in seen.containing(canary)), seen.containing(canary)
    # Jupyter's own log shows "?token=..." for a token it did not make: the only copy is launch.sh's line.
    assert "".join(lines).count(token) == 1, "".join(lines)


def _real_bin() -> str:
    if os.environ.get("COURSE_PG_BIN"):
        return os.environ["COURSE_PG_BIN"]
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if os.access(os.path.join(bindir, "initdb"), os.X_OK):
            return bindir
    return max(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))


WRAPPER = """#!/bin/sh
printf '%s\\n' "$0 $*" >> {log}
exec {real} "$@"
"""


@needs_postgres
def test_scripts_postgres_start_puts_no_password_on_a_command_line():
    real = _real_bin()
    tools = Path(tempfile.mkdtemp(prefix="course-argv-"))  # under /tmp: as root, 'postgres' runs these
    tools.chmod(0o755)
    log = tools / "argv.log"
    log.touch()
    log.chmod(0o666)
    for name in ("initdb", "pg_ctl", "postgres", "psql", "pg_isready"):
        (tools / name).write_text(WRAPPER.format(log=log, real=os.path.join(real, name)))
        (tools / name).chmod(0o755)
    canary = "canary" + secrets.token_hex(8)
    port = _free_port()
    env = dict(os.environ, COURSE_PG_BIN=str(tools), COURSE_PG_PORT=str(port), COURSE_PG_DB="argv_test",
               COURSE_PG_DIR=tempfile.mkdtemp(prefix=f"course-pg-argv-{port}-"),
               COURSE_PG_OPTIONS=f"-c application_name={canary}")  # an argument on purpose
    script = ROOT / "scripts" / "postgres"
    try:
        with CommandLines() as seen:
            first = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True, timeout=300)
            again = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        assert (again.returncode, again.stdout) == (0, first.stdout), again.stderr
        password = re.fullmatch(r"postgresql\+asyncpg://course:([0-9a-f]{32})@127\.0\.0\.1:\d+/argv_test\n", first.stdout).group(1)
        argv = log.read_text()
        assert password not in argv
        assert seen.containing(password) == []
        assert password not in first.stderr + again.stderr
        # Negative controls: the recording has psql's arguments (two starts, two psql runs), and
        # both readings find the canary the server was given as an argument.
        assert argv.count(f"{tools}/psql -X -q -h") == 2, argv
        assert canary in argv
        assert any("postgres" in c for c in seen.containing(canary)), seen.containing(canary)
    finally:
        subprocess.run([str(script), "purge"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tools)
