"""Lesson 16's exercise check: the learner's ``test_adopters.py``, run by the real pytest.

The learner's file runs once, in a subprocess, in the capstone project: every test against the
real app and against each broken version of :mod:`course.checks.l16_mutants`. It must pass
against the real app, fail against every mutant, and leave no row behind.

Technique: tests that go through the isolated ``client`` and so leave nothing behind. The leak
check counts rows in every database a connection was opened on during the run (the plugin
records them), so rows written to another database than the conftest's are found too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import make_url

from course.database import count_rows
from course.exercise import ExerciseIncomplete, attempted, not_attempted
from course.notebook import PLUGINS_OFF

PYTEST = [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", *PLUGINS_OFF, "--tb=no"]


def _with_password(hidden: str, database_url: str) -> str:
    """``hidden`` (rendered with its password masked) with the password of ``database_url`` when
    the server and user are the same: the run's results never hold a password."""
    url, known = make_url(hidden), make_url(database_url)
    if url.get_backend_name() != "sqlite" and (url.host, url.port, url.username) == (known.host, known.port, known.username):
        url = url.set(password=known.password)
    return url.render_as_string(hide_password=False)


def _label(url: str) -> str:
    parsed = make_url(url)
    return f"file `{Path(parsed.database).name}`" if parsed.get_backend_name() == "sqlite" else f"database `{parsed.database}`"


async def leftovers(urls: list[str], database_url: str) -> dict[str, dict[str, int]]:
    """Rows left in the app's tables of every database in ``urls`` (those without the tables are skipped);
    the tables that hold some are emptied, so that the notebook goes on from a clean state."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.models import Base

    found: dict[str, dict[str, int]] = {}
    for url in dict.fromkeys(_with_password(u, database_url) for u in urls):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
            continue
        try:
            counts = await count_rows(url)
        except Exception:  # a database without the app's tables (the server's admin database), or gone
            continue
        if left := {table: n for table, n in counts.items() if n}:
            found[_label(url)] = left
            engine = create_async_engine(url)
            try:
                async with engine.begin() as conn:
                    for table in reversed(Base.metadata.sorted_tables):
                        if table.name in counts:
                            await conn.execute(text(f'DELETE FROM "{table.name}"'))
            finally:
                await engine.dispose()
    return found


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
            [*PYTEST, "test_adopters.py", "-p", "course.checks.l16_mutants", "-p", "randomly", f"--randomly-seed={seed}"],
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
    leaks = await leftovers([leftover_url, *results.get("databases", [])], database_url)
    if leaks:
        where = "; ".join(f"{name}: {left}" for name, left in leaks.items())
        raise ExerciseIncomplete(
            f"your tests pass, but left rows behind ({where}; the check emptied those tables). Something in them "
            "wrote outside the test's transaction: an engine or session of its own, or the app's `SessionLocal`. "
            "Seed with the `session` / `sessions` fixtures and make every request through `client`, so that "
            "everything is rolled back.")
    print(f"Well done: {len(real['passed'])} test(s) pass against the real app and, run by the real pytest in random "
          f"order, fail against each of {len(descriptions)} broken versions:")
    for description in descriptions.values():
        print(f"  - {description}")
