"""``python -m app`` really serves, on the selected database, under parallel requests.

Before the fix, on PostgreSQL every request that touched the database answered 500 (the
schema step left a connection of another event loop in the pool); on SQLite parallel
writes answered 500 ``database is locked`` and one adoption was charged many times.
``scripts/serve-check`` serves the app with uvicorn on 127.0.0.1 and checks the invariants.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.database import SELECTED_VAR, selected_url

pytestmark = pytest.mark.subprocess  # serves the app in a process of its own: its own step of run-tests.sh
REPO = Path(__file__).resolve().parent.parent


def test_served_app_survives_parallel_requests_with_its_invariants():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != SELECTED_VAR}
    env["DATABASE_URL"] = selected_url()  # serve-check derives its own ..._test_serve database from it
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "serve-check"), "--parallel", "8", "--rounds", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "5xx answers: 0; charges: 2 for 2 adoptions" in output
    assert "serve-check: OK" in output
