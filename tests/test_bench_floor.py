"""``python -m bench.floor`` works (smoke mode: its timings mean nothing, nothing here reads them as speed).

Asserted: on the active database, every fixture's run passes its tests (a fixture that did not
isolate would collide on nothing here, so the check is that every variant runs and reports), the
result file has the ratio and the tests/s the README and lessons read; the stored full run
covers both databases and the README shows it verbatim.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import floor
from course.database import backend, selected_url
from tests.test_isolation_bench import postgres_prefix_url

pytestmark = pytest.mark.subprocess

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKEND = backend(selected_url())


def test_smoke_run_reports_every_fixture_the_ratio_and_tests_per_second(tmp_path):
    command = [sys.executable, "-m", "bench.floor", "--smoke", "--backends", BACKEND, "--out", str(tmp_path)]
    if BACKEND == "postgresql":
        command += ["--postgres-url", postgres_prefix_url().replace("layeredsmoke", "floorsmoke")]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BENCH_POSTGRES_URL", "PYTEST_ADDOPTS")}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr

    result = json.loads((tmp_path / "floor.json").read_text())
    rows = {(r["variant"], r["requests_per_test"]): r for r in result["summary"]}
    assert set(rows) == {(variant, 1) for variant in floor.DEFAULT_VARIANTS}
    assert all(r["ok"] and r["backend"] == BACKEND and r["cpu_ms_per_test"] > 0 for r in rows.values())
    assert rows[("floor", 1)]["x_floor"] == 1.0
    assert set(result["fixture_x_floor"]) == {f"{BACKEND}.1"}
    assert result["fixture_tests_per_s"][f"{BACKEND}.1"]["n2"] > 0  # the -n 2 run happened and passed
    assert result["article_claim"]["tests_per_s"] == 500
    assert "× floor" in (tmp_path / "floor.md").read_text()


def test_the_stored_floor_results_are_a_full_run_on_both_databases_that_passed():
    result = json.loads((REPO_ROOT / "bench/results/floor.json").read_text())
    assert not result["config"]["smoke"]
    assert {(r["backend"], r["requests_per_test"]) for r in result["summary"]} == {
        (b, n) for b in ("sqlite", "postgresql") for n in (1, 3)
    }
    assert all(r["ok"] for r in result["summary"])
    assert set(result["fixture_x_floor"]) == {"sqlite.1", "sqlite.3", "postgresql.1", "postgresql.3"}


@pytest.mark.parametrize("block", ["bench/results/floor.md", "bench/results/pytest-sqla/floor.md"])
def test_the_readme_shows_the_stored_floor_results_verbatim(block):
    readme = (REPO_ROOT / "README.md").read_text()
    begin, end = f"<!-- {block} -->\n", f"<!-- /{block} -->"
    assert begin in readme and end in readme, f"README.md lost the markers around {block}"
    shown = readme.split(begin, 1)[1].split(end, 1)[0]
    assert shown == (REPO_ROOT / block).read_text(), f"copy {block} into README.md"


def test_the_stored_pytest_sqla_comparison_ran_both_fixtures_on_both_databases():
    result = json.loads((REPO_ROOT / "bench/results/pytest-sqla/floor.json").read_text())
    assert result["config"]["variants"] == ["fixture", "pytest-sqla"]
    assert {(r["backend"], r["variant"]) for r in result["summary"]} == {
        (b, v) for b in ("sqlite", "postgresql") for v in ("fixture", "pytest-sqla")
    }
    assert all(r["ok"] for r in result["summary"])
