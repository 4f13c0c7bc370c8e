"""Measured numbers in prose come from the stored benchmark results, so they cannot disagree.

``bench/results/results.json`` (written by ``python -m bench``) is read into named figures:

=========================================  ==============================================  ===========
name                                       what                                            shown as
=========================================  ==============================================  ===========
``<db>.<strategy>.x_rollback``             median test phase ÷ rollback's                  ``1.97 ×``
``<db>.<strategy>.x_none``                 median test phase ÷ no isolation's              ``1.80 ×``
``<db>.<strategy>.tests_per_s``            tests per second (median run)                   ``10.9 tests/s``
``<db>.<strategy>.ms_per_test``            median milliseconds per test                    ``89 ms``
``<db>.<strategy>.teardown_ms``            median teardown milliseconds per test           ``34 ms``
``<db>.<strategy>.median_s``               median test phase of the run                    ``27.4 s``
``<db>.<strategy>.spread``                 fastest to slowest run                          ``26.2–28.6 s``
``<db>.xdist.speedup``                     rollback, -n 2 vs -n 0, test phase              ``1.84 ×``
``<db>.xdist.speedup_wall``                the same, wall clock (worker start-up included) ``1.33 ×``
``run.minutes``                            the whole benchmark run                         ``13 min``
``run.tests``                              tests per strategy                              ``300``
``run.repeats``                            runs per strategy                               ``2``
=========================================  ==============================================  ===========

``<db>`` is ``sqlite`` or ``postgresql``; ``<strategy>`` a key of the results' summary
(``none``, ``rollback``, ``delete``, ``truncate``, ``dropcreate``, ``freshdb``).

In a notebook, print them::

    from course import figures
    print(f"On PostgreSQL TRUNCATE costs {figures.ratio('postgresql', 'truncate')} rollback.")
    print(*figures.sentences("postgresql"), sep="\\n")

In markdown (README.md, CONTRIBUTING.md, lessons' markdown cells), mark them::

    TRUNCATE costs <!-- fig:postgresql.truncate.x_rollback -->1.97 ×<!-- /fig --> rollback.

(HTML comments are invisible on GitHub and in JupyterLab; a marker inside a code span or a
fenced block is an example of the syntax and is left alone.) ``python -m course figures --check``
fails, naming file and line, when a marked number is not what the results give;
``python -m course figures --write`` rewrites the marked numbers; ``python -m course figures``
lists every figure. The file is read defensively: a figure that is missing from it is an error
that names the key it looked for, never a silent zero.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "results.json"
MARKED_FILES = ["README.md", "CONTRIBUTING.md", "lessons/*.py", "course/guide_template.md"]
MARKER = re.compile(r"<!-- fig:(?P<name>[\w.]+) -->(?P<text>.*?)<!-- /fig -->")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
STRATEGY_FIGURES = ("x_rollback", "x_none", "tests_per_s", "ms_per_test", "teardown_ms", "median_s", "spread")
XDIST_FIGURES = ("speedup", "speedup_wall")
RUN_FIGURES = ("minutes", "tests", "repeats")


class FigureError(LookupError):
    """A figure that the results file cannot give; the message says which key is missing."""


@dataclass
class Figures:
    data: dict
    source: str = "bench/results/results.json"

    # --- raw values ---------------------------------------------------------------------------------
    def _dig(self, *keys):
        node = self.data
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                path = ".".join(map(str, keys[: depth + 1]))
                near = ", ".join(sorted(node)) if isinstance(node, dict) else type(node).__name__
                raise FigureError(f"{self.source} has no {path!r} (there: {near})")
            node = node[key]
        return node

    def databases(self) -> list[str]:
        summary = self._dig("summary")
        return [db for db in summary if isinstance(summary[db], dict)]

    def strategies(self, db: str) -> list[str]:
        return list(self._dig("summary", db, "strategies"))

    def _strategy(self, db: str, strategy: str) -> dict:
        return self._dig("summary", db, "strategies", strategy)

    def _median_s(self, db: str, strategy: str) -> float:
        entry = self._strategy(db, strategy)
        if "median_test_phase_s" in entry:
            return float(entry["median_test_phase_s"])
        if entry.get("test_phase_s"):
            return float(statistics.median(entry["test_phase_s"]))
        raise FigureError(f"{self.source}: summary.{db}.strategies.{strategy} has no median_test_phase_s or test_phase_s")

    def value(self, name: str) -> float | tuple[float, float]:
        parts = name.split(".")
        if len(parts) == 4 and parts[0] == "sqla":
            return sqla_ratio(parts[1], parts[2], parts[3])
        if len(parts) == 2 and parts[0] == "run":
            return self._run(parts[1])
        if len(parts) != 3:
            raise FigureError(f"figure names look like 'postgresql.truncate.x_rollback' or 'run.minutes', not {name!r}")
        db, group, figure = parts
        if group == "xdist":
            return self._xdist(db, figure)
        return self._strategy_figure(db, group, figure)

    def _strategy_figure(self, db: str, strategy: str, figure: str):
        entry = self._strategy(db, strategy)
        if figure in ("x_rollback", "x_none"):
            if figure in entry:
                return float(entry[figure])
            base = "rollback" if figure == "x_rollback" else "none"
            return self._median_s(db, strategy) / self._median_s(db, base)
        if figure == "tests_per_s":
            if "tests_per_s" in entry:
                return float(entry["tests_per_s"])
            return self._run("tests") / self._median_s(db, strategy)
        if figure == "ms_per_test":
            return float(self._dig("summary", db, "strategies", strategy, "per_test_ms_median"))
        if figure == "teardown_ms":
            return float(self._dig("summary", db, "strategies", strategy, "phase_ms_median", "teardown"))
        if figure == "median_s":
            return self._median_s(db, strategy)
        if figure == "spread":
            runs = self._dig("summary", db, "strategies", strategy, "test_phase_s")
            return float(min(runs)), float(max(runs))
        raise FigureError(f"unknown figure {figure!r} of a strategy; known: {', '.join(STRATEGY_FIGURES)}")

    def _xdist(self, db: str, figure: str) -> float:
        key = {"speedup": "speedup_test_phase", "speedup_wall": "speedup_wall"}.get(figure)
        if key is None:
            raise FigureError(f"unknown xdist figure {figure!r}; known: {', '.join(XDIST_FIGURES)}")
        return float(self._dig("summary", db, "xdist", key))

    def _run(self, figure: str) -> float:
        if figure == "minutes":
            return float(self._dig("elapsed_s")) / 60
        if figure == "tests":
            return float(self._dig("config", "tests_per_strategy"))
        if figure == "repeats":
            return float(self._dig("config", "repeats"))
        raise FigureError(f"unknown run figure {figure!r}; known: {', '.join(RUN_FIGURES)}")

    # --- short forms for prose ----------------------------------------------------------------------
    def text(self, name: str) -> str:
        value = self.value(name)
        figure = name.rsplit(".", 1)[-1]
        if figure == "spread":
            low, high = value
            return f"{low:.1f}–{high:.1f} s"
        if figure.startswith(("x_", "speedup")):
            return f"{value:.2f} ×"
        if figure == "tests_per_s":
            return f"{value:.1f} tests/s"
        if figure.endswith("_ms") or figure == "ms_per_test":
            return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
        if figure == "median_s":
            return f"{value:.1f} s"
        if figure == "minutes":
            return f"{value:.0f} min"
        return f"{value:.0f}"

    def names(self) -> list[str]:
        out = [f"run.{f}" for f in RUN_FIGURES]
        for db in self.databases():
            out += [f"{db}.{s}.{f}" for s in self.strategies(db) for f in STRATEGY_FIGURES]
            if "xdist" in self._dig("summary", db):
                out += [f"{db}.xdist.{f}" for f in XDIST_FIGURES]
        return out

    def label(self, db: str, strategy: str) -> str:
        return str(self._strategy(db, strategy).get("label", strategy))

    def sentences(self, db: str) -> list[str]:
        """One sentence per strategy of a database, from the figures: for a notebook to print."""
        where, out = LABELS.get(db, db), []
        for strategy in self.strategies(db):
            if strategy == "rollback":
                continue
            name = f"{db}.{strategy}"
            out.append(f"On {where}, {self.label(db, strategy)} takes {self.text(name + '.x_rollback')} the time of "
                       f"rollback ({self.text(name + '.ms_per_test')} per test, runs {self.text(name + '.spread')}).")
        if "xdist" in self._dig("summary", db):
            out.append(f"On {where}, two xdist workers run the rollback suite {self.text(db + '.xdist.speedup')} "
                       f"as fast as one process (test phase; {self.text(db + '.xdist.speedup_wall')} wall clock).")
        return out


def load(path: Path | str | None = None) -> Figures:
    path = Path(path) if path else RESULTS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FigureError(f"cannot read the benchmark results {path}: {exc}") from None
    if not isinstance(data, dict):
        raise FigureError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return Figures(data, _rel(path))


SQLA_RESULTS = ROOT / "bench" / "results" / "pytest-sqla" / "floor.json"


def sqla_ratio(db: str, requests: str, figure: str) -> float:
    """``sqla.<db>.r<requests>.x_fixture``: pytest-sqla's CPU per test ÷ the recommended fixture's, from
    the stored ``python -m bench.floor --pytest-sqla`` run (bench/results/pytest-sqla/floor.json)."""
    if figure != "x_fixture" or not requests.startswith("r"):
        raise FigureError(f"pytest-sqla figures look like 'sqla.postgresql.r1.x_fixture', not sqla.{db}.{requests}.{figure}")
    data = json.loads(SQLA_RESULTS.read_text(encoding="utf-8"))
    for row in data.get("summary", []):
        if (row.get("backend"), str(row.get("requests_per_test")), row.get("variant")) == (db, requests[1:], "pytest-sqla"):
            return float(row["x_floor"])
    raise FigureError(f"{_rel(SQLA_RESULTS)} has no pytest-sqla row for {db} with {requests[1:]} request(s) per test")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# Module-level short forms on the committed results, for notebooks.
def text(name: str) -> str:
    return load().text(name)


def ratio(db: str, strategy: str, against: str = "rollback") -> str:
    """``ratio("postgresql", "truncate")`` -> ``"1.97 ×"``; ``against="none"`` for × no isolation."""
    return load().text(f"{db}.{strategy}.x_{against}")


def sentences(db: str) -> list[str]:
    return load().sentences(db)


# --- markers in markdown -------------------------------------------------------------------------------

def marked_files(root: Path | None = None) -> list[Path]:
    root = root or ROOT
    return [p for pattern in MARKED_FILES for p in sorted(root.glob(pattern))]


def live_markers(text: str):
    """``(line number, match)`` of every marker that is a figure, not an example of the syntax.

    Markers inside a fenced block (in markdown, or in a lesson's ``# `` lines) or inside an inline
    code span are examples, left alone.
    """
    fenced = False
    for number, line in enumerate(text.split("\n"), 1):
        if line.lstrip("# ").startswith(("```", "~~~")):
            fenced = not fenced
        if fenced:
            continue
        for match in MARKER.finditer(line):
            if not line[: match.start()].count("`") % 2:
                yield number, match


def check_text(text: str, figures: Figures, where: str) -> tuple[str, list[str]]:
    """The text with every marked figure rewritten, and the markers that disagreed (file:line)."""
    problems = []
    lines = text.split("\n")
    # Right to left within a line, so that earlier offsets stay valid while replacing.
    for number, match in sorted(live_markers(text), key=lambda item: (item[0], -item[1].start())):
        name, shown = match.group("name"), match.group("text")
        try:
            wanted = figures.text(name)
        except FigureError as exc:
            problems.append((number, match.start(), f"{where}:{number}: fig:{name}: {exc}"))
            continue
        if shown != wanted:
            problems.append((number, match.start(),
                             f"{where}:{number}: fig:{name} says {shown!r}, {figures.source} gives {wanted!r}"))
        line = lines[number - 1]
        lines[number - 1] = line[: match.start()] + f"<!-- fig:{name} -->{wanted}<!-- /fig -->" + line[match.end():]
    return "\n".join(lines), [message for _, _, message in sorted(problems)]


def main(args: list[str]) -> int:
    if args not in ([], ["--check"], ["--write"]):
        print("usage: python -m course figures [--check | --write]", file=sys.stderr)
        return 2
    try:
        figures = load()
        if not args:
            for name in figures.names():
                try:
                    print(f"{name:40} {figures.text(name)}")
                except FigureError as exc:
                    print(f"{name:40} (missing: {exc})")
            return 0
    except FigureError as exc:
        print(exc, file=sys.stderr)
        return 1
    all_problems, count = [], 0
    for path in marked_files():
        text = path.read_text(encoding="utf-8")
        count += len(list(live_markers(text)))
        fixed, problems = check_text(text, figures, _rel(path))
        all_problems += problems
        if args == ["--write"] and fixed != text:
            path.write_text(fixed, encoding="utf-8")
            print(f"updated {_rel(path)}")
    if args == ["--check"]:
        for problem in all_problems:
            print(f"figures: {problem}", file=sys.stderr)
        if all_problems:
            print("Update with: .venv/bin/python -m course figures --write", file=sys.stderr)
            return 1
        print(f"OK: all {count} marked figures agree with {figures.source}")
        return 0
    unknown = [p for p in all_problems if " gives " not in p]
    for problem in unknown:
        print(f"figures: {problem}", file=sys.stderr)
    return 1 if unknown else 0
