"""Walk the learner's path through every notebook, and prove every exercise check on the way.

``python -m course learner-path [NN ...] [--jobs 2]`` runs each ``notebooks/NN_*.ipynb`` the way
a learner who attempts nothing would: a fresh kernel in ``notebooks/`` (where a wrong quiz
answer never raises), every cell in order, **no error allowed** (a plain nbclient run, no cell
skipped). At each exercise cell (tagged ``exercise``) it first tries the answers a learner might
give, each in place of the cell, followed by the next code cell when that one holds the check:

1. every wrong answer in ``tests/exercise_answers/NN.toml`` must fail, with an error whose text
   contains its ``expect`` string (the message the learner reads);
2. the solution (the cell with the same id in ``solutions/NN_*.ipynb``) must pass and print
   "Well done";
3. the untouched placeholder must pass and print "Not attempted yet";

then the notebook goes on from the untouched state. Wrong answers are TOML entries::

    [[wrong]]
    exercise = "test_unknown_animal_is_404"   # a name the exercise cell defines
    expect = "still passes when the route answers 200"
    code = '''
    ...the whole exercise cell, answered wrongly...
    '''

The last line printed is ``N passed, M failed`` (N and M count notebooks).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = ROOT / "solutions"
ANSWERS = ROOT / "tests" / "exercise_answers"
CHECK_CALL = re.compile(r"\b(check\w*|report)\(")
NOT_ATTEMPTED = "Not attempted yet"
WELL_DONE = "Well done"
MIN_WRONG = 4  # realistic wrong answers per exercise, each proven rejected with its message


@dataclass
class Outcome:
    error: str | None  # the error's name and text, None when the cells ran cleanly
    text: str  # everything the cells printed

    def describe(self) -> str:
        shown = (self.error or self.text).strip().replace("\n", " | ")
        return shown[:300] + ("..." if len(shown) > 300 else "")


@dataclass
class Result:
    notebook: str
    problems: list[str] = field(default_factory=list)
    proven: list[str] = field(default_factory=list)
    seconds: float = 0.0


def wrong_answers(number: str) -> list[dict]:
    path = ANSWERS / f"{number}.toml"
    if not path.exists():
        return []
    return tomllib.loads(path.read_text(encoding="utf-8")).get("wrong", [])


def _outcome(cells) -> Outcome:
    texts, error = [], None
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif output.output_type == "error":
                error = f"{output.ename}: {output.evalue} " + "\n".join(output.get("traceback", []))
            elif "data" in output:
                texts.append(str(output["data"].get("text/plain", "")))
    return Outcome(error, "".join(texts))


def run_notebook(path: Path) -> Result:
    import nbformat
    from nbclient import NotebookClient

    from course.build import clean_learner

    number = path.name[:2]
    result = Result(path.name)
    started = time.perf_counter()
    learner = clean_learner(path.stem)  # the generated notebook, never a learner's edited copy
    solution_path = next(SOLUTIONS.glob(f"{path.stem}.ipynb"), None)
    solutions = {c.id: c for c in nbformat.read(solution_path, as_version=4).cells} if solution_path else {}
    wrong = wrong_answers(number)
    used: set[int] = set()
    client = NotebookClient(learner, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})

    def run(sources: list[str], index: int) -> Outcome:
        cells = [nbformat.v4.new_code_cell(source) for source in sources]
        for cell in cells:
            client.execute_cell(cell, index)
        return _outcome(cells)

    with client.setup_kernel():
        cells = learner.cells
        for index, cell in enumerate(cells):
            if cell.cell_type != "code":
                continue
            if "exercise" in cell.metadata.get("tags", []):
                following = next((c for c in cells[index + 1:] if c.cell_type == "code"), None)
                tail = [following.source] if following is not None and not CHECK_CALL.search(cell.source) else []
                if not CHECK_CALL.search(cell.source) and not (tail and CHECK_CALL.search(tail[0])):
                    result.problems.append(f"exercise cell {index}: no check call in it or in the next code cell")
                answers = [(i, w) for i, w in enumerate(wrong) if w["exercise"] in cell.source]
                if len(answers) < MIN_WRONG:
                    result.problems.append(f"exercise cell {index}: {len(answers)} wrong answer(s) in tests/exercise_answers/{number}.toml, at least {MIN_WRONG} wanted")
                for i, answer in answers:
                    used.add(i)
                    got = run([answer["code"], *tail], index)
                    if got.error is None or answer["expect"] not in (got.error + got.text):
                        result.problems.append(f"exercise cell {index}, wrong answer {i + 1} ({answer['exercise']}): expected a failure saying {answer['expect']!r}, got: {got.describe()}")
                    else:
                        result.proven.append(f"cell {index}: wrong answer {i + 1} rejected")
                solved = solutions.get(cell.id)
                if solved is None:
                    result.problems.append(f"exercise cell {index}: no cell with id {cell.id} in {solution_path}")
                else:
                    got = run([solved.source, *tail], index)
                    if got.error is not None or WELL_DONE not in got.text:
                        result.problems.append(f"exercise cell {index}: the solution should pass and print {WELL_DONE!r}, got: {got.describe()}")
                    else:
                        result.proven.append(f"cell {index}: solution accepted")
                got = run([cell.source, *tail], index)
                if got.error is not None or NOT_ATTEMPTED not in got.text:
                    result.problems.append(f"exercise cell {index}: the untouched placeholder should print {NOT_ATTEMPTED!r} and pass, got: {got.describe()}")
                else:
                    result.proven.append(f"cell {index}: placeholder says not attempted")
                cell.outputs = []
                continue
            client.execute_cell(cell, index)
            got = _outcome([cell])
            if got.error is not None:
                result.problems.append(f"cell {index} fails in the untouched learner notebook: {got.describe()}")
    unused = [w["exercise"] for i, w in enumerate(wrong) if i not in used]
    if unused:
        result.problems.append(f"wrong answers for exercises that no exercise cell defines: {', '.join(unused)}")
    result.seconds = time.perf_counter() - started
    return result


def _one(path: Path) -> tuple[Path, int, str]:
    """Each notebook in its own process: kernels and their databases never share anything."""
    proc = subprocess.run([sys.executable, "-m", "course.learner_path", "--single", str(path)],
                          cwd=ROOT, capture_output=True, text=True)
    return path, proc.returncode, proc.stdout + proc.stderr


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m course learner-path", description=__doc__.split("\n\n")[0])
    parser.add_argument("numbers", nargs="*", help="lesson numbers (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        result = run_notebook(Path(args.single))
        for line in result.proven:
            print(f"  ok   {line}")
        for line in result.problems:
            print(f"  FAIL {line}")
        print(f"  ({result.seconds:.1f} s)")
        return 1 if result.problems else 0
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.numbers:
        paths = [p for p in paths if p.name[:2] in args.numbers]
    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for path, code, output in pool.map(_one, paths):
            print(f"{'PASS' if code == 0 else 'FAIL'} {path.relative_to(ROOT)}")
            print(output.rstrip())
            failed += code != 0
    print(f"{len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
