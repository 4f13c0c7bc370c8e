"""``python -m bench.layered`` works (smoke mode; its timings mean nothing and nothing here reads them).

Asserted: it finishes and writes layered.json and layered.md; the per-test set-up hashed the
password once per test, the layered one once per run; no rows were left; and the check has
teeth: the same shared fixture without the per-test SAVEPOINT fails the run. On the database
the suite runs on (SQLite, or PostgreSQL when ``DATABASE_URL`` names it).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bench import layered
from course.database import backend, selected_url

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKEND = backend(selected_url())


def postgres_prefix_url() -> str | None:
    """The suite's server, with a database-name prefix of this process's own (xdist-safe)."""
    url = os.environ.get("DATABASE_URL", "")  # conftest pointed it at this process's test database
    if backend(url) != "postgresql":
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    return make_url(url).set(database=f"layeredsmoke_{worker}").render_as_string(hide_password=False)


@pytest.mark.subprocess
def test_smoke_run_writes_both_files_and_counts_the_expensive_fixture(tmp_path):
    command = [sys.executable, "-m", "bench.layered", "--smoke", "--backends", BACKEND, "--out", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BENCH_POSTGRES_URL")}
    if BACKEND == "postgresql":  # in the environment: an argument would show the password to every local user
        env["BENCH_POSTGRES_URL"] = postgres_prefix_url()
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr

    result = json.loads((tmp_path / "layered.json").read_text())
    by_strategy = {row["strategy"]: row for row in result["summary"]}
    assert set(by_strategy) == {"per-test", "layered"} and all(row["backend"] == BACKEND for row in result["summary"])
    assert by_strategy["per-test"]["hashes_per_run"] == [3]  # once per test ...
    assert by_strategy["layered"]["hashes_per_run"] == [1]  # ... once per run
    assert all(row["ok"] and row["rows_left"] == 0 for row in result["summary"])
    assert "× layered" in (tmp_path / "layered.md").read_text()


@pytest.mark.subprocess
def test_the_run_fails_when_tests_share_the_layer_without_a_savepoint_each(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(layered.CONFTEST))
    (tmp_path / "test_layered_bench.py").write_text(textwrap.dedent(layered.TESTS))
    (tmp_path / "pytest.ini").write_text(layered.PYTEST_INI)
    url = layered.database_for(BACKEND, tmp_path, postgres_prefix_url())
    outcome = layered.run_once(tmp_path, BACKEND, url, layered.CONTROL, 3)
    assert (outcome["ok"], outcome["failed"], outcome["rows_left"]) == (False, 2, 0)  # the 2nd and 3rd test collide


def test_the_readme_shows_the_stored_layered_results_verbatim():
    readme = (REPO_ROOT / "README.md").read_text()
    begin, end = "<!-- bench/results/layered.md -->\n", "<!-- /bench/results/layered.md -->"
    assert begin in readme and end in readme, "README.md lost the markers around the layered benchmark's table"
    shown = readme.split(begin, 1)[1].split(end, 1)[0]
    stored = (REPO_ROOT / "bench/results/layered.md").read_text()
    assert shown == stored, "README.md's layered table differs from bench/results/layered.md: copy the file in"


def test_the_stored_layered_results_are_a_full_run_that_passed():
    result = json.loads((REPO_ROOT / "bench/results/layered.json").read_text())
    assert {row["backend"] for row in result["summary"]} == {"sqlite", "postgresql"}
    assert all(row["ok"] and row["rows_left"] == 0 for row in result["summary"])
    assert result["config"]["tests"] == 40 and result["config"]["hash"] == "PBKDF2-SHA256, 200000 rounds"
