"""Lesson 16's capstone project, rebuilt for lesson 17 from lesson 16's own cells.

Lesson 16 writes its project with ``%%project_file NAME`` cells; :func:`write_project` reads those
cells from ``lessons/16_capstone.py`` (the exercise's file excepted) and writes the same files, the
``conftest_*.py`` parts joined into ``conftest.py`` as lesson 16 joins them. So lesson 17 runs the
very project lesson 16 explains, without a copy that could drift from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from course.database import database_exists, drop_database
from course.notebook import PLUGINS_OFF

ROOT = Path(__file__).resolve().parent.parent
LESSON_16 = ROOT / "lessons" / "16_capstone.py"
EXERCISE_FILES = {"test_adopters.py"}


def project_cells(source: str | None = None) -> list[tuple[str, bool, str]]:
    """``(file name, append, text)`` of every ``%%project_file`` cell of lesson 16, in order."""
    source = LESSON_16.read_text(encoding="utf-8") if source is None else source
    found = []
    for cell in re.split(r"^# %%(?!project_file).*\n", source, flags=re.M):
        first, _, body = cell.partition("\n")
        if match := re.fullmatch(r"# %%project_file (\S+)((?: --append)?)", first.strip()):
            found.append((match.group(1), bool(match.group(2)), body))
    return found


def write_project(project: Path) -> list[str]:
    """Write lesson 16's project (``isolation.py``, ``pytest.ini``, ``conftest.py``, the tests) into ``project``."""
    import tests.isolation

    project.mkdir(parents=True, exist_ok=True)
    (project / "isolation.py").write_bytes(Path(tests.isolation.__file__).read_bytes())
    for name, append, body in project_cells():
        if name in EXERCISE_FILES:
            continue
        with (project / name).open("a" if append else "w", encoding="utf-8") as file:
            file.write(body.rstrip("\n") + "\n")
    parts = sorted(project.glob("conftest_*.py"))
    (project / "conftest.py").write_text("\n\n".join(p.read_text().strip() for p in parts) + "\n")
    for part in parts:
        part.unlink()
    return sorted(p.name for p in project.iterdir())


def pytest_run(directory: Path, database_url: str, *args: str, env: dict[str, str] | None = None):
    """``python -m pytest`` in ``directory`` (as lesson 16's ``pytest_run``): the completed process and
    pytest's summary line without its duration and its count of warnings."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", *PLUGINS_OFF, *args],
        cwd=directory, capture_output=True, text=True, timeout=180,
        env={**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200", **(env or {})},
    )
    lines = completed.stdout.strip().splitlines() or [completed.stderr.strip() or "no output"]
    summary = re.sub(r" in [\d.]+s.*$", "", lines[-1]).strip("= ")
    return completed, re.sub(r", \d+ warnings?", "", summary)  # drivers warn differently: counts vary


async def remove_project(project: Path, database_urls: Iterable[str]) -> list[str]:
    """Lessons 16 and 17's clean-up: delete the temporary ``project`` folder and drop the databases its
    runs created (:func:`course.database.drop_database`; one that is not there is not an error).
    Returns the URLs among ``database_urls`` that still exist afterwards: none, unless a drop failed."""
    shutil.rmtree(project, ignore_errors=True)
    urls = list(database_urls)
    for url in urls:
        await drop_database(url)
    return [url for url in urls if await database_exists(url)]
