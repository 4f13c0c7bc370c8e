"""The isolation benchmark (``python -m bench``) works: CI runs it in smoke mode only.

Not part of the reference suite (``pytest tests``): every test here starts pytest processes,
so ``run-tests.sh`` runs this file as a step of its own: ``pytest bench/test_bench.py``.

Smoke mode runs 5 tests per strategy, once, so its timings mean nothing and nothing here
asserts on them (nor on how long anything takes). What is asserted: the command finishes,
writes its outputs, every strategy ran all its tests without a failure, each isolation check
really looked at data earlier tests had written, and the check has teeth (it fails when rows
leak). On the database ``DATABASE_URL`` names: SQLite when unset, PostgreSQL when it names one
(``./run-tests.sh --postgres``), never both in one step.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.runner import prepare_workdir, run_pytest
from bench.strategies import STRATEGIES
from course.database import backend

REPO_ROOT = Path(__file__).resolve().parent.parent
SMOKE_TESTS = 5


def _postgres_base_url() -> str | None:
    """The PostgreSQL server DATABASE_URL names, with a database-name prefix of this process's own."""
    url = os.environ.get("DATABASE_URL", "")
    if not url or backend(url) != "postgresql":
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    return make_url(url).set(database=f"benchsmoke_{worker}").render_as_string(hide_password=False)


def test_smoke_run_writes_outputs_and_every_strategy_passes(tmp_path):
    pg_url = _postgres_base_url()
    backends = ["postgresql"] if pg_url else ["sqlite"]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench", "--smoke", "--backends", ",".join(backends),
           "--out", str(out), "--workdir", str(tmp_path / "work")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    if pg_url:  # in the environment: an argument would show the password to every local user
        env["BENCH_POSTGRES_URL"] = pg_url
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    results = json.loads((out / "results.json").read_text())
    assert (out / "isolation-benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "table.md").read_text().startswith("| database |")
    assert results["smoke"] is True
    assert results["config"]["tests_per_strategy"] == SMOKE_TESTS
    assert len(results["config"]["tables"]) >= 10
    assert {"animals", "adopters", "adoptions"} <= set(results["config"]["tables"])
    assert results["summary"].keys() == set(backends)
    assert "test phase (median)" in proc.stdout and "Targets" in proc.stdout

    runs = {(r["backend"], r["strategy"], r["workers"]): r for r in results["runs"]}
    expected = {(b, s, 0) for s, strategy in STRATEGIES.items() for b in backends if b in strategy.backends}
    expected |= {(b, "rollback", 2) for b in backends}
    assert runs.keys() == expected
    for key, run in runs.items():
        assert run["ok"], (key, run)
        assert run["outcomes"] == {"passed": SMOKE_TESTS}, key
        assert run["test_phase_s"] > 0, key
        checks = run["isolation_checks"]
        assert checks["run"] == checks["expected"] >= 1, key
        assert checks["after_writes"] >= 1, f"{key}: no isolation check ran after a test had written rows"
        if key[1] == "none":
            assert checks["leaked_rows_seen"] > 0, f"{key}: without isolation the rows must still be there"
        else:
            assert checks["leaked_rows_seen"] == 0, key
    for b in backends:  # xdist: two workers, each with a database of its own
        assert len(set(runs[(b, "rollback", 2)]["databases"])) == 2, runs[(b, "rollback", 2)]["databases"]

    if pg_url:
        pg = results["databases"]["postgresql"]
        assert pg["fsync"] in ("on", "off")
        assert f"fsync={pg['fsync']}" in proc.stdout
        assert "truncate" in results["summary"]["postgresql"]["strategies"]
    else:
        assert "truncate" not in results["summary"]["sqlite"]["strategies"]  # no TRUNCATE in SQLite


def test_isolation_check_fails_when_rows_leak(tmp_path):
    """Negative control: no cleanup, but the checks expect isolation: they must fail."""
    prepare_workdir(tmp_path, SMOKE_TESTS, ["sqlite"], ["none"])
    base = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'bench.sqlite'}"
    run = run_pytest(tmp_path, "sqlite", base, "none", tests=SMOKE_TESTS,
                     extra_env={"BENCH_EXPECT_ISOLATION": "1"})
    assert not run.ok
    assert run.outcomes == {"passed": SMOKE_TESTS - 1, "failed": 1}, run.output_tail
    assert "rows left behind by the 4 earlier tests" in run.output_tail


def test_readme_benchmark_block_is_what_the_results_say():
    """Every number in the README's benchmark section comes from bench/results/ (python -m bench --render)."""
    from bench.readme import update_readme

    assert update_readme(check=True) == 0, "run: .venv/bin/python -m bench --render, then commit README.md"


def test_readme_check_fails_when_a_number_is_edited_by_hand(tmp_path, capsys):
    """Negative control: the check above notices a hand-edited number."""
    from bench.readme import README, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(README.read_text().replace("| 300 |", "| 301 |", 1))
    assert update_readme(readme=readme, check=True) == 1
    assert "python -m bench --render" in capsys.readouterr().out
