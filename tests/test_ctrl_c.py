"""Ctrl-C in a PostgreSQL test run ends it cleanly: pytest's own exit code for an interrupt (2),
a few lines, no teardown traceback from the isolation helper.

A pytest run of its own (the suite's conftest, this run's settings) whose test waits inside
PostgreSQL; the moment it is there (it says so in a file: no timing), the run gets SIGINT, as a
terminal's Ctrl-C sends it to the whole process group.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import course.database as database

pytestmark = [
    pytest.mark.subprocess,  # a pytest run of its own
    pytest.mark.skipif(database.backend(database.selected_url()) != "postgresql", reason="needs the PostgreSQL server"),
]

ROOT = Path(__file__).resolve().parent.parent
WORKER = "ctrlc"  # the run's own test database: <name>_test_ctrlc

WAITING_TEST = '''
import os
from pathlib import Path

from sqlalchemy import text


async def test_waits_inside_the_database(client, session):
    Path(os.environ["CTRL_C_MARK"]).write_text("waiting")
    await session.execute(text("SELECT pg_sleep(120)"))
'''


async def _drop(url: str) -> None:
    from course.database import drop_database

    await drop_database(url)


async def test_ctrl_c_while_a_test_waits_in_postgresql_exits_2_without_a_teardown_traceback(tmp_path):
    (tmp_path / "test_waiting.py").write_text(WAITING_TEST)
    mark = tmp_path / "mark"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(CTRL_C_MARK=str(mark), PYTEST_XDIST_WORKER=WORKER)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-p", "tests.conftest",
         "-p", "no:randomly", "-p", "no:cacheprovider", "-q", str(tmp_path / "test_waiting.py")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        # A run started in the background by a non-interactive shell (nohup, CI) inherits SIGINT
        # ignored, and Python then never turns it into KeyboardInterrupt: a terminal's run does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300  # bounds a hang; nothing below depends on speed
        while not mark.exists():
            assert run.poll() is None, run.stdout.read()
            assert time.monotonic() < deadline, "the test never reached the database"
            time.sleep(0.05)
        time.sleep(0.5)  # inside pg_sleep by now (nothing depends on it: any moment of the wait will do)
        os.killpg(run.pid, signal.SIGINT)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        await _drop(database.test_database_url(WORKER))
    assert run.returncode == 2, output  # pytest.ExitCode.INTERRUPTED
    assert "KeyboardInterrupt" in output
    assert "isolation.py" not in output and "Traceback" not in output and "Error" not in output.replace("KeyboardInterrupt", ""), output
    assert len(output.splitlines()) < 15, output
