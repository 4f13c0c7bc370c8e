"""Lessons are written once, as jupytext "percent" scripts in ``lessons/``; the rest is generated.

``python -m course build [NN ...]`` executes each lesson into ``solutions/NN_*.ipynb`` (with
outputs) and derives the learner notebook ``notebooks/NN_*.ipynb`` from it:

* code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes ``...  # YOUR CODE HERE``
  (the hint is the comment/prose above it); the cell is tagged ``exercise`` and ``nbval-skip``;
* quiz answer cells (``answer("01.2", "b")``) get a blank choice;
* cells tagged ``instructor`` are left out; outputs are cleared.

Stored outputs come from PostgreSQL, what a learner on the default path sees: ``build`` runs on
the database the course selects (``DATABASE_URL`` unset: the user's own PostgreSQL server) and
refuses to store SQLite's. A cell whose output differs by database is tagged
``output-per-database`` (and the lesson says so next to it): ``build`` then also executes the
lesson on SQLite and records that cell's SQLite outputs in its metadata (``outputs_by_database``);
the nbval run on SQLite compares the cell with them (course/nbval_database.py), never skipping it.

``python -m course check`` fails when a committed notebook is not what ``build`` makes.

A learner's work is never at risk: JupyterLab autosaves a notebook a learner runs or edits, so
``notebooks/NN_*.ipynb`` then differs from what ``build`` makes. ``check`` then checks the clean copy
git has (``git show HEAD:notebooks/...``) and leaves the learner's file alone; ``build`` refuses to
overwrite a learner notebook that is neither generated nor the committed one, unless ``--force``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: a plain `pytest tests` collection need not load nbformat
    import nbformat


ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"

SOLUTION_BLOCK = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION\n.*?^[ \t]*# END SOLUTION[ \t]*$", re.S | re.M)
ANSWER_CALL = re.compile(r"""(answer\(\s*["']\d\d\.\d+["']\s*,\s*)(["'])[^"']*\2""")
#: A cell whose output differs by database: compared with its own database's recorded output.
PER_DATABASE = "output-per-database"
#: Cell metadata: {"sqlite": [outputs]}, the outputs of the database the stored outputs are not from.
OTHER_OUTPUTS = "outputs_by_database"
#: The database stored outputs come from.
STORED_FROM = "postgresql"
VOLATILE_METADATA = ("execution", OTHER_OUTPUTS)


def lesson_paths(numbers: list[str] | None = None) -> list[Path]:
    paths = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if numbers:
        paths = [p for p in paths if p.name[:2] in numbers]
    return paths


def read_lesson(path: Path) -> nbformat.NotebookNode:
    import jupytext

    nb = jupytext.read(path)
    nb.metadata.pop("jupytext", None)
    # Cell ids derived from the content (not random), so a rebuild changes only what changed.
    seen: set[str] = set()
    for cell in nb.cells:
        base = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:12]
        cell.id = next(f"{base}-{n}" if n else base for n in range(len(nb.cells) + 1) if (f"{base}-{n}" if n else base) not in seen)
        seen.add(cell.id)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def to_learner(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    learner = copy.deepcopy(solution)
    cells = []
    for cell in learner.cells:
        tags = list(cell.metadata.get("tags", []))
        if "instructor" in tags:
            continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            for key in VOLATILE_METADATA:
                cell.metadata.pop(key, None)
            if SOLUTION_BLOCK.search(cell.source):
                cell.source = SOLUTION_BLOCK.sub(lambda m: f"{m['indent']}...  # YOUR CODE HERE", cell.source)
                tags += [t for t in ("exercise", "nbval-skip") if t not in tags]
            if "quiz-answer" in tags:
                cell.source = ANSWER_CALL.sub(r'\1""', cell.source)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)
    learner.cells = cells
    return learner


