"""The benchmark seen from a notebook: read the stored results, draw them, measure a little live.

Lesson 14 teaches what the numbers mean, not how the benchmark drives pytest; the plumbing
(work directories, subprocesses, the JSON layout of ``bench/results/results.json``) lives here
so that a lesson cell stays one call:

* :func:`load_results` -> :class:`StoredRun` or ``None`` (a checkout without a committed run);
* ``run.ratio("postgresql", "delete")``, ``run.xdist_speedup("sqlite")``, ``run.teardown_ms(...)``:
  the figures prose may quote, always read from the file, never typed into a lesson;
* ``run.table()`` (a markdown table that does not wrap) and ``run.plot()`` (a small bar chart);
* :func:`measure` runs the benchmark's own suite under a few strategies, live, and returns the
  benchmark's :class:`bench.runner.Run` objects.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event

from bench.runner import REPO_ROOT, Run, prepare_workdir, run_pytest
import bench.strategies
from bench.strategies import STRATEGIES

RESULTS_FILE = REPO_ROOT / "bench" / "results" / "results.json"
SHORT_NAMES = {
    "none": "none",
    "rollback": "rollback",
    "delete": "DELETE",
    "truncate": "TRUNCATE",
    "dropcreate": "drop/create",
    "freshdb": "fresh DB",
}
BACKEND_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def x(value: float) -> str:
    """A ratio as the lesson prints it: ``1.27 ×``."""
    return f"{value:.2f} ×"


@dataclass
class StoredRun:
    """The committed full benchmark run (``bench/results/results.json``)."""

    data: dict

    @property
    def backends(self) -> list[str]:
        return list(self.data["summary"])

    def strategies(self, backend: str) -> list[str]:
        return list(self.data["summary"][backend]["strategies"])

    def _row(self, backend: str, strategy: str) -> dict:
        try:
            return self.data["summary"][backend]["strategies"][strategy]
        except KeyError:
            raise LookupError(
                f"the stored run has no {strategy!r} row for {backend!r}; "
                f"it has {', '.join(self.strategies(backend)) if backend in self.data['summary'] else 'no such backend'}"
            ) from None

    def ratio(self, backend: str, strategy: str, vs: str = "rollback") -> float:
        """Median test-phase time of ``strategy`` / that of ``vs`` (``"rollback"`` or ``"none"``)."""
        if vs not in ("rollback", "none"):
            raise ValueError(f"ratios are stored against 'rollback' or 'none', not {vs!r}")
        return self._row(backend, strategy)[f"x_{vs}"]

    def per_test_ms(self, backend: str, strategy: str) -> float:
        return self._row(backend, strategy)["per_test_ms_median"]

    def teardown_ms(self, backend: str, strategy: str) -> float:
        return self._row(backend, strategy)["phase_ms_median"]["teardown"]

    def tests_per_s(self, backend: str, strategy: str) -> float:
        return self._row(backend, strategy)["tests_per_s"]

    def spread_s(self, backend: str, strategy: str) -> tuple[float, float]:
        """Fastest and slowest repeat of a strategy (test phase, seconds)."""
        times = self._row(backend, strategy)["test_phase_s"]
        return min(times), max(times)

    def xdist_speedup(self, backend: str) -> float:
        """One process / ``-n 2`` (test phase, rollback strategy): above 1 means xdist is faster."""
        return self.data["summary"][backend]["xdist"]["speedup_test_phase"]

    @property
    def tests(self) -> int:
        return self.data["config"]["tests_per_strategy"]

    @property
    def repeats(self) -> int:
        return self.data["config"]["repeats"]

    @property
    def elapsed_min(self) -> float:
        return self.data["elapsed_s"] / 60

    def describe(self) -> None:
        """Print what was measured, on which machine, with which durability settings."""
        machine, config = self.data["machine"], self.data["config"]
        print(f"stored run of {self.data['generated_at'][:10]}: {config['tests_per_strategy']} tests per strategy, "
              f"median of {config['repeats']} repeat(s), {self.elapsed_min:.0f} minutes in all")
        print(f"machine: {machine['usable_cpus']} usable CPUs, {machine['memory_gb']} GB, Python {machine['python']}")
        for line in self.data["durability"]:
            print(line)
        if self.data.get("load_note"):
            print(self.data["load_note"])

    def table(self) -> str:
        """A markdown table: per-test time and both ratios, one row per strategy and database."""
        lines = ["| database | strategy | ms/test | × none | × rollback | runs (s) |",
                 "|---|---|--:|--:|--:|--:|"]
        for backend in self.backends:
            for strategy in self.strategies(backend):
                low, high = self.spread_s(backend, strategy)
                lines.append(
                    f"| {BACKEND_LABELS.get(backend, backend)} | {SHORT_NAMES.get(strategy, strategy)} "
                    f"| {self.per_test_ms(backend, strategy):.0f} | {self.ratio(backend, strategy, 'none'):.2f} "
                    f"| {self.ratio(backend, strategy):.2f} | {low:.1f}–{high:.1f} |"
                )
        return "\n".join(lines)

    def plot(self):
        """A bar chart of time / rollback per strategy, one panel per database, readable at notebook width.

        Drawn as SVG by hand (an ``IPython.display.SVG``): the learner's install has no plotting library.
        """
        from html import escape

        from IPython.display import SVG

        panel_w, label_w, bar_h, gap, top = 430, 150, 22, 8, 34
        rows = max(len(self.strategies(b)) for b in self.backends)
        height = top + rows * (bar_h + gap) + 36
        scale_max = max(self.ratio(b, s) for b in self.backends for s in self.strategies(b)) * 1.15
        usable = panel_w - label_w - 20
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{panel_w * len(self.backends)}" height="{height}" '
                 f'font-family="sans-serif" font-size="12">']
        for i, backend in enumerate(self.backends):
            x0 = i * panel_w + label_w
            parts.append(f'<text x="{i * panel_w + panel_w / 2:.0f}" y="18" text-anchor="middle" font-size="14">'
                         f'{escape(BACKEND_LABELS.get(backend, backend))}</text>')
            for row, strategy in enumerate(self.strategies(backend)):
                value = self.ratio(backend, strategy)
                y = top + row * (bar_h + gap)
                parts.append(f'<text x="{x0 - 6}" y="{y + bar_h * 0.7:.0f}" text-anchor="end">'
                             f'{escape(SHORT_NAMES.get(strategy, strategy))}</text>')
                parts.append(f'<rect x="{x0}" y="{y}" width="{value / scale_max * usable:.1f}" height="{bar_h}" fill="#4c72b0"/>')
                parts.append(f'<text x="{x0 + value / scale_max * usable + 4:.1f}" y="{y + bar_h * 0.7:.0f}">{value:.1f}</text>')
            one = x0 + 1 / scale_max * usable
            parts.append(f'<line x1="{one:.1f}" y1="{top - 4}" x2="{one:.1f}" y2="{height - 30}" stroke="black"/>')
            parts.append(f'<text x="{x0 + usable / 2:.0f}" y="{height - 10}" text-anchor="middle">test time / rollback</text>')
        parts.append("</svg>")
        return SVG("".join(parts))


def load_results(path: Path = RESULTS_FILE) -> StoredRun | None:
    """The committed run, or ``None`` when this checkout has none (say so; the notebook goes on)."""
    if not path.exists():
        return None
    return StoredRun(json.loads(path.read_text()))


def measure(backend: str, database_url: str, strategies: list[str], *, tests: int = 20) -> dict[str, Run]:
    """Run the benchmark's suite (``tests`` tests) once per strategy, live, in real pytest subprocesses.

    On SQLite the runs use a file in a temporary directory (the benchmark derives one database
    per strategy from it); on PostgreSQL siblings of ``database_url``. Everything is removed after.
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; the benchmark has {', '.join(STRATEGIES)}")
    unsupported = [s for s in strategies if backend not in STRATEGIES[s].backends]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)} cannot run on {backend}")
    workdir = Path(tempfile.mkdtemp(prefix="benchlab-"))
    try:
        base_url = database_url if backend == "postgresql" else f"sqlite+aiosqlite:///{workdir / 'bench.sqlite'}"
        prepare_workdir(workdir, tests, [backend], strategies)
        runs = {name: run_pytest(workdir, backend, base_url, name, tests=tests) for name in strategies}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, run in runs.items():
        if not run.ok:
            raise RuntimeError(f"the live {name} run failed (exit code {run.exit_code}):\n{run.output_tail}")
    return runs


