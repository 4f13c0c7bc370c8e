"""Write the suite and run it: one real pytest subprocess per (backend, strategy, workers, repeat)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.strategies import STRATEGIES
from bench.suite import count_checks, generate

REPO_ROOT = Path(__file__).resolve().parent.parent
STRATEGY_DIR = Path(__file__).resolve().parent / "strategies"

PYTEST_INI = """\
[pytest]
# Written by bench/runner.py. Same loop scopes as the course's pyproject.toml.
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""

#: Declared order (pytest-randomly off), no cache writes, and none of the plugins installed for other
#: steps (nbval for the notebooks, schemathesis and hypothesis for scripts/serve-check): each costs
#: seconds of start-up per process (outside the clock, but not free).
PYTEST_ARGS = ["-q", "-p", "no:randomly", "-p", "no:cacheprovider",
               "-p", "no:nbval", "-p", "no:schemathesis", "-p", "no:hypothesispytest"]


@dataclass
class Run:
    backend: str
    strategy: str
    workers: int
    repeat: int
    tests: int
    exit_code: int
    wall_s: float  # the whole pytest process: start-up, collection, schema, tests, teardown
    test_phase_s: float | None  # first test's setup start -> last test's teardown end (see harness)
    outcomes: dict = field(default_factory=dict)
    isolation_checks: dict = field(default_factory=dict)
    per_test_ms_median: float | None = None
    per_test_ms_p95: float | None = None
    #: median ms of pytest's setup / call / teardown phase per test: the strategy's cleanup runs
    #: in teardown, the course's client fixture (lifespan, dependency override) in setup
    phase_ms_median: dict = field(default_factory=dict)
    processes: int = 0
    databases: list = field(default_factory=list)  # one per process (xdist: one per worker)
    load_1min: list = field(default_factory=list)  # 1-minute load average before and after
    pytest_cpu_s: float | None = None  # user+system CPU of the pytest process(es), whole run
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and self.outcomes.get("passed", 0) == self.tests
                and sum(self.outcomes.values()) == self.tests)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        if self.ok:
            data.pop("output_tail")
        return data


def prepare_workdir(workdir: Path, tests: int, backends: list[str], strategies: list[str]) -> None:
    """One directory per (backend, strategy): pytest.ini, the strategy's conftest, the suite."""
    source = generate(tests)
    for b in backends:
        for s in strategies:
            if b not in STRATEGIES[s].backends:
                continue
            run_dir = workdir / f"{b}-{s}"
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "pytest.ini").write_text(PYTEST_INI)
            shutil.copyfile(STRATEGY_DIR / f"{s}.py", run_dir / "conftest.py")
            (run_dir / "test_crud.py").write_text(source)


def child_env(base_url: str, strategy: str, timing_dir: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           # an outer pytest (the smoke test, maybe an xdist worker) must not leak into the child
           if not k.startswith(("PYTEST_", "BENCH_", "COVERAGE_PROCESS_")) and k != "DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(BENCH_STRATEGY=strategy, BENCH_BASE_URL=base_url, BENCH_TIMING_DIR=str(timing_dir))
    env.update(extra or {})
    return env


def run_pytest(workdir: Path, backend: str, base_url: str, strategy: str, *, tests: int, workers: int = 0,
               repeat: int = 0, timeout: float = 3600, extra_env: dict | None = None,
               extra_args: tuple[str, ...] = ()) -> Run:
    run_dir = workdir / f"{backend}-{strategy}"
    timing_dir = workdir / "timing" / f"{backend}-{strategy}-n{workers}-r{repeat}"
    shutil.rmtree(timing_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, "-n", str(workers), *extra_args]
    load_before = os.getloadavg()[0]
    cpu_before = os.times()
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=run_dir, env=child_env(base_url, strategy, timing_dir, extra_env),
                              capture_output=True, text=True, timeout=timeout)
        exit_code, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code, output = -1, f"timed out after {timeout} s\n{exc.stdout or ''}{exc.stderr or ''}"
    wall = time.monotonic() - start
    cpu_after = os.times()
    reports = [json.loads(p.read_text()) for p in sorted(timing_dir.glob("*.json"))]
    run = Run(backend=backend, strategy=strategy, workers=workers, repeat=repeat, tests=tests,
              exit_code=exit_code, wall_s=round(wall, 4), test_phase_s=None, processes=len(reports),
              output_tail="\n".join(output.strip().splitlines()[-40:]),
              # the machine is shared: how busy it was, and the CPU time pytest itself used
              load_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],
              pytest_cpu_s=round((cpu_after.children_user - cpu_before.children_user)
                                 + (cpu_after.children_system - cpu_before.children_system), 3))
    run.databases = [r["database"] for r in reports]
    if reports:
        run.test_phase_s = round(max(r["last_end"] for r in reports) - min(r["first_start"] for r in reports), 4)
        for r in reports:
            for key, value in r["outcomes"].items():
                run.outcomes[key] = run.outcomes.get(key, 0) + value
            for key, value in r["isolation_checks"].items():
                run.isolation_checks[key] = run.isolation_checks.get(key, 0) + value
        durations = sorted(d * 1000 for r in reports for d in r["durations"])
        run.per_test_ms_median = round(statistics.median(durations), 3)
        run.per_test_ms_p95 = round(durations[min(len(durations) - 1, int(0.95 * len(durations)))], 3)
        for phase in ("setup", "call", "teardown"):
            values = [d * 1000 for r in reports for d in r.get("phases", {}).get(phase, [])]
            run.phase_ms_median[phase] = round(statistics.median(values), 3) if values else None
    run.isolation_checks["expected"] = count_checks(tests)
    return run
