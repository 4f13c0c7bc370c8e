"""A learner's work is never at risk: a notebook run or edited in JupyterLab (which autosaves it)
does not make the README's test command fail, and nothing the course prints suggests a command that
would overwrite it. Checked in a clone of this repository's last commit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.build import OTHER_OUTPUTS, PER_DATABASE

pytestmark = pytest.mark.subprocess  # runs `python -m course ...` in a clone

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "notebooks/00_start_here.ipynb"


@pytest.fixture
def clone(tmp_path):
    path = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(path)], check=True, timeout=120)
    return path


def course(clone: Path, *args: str) -> subprocess.CompletedProcess:
    # cwd first on sys.path: the clone's own course package, not this checkout's
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "course", *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)


def work_like_a_learner(path: Path) -> None:
    """What JupyterLab saves after a learner ran notebook 00 and typed into its exercise."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for n, cell in enumerate(code, 1):
        cell["execution_count"] = n
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
    exercise = next(c for c in code if "exercise" in c["metadata"].get("tags", []))
    exercise["source"] = "# my answer\nassert True\n"
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    path.write_text(json.dumps(nb, indent=1))


def test_an_edited_and_executed_notebook_00_does_not_fail_the_check(clone):
    assert course(clone, "check").returncode == 0  # the clone as committed
    work_like_a_learner(clone / NOTEBOOK)
    before = (clone / NOTEBOOK).read_text()

    checked = course(clone, "check")
    assert checked.returncode == 0, checked.stderr
    assert f"note: {NOTEBOOK} has changes of your own" in checked.stderr
    assert "course build" not in checked.stdout + checked.stderr  # no command that overwrites it
    assert (clone / NOTEBOOK).read_text() == before


def test_build_refuses_to_overwrite_the_learners_notebook(clone):
    work_like_a_learner(clone / NOTEBOOK)
    before = (clone / NOTEBOOK).read_text()
    built = course(clone, "build", "00")
    assert built.returncode == 1
    assert f"notebooks/00_start_here.ipynb has changes of your own" in built.stderr and "--force" in built.stderr
    assert (clone / NOTEBOOK).read_text() == before


def test_the_learner_path_runs_the_clean_notebook_not_the_learners(clone):
    work_like_a_learner(clone / NOTEBOOK)
    code = ("from course.build import clean_learner; import subprocess; nb = clean_learner('00_start_here'); "
            "committed = subprocess.run(['git', 'show', 'HEAD:notebooks/00_start_here.ipynb'], capture_output=True, text=True).stdout; "
            "import nbformat; assert nbformat.writes(nb) == nbformat.writes(nbformat.reads(committed, as_version=4)); print('clean')")
    done = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "clean", done.stderr


def test_negative_control_a_lesson_edited_without_a_rebuild_still_fails_the_check(clone):
    lesson = clone / "lessons" / "00_start_here.py"
    lesson.write_text(lesson.read_text().replace("# # 00 · Start here", "# # 00 · Start here (edited)", 1))
    checked = course(clone, "check")
    assert checked.returncode == 1
    assert "out of date: solutions/00_start_here.ipynb differs from lessons/00_start_here.py" in checked.stderr
    assert "never overwrites a notebook you changed without --force" in checked.stderr


# --- outputs per database (course/nbval_database.py), no clone needed ---

def tagged_cell(recorded: dict | None):
    import nbformat

    cell = nbformat.v4.new_code_cell("print(nb.backend)")
    cell.metadata["tags"] = [PER_DATABASE]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="postgresql\n")]
    if recorded is not None:
        cell.metadata[OTHER_OUTPUTS] = recorded
    return cell


def test_a_tagged_cell_is_compared_with_its_own_databases_output():
    from course import nbval_database

    cell = tagged_cell({"sqlite": [{"output_type": "stream", "name": "stdout", "text": "sqlite\n"}]})
    assert nbval_database.reference_outputs(cell, "postgresql")[0]["text"] == "postgresql\n"
    assert nbval_database.reference_outputs(cell, "sqlite")[0]["text"] == "sqlite\n"


def test_a_tagged_cell_with_nothing_recorded_fails_instead_of_being_skipped():
    from course import nbval_database

    shown = nbval_database.reference_outputs(tagged_cell(None), "sqlite")
    assert "no output recorded for sqlite" in shown[0]["text"]


def test_every_tagged_cell_of_the_solutions_has_its_sqlite_output_recorded():
    import nbformat

    missing = [f"{path.name} cell {n}" for path in sorted((ROOT / "solutions").glob("*.ipynb"))
               for n, cell in enumerate(nbformat.read(path, as_version=4).cells)
               if PER_DATABASE in cell.metadata.get("tags", []) and "sqlite" not in cell.metadata.get(OTHER_OUTPUTS, {})]
    assert missing == [], "rebuild these lessons: python -m course build NN"


def test_learner_notebooks_carry_no_recorded_outputs():
    import nbformat

    assert not any(OTHER_OUTPUTS in cell.metadata for path in (ROOT / "notebooks").glob("*.ipynb")
                   for cell in nbformat.read(path, as_version=4).cells)