def same_sources(a: nbformat.NotebookNode, b: nbformat.NotebookNode) -> bool:
    def key(nb):
        return [(c.cell_type, c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells]

    return key(a) == key(b)


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


#: Where the build ran shows in tracebacks and warnings; stored outputs say REPO/ and
#: SITE-PACKAGES/ instead (course/nbval-sanitize.cfg maps a live run's paths to the same words).
BUILD_PATHS = (
    (re.compile(r"(?:/[\w.@+-]+)+/site-packages/"), "SITE-PACKAGES/"),
    (re.compile(r"[\w.@+-]*SITE-PACKAGES/"), "SITE-PACKAGES/"),
    (re.compile(r"(?:/[\w.@+-]+)+/(?=(?:solutions|notebooks|lessons|app|tests|course|bench|\.data)/)"), "REPO/"),
)


def without_build_paths(text: str) -> str:
    for pattern, replacement in BUILD_PATHS:
        text = pattern.sub(replacement, text)
    return text


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    import nbformat

    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        recorded = [o for outputs in cell.metadata.get(OTHER_OUTPUTS, {}).values() for o in outputs]
        for output in [*cell.get("outputs", []), *recorded]:
            if "text" in output:
                output["text"] = without_build_paths(output["text"])
            if "traceback" in output:
                output["traceback"] = [without_build_paths(line) for line in output["traceback"]]
            for key, value in output.get("data", {}).items():
                if key.startswith("text/") and isinstance(value, str):
                    output["data"][key] = without_build_paths(value)
    nbformat.write(nb, path)


def committed_text(path: Path) -> str | None:
    """The file as the checkout's last commit has it (``git show HEAD:path``); None outside git."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{path.relative_to(ROOT).as_posix()}"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def learner_work(path: Path) -> bool:
    """True when ``path`` (a learner notebook) holds a learner's work: it is neither what ``build``
    derives from the solution on disk nor the committed file."""
    import nbformat

    if not path.exists():
        return False
    solution_path = SOLUTIONS / path.name
    text = path.read_text(encoding="utf-8")
    if solution_path.exists():
        generated = nbformat.writes(to_learner(nbformat.read(solution_path, as_version=4)))
        if nbformat.writes(nbformat.reads(text, as_version=4)) == generated:
            return False
    committed = committed_text(path)
    return committed is None or committed != text


def clean_learner(stem: str) -> nbformat.NotebookNode:
    """The learner notebook as generated, never a learner's edited copy: the file when it is the
    generated one, else git's committed copy, else derived from the solution."""
    import nbformat

    path = NOTEBOOKS / f"{stem}.ipynb"
    if path.exists() and not learner_work(path):
        return nbformat.read(path, as_version=4)
    committed = committed_text(path)
    if committed is not None:
        return nbformat.reads(committed, as_version=4)
    return to_learner(nbformat.read(SOLUTIONS / f"{stem}.ipynb", as_version=4))


def stored_url() -> str | None:
    """The database the stored outputs come from: the selected one, if it is PostgreSQL."""
    from course import database

    url = database.selected_url()
    if database.backend(url) != STORED_FROM:
        print(f"course build: stored outputs come from PostgreSQL, and the selected database is "
              f"{database.describe(url)}. Unset DATABASE_URL (the course starts your own server) or "
              f"point it at a PostgreSQL server.", file=sys.stderr)
        return None
    return url


@contextlib.contextmanager
def kernel_database(url: str):
    """Kernels started inside run on ``url`` (they inherit the environment)."""
    from course import database

    saved = {k: os.environ.get(k) for k in (database.ENV_VAR, database.SELECTED_VAR)}
    os.environ[database.ENV_VAR] = url
    os.environ.pop(database.SELECTED_VAR, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build(numbers: list[str] | None = None, *, force: bool = False) -> int:
    SOLUTIONS.mkdir(exist_ok=True)
    NOTEBOOKS.mkdir(exist_ok=True)
    paths = lesson_paths(numbers)
    kept = [p for p in paths if learner_work(NOTEBOOKS / f"{p.stem}.ipynb")]
    if kept and not force:
        for p in kept:
            print(f"course build: notebooks/{p.stem}.ipynb has changes of your own (edited or run in JupyterLab); "
                  f"not overwriting it.", file=sys.stderr)
        print("Save a copy elsewhere first (see SAVING_YOUR_WORK.md); then `python -m course build --force` "
              "replaces it with the generated notebook.", file=sys.stderr)
        return 1
    from course import database

    url = stored_url()
    if url is None:
        return 1
    for path in paths:
        started = time.perf_counter()
        with kernel_database(url):
            solution = execute(read_lesson(path), SOLUTIONS)
        tagged = [i for i, c in enumerate(solution.cells) if PER_DATABASE in c.metadata.get("tags", [])]
        if tagged:  # the same lesson on SQLite, for the cells whose output differs by database
            with kernel_database(database.SQLITE_URL):
                other = execute(read_lesson(path), SOLUTIONS)
            for i in tagged:
                solution.cells[i].metadata[OTHER_OUTPUTS] = {"sqlite": other.cells[i].outputs}
        write(solution, SOLUTIONS / f"{path.stem}.ipynb")
        write(to_learner(solution), NOTEBOOKS / f"{path.stem}.ipynb")
        print(f"built {path.stem} in {time.perf_counter() - started:.1f} s")
    return 0


def problems_of(lesson: Path, solution_text: str, learner_text: str) -> list[str]:
    import nbformat

    solution_path, learner_path = SOLUTIONS / f"{lesson.stem}.ipynb", NOTEBOOKS / f"{lesson.stem}.ipynb"
    found = []
    solution = nbformat.reads(solution_text, as_version=4)
    if not same_sources(solution, read_lesson(lesson)):
        found.append(f"{solution_path.relative_to(ROOT)} differs from {lesson.relative_to(ROOT)}")
    if nbformat.writes(to_learner(solution)) != nbformat.writes(nbformat.reads(learner_text, as_version=4)):
        found.append(f"{learner_path.relative_to(ROOT)} is not generated from {solution_path.relative_to(ROOT)}")
    return found


def check() -> int:
    """0 when every committed notebook is what ``build`` would make (outputs aside: nbval checks those).

    A notebook a learner changed (run or edited in JupyterLab) is not held against the course: its
    committed copy is checked instead, and the learner's file is left as it is.
    """
    problems, own = [], []
    for path in lesson_paths():
        solution_path, learner_path = SOLUTIONS / f"{path.stem}.ipynb", NOTEBOOKS / f"{path.stem}.ipynb"
        if not solution_path.exists() or not learner_path.exists():
            problems.append(f"{path.stem}: notebook missing")
            continue
        texts = {p: p.read_text(encoding="utf-8") for p in (solution_path, learner_path)}
        found = problems_of(path, texts[solution_path], texts[learner_path])
        if found:
            committed = {p: committed_text(p) for p in texts}
            changed = [p for p in texts if committed[p] is not None and committed[p] != texts[p]]
            if changed and not problems_of(path, *(committed[p] if p in changed else texts[p] for p in texts)):
                own += changed
                found = []
        problems += found
    orphans = {p.stem for d in (SOLUTIONS, NOTEBOOKS) for p in d.glob("*.ipynb")} - {p.stem for p in lesson_paths()}
    problems += [f"{name}.ipynb has no lesson source in lessons/" for name in sorted(orphans)]
    for path in own:
        print(f"note: {path.relative_to(ROOT)} has changes of your own (kept as they are; its committed copy "
              f"was checked instead)", file=sys.stderr)
    for problem in problems:
        print(f"out of date: {problem}", file=sys.stderr)
    if problems:
        print("Lesson sources and generated notebooks disagree (a maintainer's step: after editing lessons/, run "
              ".venv/bin/python -m course build NN; it never overwrites a notebook you changed without --force)",
              file=sys.stderr)
        return 1
    print(f"OK: {len(lesson_paths())} lessons, solutions and learner notebooks are current")
    return 0
