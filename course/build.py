"""Lessons are written once, as jupytext "percent" scripts in ``lessons/``; the rest is generated.

``python -m course build [NN ...]`` executes each lesson into ``solutions/NN_*.ipynb`` (with
outputs) and derives the learner notebook ``notebooks/NN_*.ipynb`` from it:

* code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes ``...  # YOUR CODE HERE``
  (the hint is the comment/prose above it); the cell is tagged ``exercise`` and ``nbval-skip``;
* quiz answer cells (``answer("01.2", "b")``) get a blank choice;
* cells tagged ``instructor`` are left out; outputs are cleared.

``python -m course check`` fails when a committed notebook is not what ``build`` makes.
"""

from __future__ import annotations

import copy
import hashlib
import re
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
VOLATILE_METADATA = ("execution",)


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
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = without_build_paths(output["text"])
            if "traceback" in output:
                output["traceback"] = [without_build_paths(line) for line in output["traceback"]]
            for key, value in output.get("data", {}).items():
                if key.startswith("text/") and isinstance(value, str):
                    output["data"][key] = without_build_paths(value)
    nbformat.write(nb, path)


def build(numbers: list[str] | None = None) -> None:
    SOLUTIONS.mkdir(exist_ok=True)
    NOTEBOOKS.mkdir(exist_ok=True)
    for path in lesson_paths(numbers):
        started = time.perf_counter()
        solution = execute(read_lesson(path), SOLUTIONS)
        write(solution, SOLUTIONS / f"{path.stem}.ipynb")
        write(to_learner(solution), NOTEBOOKS / f"{path.stem}.ipynb")
        print(f"built {path.stem} in {time.perf_counter() - started:.1f} s")


def check() -> int:
    """0 when every committed notebook is what ``build`` would make (outputs aside: nbval checks those)."""
    import nbformat
    problems = []
    for path in lesson_paths():
        solution_path, learner_path = SOLUTIONS / f"{path.stem}.ipynb", NOTEBOOKS / f"{path.stem}.ipynb"
        if not solution_path.exists() or not learner_path.exists():
            problems.append(f"{path.stem}: notebook missing")
            continue
        solution = nbformat.read(solution_path, as_version=4)
        if not same_sources(solution, read_lesson(path)):
            problems.append(f"{solution_path.relative_to(ROOT)} differs from {path.relative_to(ROOT)}")
        if nbformat.writes(to_learner(solution)) != nbformat.writes(nbformat.read(learner_path, as_version=4)):
            problems.append(f"{learner_path.relative_to(ROOT)} is not generated from {solution_path.relative_to(ROOT)}")
    orphans = {p.stem for d in (SOLUTIONS, NOTEBOOKS) for p in d.glob("*.ipynb")} - {p.stem for p in lesson_paths()}
    problems += [f"{name}.ipynb has no lesson source in lessons/" for name in sorted(orphans)]
    for problem in problems:
        print(f"out of date: {problem}", file=sys.stderr)
    if problems:
        print("Regenerate with: .venv/bin/python -m course build", file=sys.stderr)
        return 1
    print(f"OK: {len(lesson_paths())} lessons, solutions and learner notebooks are current")
    return 0
