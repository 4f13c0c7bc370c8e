"""Lesson 12's exercise check: the learner's ``test_adopters.py``, run by the real pytest.

The learner's file runs once, in a subprocess, in the capstone project: every test against the
real app and against each broken version of :mod:`course.checks.l12_mutants`. It must pass
against the real app, fail against every mutant, and leave no row behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from course.database import count_rows
from course.exercise import ExerciseIncomplete, attempted, not_attempted
from course.notebook import PLUGINS_OFF

PYTEST = [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", *PLUGINS_OFF, "--tb=no"]


async def check_adopter_tests(project: Path, database_url: str, leftover_url: str, *, seed: int = 2026) -> None:
    """Run ``project/test_adopters.py`` against the app and its mutants; print the verdict or raise."""
    __tracebackhide__ = True
    path = project / "test_adopters.py"
    if not path.exists() or not attempted(path.read_text()):
        not_attempted("`test_adopters.py` still holds the placeholder (or was not written: run the exercise cell).")
        return
    with tempfile.TemporaryDirectory(prefix="capstone-check-") as scratch:
        results_file = Path(scratch) / "results.json"
        run = subprocess.run(
            [*PYTEST, "test_adopters.py", "-p", "course.checks.l12_mutants", "-p", "randomly", f"--randomly-seed={seed}"],
            cwd=project, capture_output=True, text=True, timeout=300,
            env={**os.environ, "DATABASE_URL": database_url, "CAPSTONE_RESULTS": str(results_file)},
        )
        if not results_file.exists():
            tail = "\n".join(run.stdout.strip().splitlines()[-8:] + run.stderr.strip().splitlines()[-5:])
            raise ExerciseIncomplete(f"pytest could not run test_adopters.py (exit code {run.returncode}):\n{tail}")
        results = json.loads(results_file.read_text())
    variants, descriptions = results["variants"], results["descriptions"]
    real = variants["real"]
    if not real["passed"] and not real["failed"]:
        raise ExerciseIncomplete("pytest collected no test from test_adopters.py: name them test_..., "
                                 "make them `async def` and give them the `client` fixture.")
    if real["failed"]:
        lines = "\n".join(f"  - {name} ({when}): {message}" for name, when, message in real["failed"])
        raise ExerciseIncomplete(f"your tests fail against the real app, which is right: the tests need fixing.\n{lines}")
    slipped = [descriptions[name] for name, outcome in variants.items() if name != "real" and not outcome["failed"]]
    if slipped:
        lines = "\n".join(f"  - your tests still pass when {d}" for d in slipped)
        raise ExerciseIncomplete(
            f"not yet: {len(real['passed'])} test(s) pass against the real app, but also against broken versions of it:\n"
            f"{lines}\nAdd the assertion that catches each one (the exact status code, the e-mail as stored)."
        )
    left = {table: n for table, n in (await count_rows(leftover_url)).items() if n}
    if left:
        raise ExerciseIncomplete(f"your tests pass, but left rows in the test database: {left}. Use the `client` "
                                 "fixture for every request, so that the app's sessions are the test's.")
    print(f"Well done: {len(real['passed'])} test(s) pass against the real app and, run by the real pytest in random "
          f"order, fail against each of {len(descriptions)} broken versions:")
    for description in descriptions.values():
        print(f"  - {description}")