def fixture_source(name: str) -> str:
    """The ``sessions`` fixture of ``bench/strategies/<name>.py``, with the module constants it uses."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; the benchmark has {', '.join(STRATEGIES)}")
    module = Path(inspect.getfile(bench.strategies)).with_name(f"{name}.py").read_text()
    blocks = [block.strip() for block in module.split("\n\n")]
    return "\n".join(b for b in blocks if b.startswith(("CHILDREN_FIRST", "TRUNCATE", "@pytest.fixture")))


_TRANSACTION_WORDS = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


@contextlib.contextmanager
def transaction_log(engine) -> Iterator[list[str]]:
    """Record what an engine's connections do, while active: ``BEGIN``, ``INSERT``, ``COMMIT`` ...

    Transaction control is recorded from SQLAlchemy's connection events (the same on every
    driver: asyncpg sends no ``BEGIN`` text, SQLite's savepoint fix does); other statements by
    their first word.
    """
    sync = engine.sync_engine
    log: list[str] = []

    def statement(conn, cursor, text, parameters, context, executemany):
        word = text.split(None, 1)[0].upper() if text.strip() else ""
        if word and word not in _TRANSACTION_WORDS:
            log.append(word)

    listeners = {
        "begin": lambda conn: log.append("BEGIN"),
        "commit": lambda conn: log.append("COMMIT"),
        "rollback": lambda conn: log.append("ROLLBACK"),
        "savepoint": lambda conn, name: log.append("SAVEPOINT"),
        "release_savepoint": lambda conn, name, context: log.append("RELEASE SAVEPOINT"),
        "rollback_savepoint": lambda conn, name, context: log.append("ROLLBACK TO SAVEPOINT"),
        "before_cursor_execute": statement,
    }
    for name, listener in listeners.items():
        event.listen(sync, name, listener)
    try:
        yield log
    finally:
        for name, listener in listeners.items():
            event.remove(sync, name, listener)


def layered_table(path: Path = RESULTS_FILE.with_name("layered.json")) -> str:
    """The stored layered benchmark (``python -m bench.layered``) as a short markdown table."""
    if not path.exists():
        return "No stored layered run in this checkout: `python -m bench.layered` makes one."
    data = json.loads(path.read_text())
    lines = ["| database | shared data | ms/test | hashes | rows left | × layered |", "|---|---|--:|--:|--:|--:|"]
    for row in data["summary"]:
        setup = "written once" if row["strategy"] == "layered" else "per test"
        lines.append(f"| {BACKEND_LABELS.get(row['backend'], row['backend'])} | {setup} | {row['ms_per_test']:.0f} "
                     f"| {max(row['hashes_per_run'])} | {row['rows_left']} | {row['x_layered']:.1f} |")
    return f"{data['summary'][0]['tests']} tests, median of {data['summary'][0]['repeats']} runs:\n\n" + "\n".join(lines)
