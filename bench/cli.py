"""``python -m bench``: measure every isolation strategy on SQLite and PostgreSQL in one run.

    BENCH_POSTGRES_URL="$(scripts/postgres start)" .venv/bin/python -m bench   # full run (-> bench/results/)
    .venv/bin/python -m bench --smoke                                       # CI: 5 tests per strategy
    .venv/bin/python -m bench --render                                      # README block from bench/results/

What is measured: the same generated CRUD suite (``bench/suite.py``), run by a real pytest
subprocess per strategy (``bench/strategies/<name>.py`` is its conftest). The clock is the
*test phase* of pytest (first test's setup to last test's teardown, measured by a hook in
``bench/harness.py``): interpreter start-up, imports, collection and schema creation are
excluded, every fixture and every cleanup is included. Each measurement is repeated
(``--repeats``, median reported) and the strategies are interleaved round-robin, in a
rotated order per repeat, so that slow drifts of the machine hit all of them alike.

PostgreSQL is found at ``--postgres-url``, else ``$BENCH_POSTGRES_URL``, else ``$DATABASE_URL``
if it names PostgreSQL, else the default of ``scripts/postgres``. A URL with a password belongs in
the environment: as ``--postgres-url`` every local user can read it (``ps``, /proc/PID/cmdline). Its database name is only
a prefix: each pytest process creates and drops ``<name>_bench_<strategy>_<worker>``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

from bench.databases import machine_info, reachable, server_info
from bench.report import evaluate_targets, markdown_table, plot, summarize, targets_text, text_table
from bench.runner import REPO_ROOT, Run, prepare_workdir, run_pytest
from bench.schema import TABLES
from bench.strategies import STRATEGIES
from bench.suite import CHECK_EVERY, count_checks

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SCRIPTS_POSTGRES = Path(__file__).resolve().parent.parent / "scripts" / "postgres"
SMOKE_TESTS = 5
PACKAGES = ["fastapi", "starlette", "sqlalchemy", "asyncpg", "aiosqlite", "httpx", "pytest", "pytest-asyncio",
            "pytest-xdist", "asgi-lifespan", "matplotlib"]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tests", type=int, default=None, help="tests per strategy (default 300; --smoke: 5)")
    p.add_argument("--repeats", type=int, default=None,
                   help="runs per measurement, median reported (default 2: a full run then takes about 6 minutes "
                        "on a quiet 2-core machine, 3 take about 9; --smoke: 1)")
    p.add_argument("--smoke", action="store_true",
                   help=f"prove it works: {SMOKE_TESTS} tests per strategy, 1 repeat, output to a temp dir unless --out")
    p.add_argument("--backends", default=None, help="comma-separated: sqlite,postgresql (default: both; "
                   "PostgreSQL is skipped with a note when no server answers, unless named here)")
    p.add_argument("--strategies", default=",".join(STRATEGIES),
                   help=f"comma-separated subset of {','.join(STRATEGIES)} (default: all)")
    p.add_argument("--lifespan", choices=["test", "session"], default="test",
                   help="enter the app's lifespan per test (default: as the course's conftest does) or once per "
                        "process (an ablation that shows the fixed cost of the lifespan)")
    p.add_argument("--no-xdist", action="store_true", help="skip the xdist -n 2 comparison")
    p.add_argument("--postgres-url", default=None, help="PostgreSQL server (postgresql+asyncpg://...)")
    p.add_argument("--out", type=Path, default=None, help=f"where results go (default {DEFAULT_OUT.relative_to(REPO_ROOT)}/)")
    p.add_argument("--workdir", type=Path, default=None, help="where the suites and SQLite files go (default: a temp dir)")
    p.add_argument("--rerender", type=Path, default=None, metavar="RESULTS_JSON",
                   help="measure nothing: recompute the table, targets and plot from an earlier results.json")
    p.add_argument("--render", action="store_true",
                   help="measure nothing: rewrite the README's benchmark block from bench/results/")
    p.add_argument("--check", action="store_true",
                   help="with --render: change nothing, exit 1 when the README's block is not current")
    p.add_argument("--keep-workdir", action="store_true", help="keep the generated suites and timing files")
    args = p.parse_args(argv)
    args.tests = args.tests or (SMOKE_TESTS if args.smoke else 300)
    args.repeats = args.repeats or (1 if args.smoke else 2)
    if args.tests < 1 or args.repeats < 1:
        p.error("--tests and --repeats must be >= 1")
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = set(args.strategies) - set(STRATEGIES)
    if unknown:
        p.error(f"unknown strategies: {', '.join(sorted(unknown))}")
    args.explicit_backends = args.backends is not None
    args.backends = [b.strip() for b in (args.backends or "sqlite,postgresql").split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgresql"} or not args.backends:
        p.error("--backends takes sqlite and/or postgresql")
    return args


def log(message: str = "") -> None:
    print(message, file=sys.stderr, flush=True)


def postgres_url(args) -> tuple[str, str]:
    """(url, where it came from)."""
    if args.postgres_url:
        if "@" in args.postgres_url and ":" in args.postgres_url.split("//", 1)[-1].split("@", 1)[0]:
            log("bench: warning: --postgres-url carries a password, which every local user can read (ps); "
                'next time: BENCH_POSTGRES_URL="$(scripts/postgres start)" python -m bench')
        return args.postgres_url, "--postgres-url"
    if os.environ.get("BENCH_POSTGRES_URL"):
        return os.environ["BENCH_POSTGRES_URL"], "$BENCH_POSTGRES_URL"
    if os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        return os.environ["DATABASE_URL"], "$DATABASE_URL"
    # The course's own server, if this user has one running (its URL carries the password).
    status = subprocess.run([str(SCRIPTS_POSTGRES), "status"], capture_output=True, text=True, timeout=60)
    if status.returncode == 0 and status.stdout.strip():
        return status.stdout.strip(), "scripts/postgres status"
    return "postgresql+asyncpg://course@127.0.0.1:1/shelter", "nowhere: no server runs (export DATABASE_URL=$(scripts/postgres start))"


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def plan(args, backends) -> list[tuple[str, str, int, int]]:
    """(backend, strategy, workers, repeat), strategies interleaved and rotated per repeat."""
    steps = []
    for r in range(args.repeats):
        shift = r % len(args.strategies)
        for s in args.strategies[shift:] + args.strategies[:shift]:
            for b in backends:
                if b not in STRATEGIES[s].backends:
                    continue
                steps.append((b, s, 0, r))
                if s == "rollback" and not args.no_xdist:
                    steps.append((b, s, 2, r))
    return steps


def write_outputs(results: dict, runs: list[Run], out: Path) -> None:
    """Summarize ``runs``, add it to ``results``; write results.json, table.md, the PNG; print the table."""
    config, machine = results["config"], results["machine"]
    tests, backends = config["tests_per_strategy"], config["backends"]
    summary = summarize(runs, backends, list(config["strategies"]), tests)
    targets = evaluate_targets(summary)
    loads = [x for r in runs for x in r.load_1min]
    load_note = (f"machine load (1-min average) during the runs: {min(loads):.1f} to {max(loads):.1f} "
                 f"on {machine['usable_cpus']} CPUs" if loads else "")
    title = (f"Isolation strategies: {tests} CRUD tests over {len(config['tables'])} tables, "
             f"median of {config['repeats']} run(s), {machine['usable_cpus']} CPUs"
             + (" (ablation: app lifespan once per process)" if config.get("lifespan", "").startswith("ABLATION") else ""))
    results.update(load_note=load_note, summary=summary, targets=targets, runs=[r.as_dict() for r in runs])
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (out / "table.md").write_text(markdown_table(summary, tests) + "\n")
    subtitle = " | ".join(filter(None, [*results["durability"], "clock: pytest test phase (first test's setup to "
                                        "last test's teardown)", load_note]))
    plot(summary, targets, out / "isolation-benchmark.png", title=title, subtitle=subtitle)

    print(title)
    for line in filter(None, [*results["durability"], load_note]):
        print(f"  {line}")
    print()
    print(text_table(summary, tests))
    print()
    print("× no isolation / × rollback: median test-phase time divided by that strategy's (above 1 = slower);")
    print("runs: the fastest and slowest of the repeated runs; teardown ms: median per test (the cleanup runs there).")
    print("Targets (verdicts from the medians):")
    print(targets_text(targets))
    for note in results["notes"]:
        print(f"NOTE: {note}")
    print(f"\n{len(runs)} pytest runs in {results['elapsed_s']:.0f} s; wrote {out / 'results.json'}, "
          f"{out / 'table.md'}, {out / 'isolation-benchmark.png'}")


def rerender(path: Path, out: Path | None) -> int:
    """Recompute the summary, table and plot of an earlier results.json (no measuring)."""
    results = json.loads(path.read_text())
    fields = set(Run.__dataclass_fields__)
    runs = [Run(**{k: v for k, v in r.items() if k in fields}) for r in results["runs"]]
    write_outputs(results, runs, out or path.parent)
    return 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.rerender:
        return rerender(args.rerender, args.out)
    if args.render:
        from bench.readme import update_readme

        return update_readme(args.out or DEFAULT_OUT, check=args.check)
    if args.check:
        print("--check goes with --render", file=sys.stderr)
        return 2
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-smoke-")) if args.smoke else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="isolation-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []

    backends = list(args.backends)
    base_urls = {"sqlite": f"sqlite+aiosqlite:///{(workdir / 'sqlite' / 'bench.sqlite').resolve()}"}
    info = {"sqlite": asyncio.run(server_info(base_urls["sqlite"]))} if "sqlite" in backends else {}
    if "postgresql" in backends:
        url, source = postgres_url(args)
        error = asyncio.run(reachable(url))
        if error:
            message = (f"PostgreSQL is not reachable at {url.split('@')[-1]} (from {source}): {error}\n"
                       "  Start a throwaway server and pass its URL:\n"
                       '    BENCH_POSTGRES_URL="$(scripts/postgres start)" .venv/bin/python -m bench\n'
                       "  (or export BENCH_POSTGRES_URL / DATABASE_URL=postgresql+asyncpg://...)")
            if args.explicit_backends or source == "--postgres-url":  # asked for it: no silent fallback
                log(f"ERROR: {message}")
                return 2
            log(f"NOTE: {message}\n  Running SQLite only: the PostgreSQL rows and targets will be missing.")
            notes.append(f"PostgreSQL skipped: not reachable at {url.split('@')[-1]} ({error})")
            backends.remove("postgresql")
        else:
            base_urls["postgresql"] = url
            info["postgresql"] = asyncio.run(server_info(url))
            info["postgresql"]["url_source"] = source
    if not backends:
        log("ERROR: no backend left to measure")
        return 2
    strategies = [s for s in args.strategies if any(b in STRATEGIES[s].backends for b in backends)]
    args.strategies = strategies

    durability = []
    if "postgresql" in info:
        pg = info["postgresql"]
        durable = pg["fsync"] == "on" and pg["synchronous_commit"] == "on" and pg["full_page_writes"] == "on"
        durability.append(f"PostgreSQL {pg['version'].split(' on ')[0].removeprefix('PostgreSQL ')}: "
                          f"fsync={pg['fsync']}, synchronous_commit={pg['synchronous_commit']}, "
                          f"full_page_writes={pg['full_page_writes']} "
                          f"({'durable defaults' if durable else 'NOT the durable defaults'}, "
                          f"data on {pg.get('filesystem', '?')})")
    if "sqlite" in info:
        sq = info["sqlite"]
        durability.append(f"SQLite {sq['version']}: journal_mode={sq['journal_mode']}, synchronous={sq['synchronous']} "
                          f"(defaults, file on {sq['filesystem']})")

    steps = plan(args, backends)
    log(f"isolation benchmark: {args.tests} tests per strategy ({count_checks(args.tests)} of them isolation checks), "
        f"{len(TABLES)} tables, {args.repeats} repeat(s), {len(steps)} pytest runs")
    for line in durability:
        log(f"  {line}")
    log(f"  work dir {workdir}, results to {out}")
    prepare_workdir(workdir, args.tests, backends, strategies)

    child = {"BENCH_LIFESPAN": args.lifespan}
    started = time.monotonic()
    if not args.smoke:  # compile bytecode, warm the page cache; not measured
        for b in backends:
            warm = run_pytest(workdir, b, base_urls[b], "rollback" if "rollback" in strategies else strategies[0],
                              tests=args.tests, repeat=-1, extra_args=("-k", "test_00"), extra_env=child)  # first 100 tests
            log(f"  warm-up {b}: {'ok' if warm.exit_code == 0 else 'FAILED'} ({warm.wall_s:.1f} s, not measured)")

    runs: list[Run] = []
    for i, (b, s, workers, r) in enumerate(steps, 1):
        run = run_pytest(workdir, b, base_urls[b], s, tests=args.tests, workers=workers, repeat=r, extra_env=child)
        runs.append(run)
        status = "ok" if run.ok else f"FAILED (exit {run.exit_code}, {run.outcomes})"
        phase = f"{run.test_phase_s:.2f} s, {args.tests / run.test_phase_s:.1f} tests/s" if run.test_phase_s else "-"
        spent = time.monotonic() - started
        left = spent / i * (len(steps) - i)  # runs are alike on average: strategies are interleaved
        log(f"  [{i:>3}/{len(steps)}] {b:10} {s:10} -n {workers} repeat {r + 1}: test phase {phase} "
            f"(process {run.wall_s:.1f} s) {status}; about {left / 60:.0f} min left")
        if not run.ok:
            log("    " + run.output_tail.replace("\n", "\n    "))
    elapsed = time.monotonic() - started

    failed = [r for r in runs if not r.ok]
    results = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "smoke": args.smoke,
        "git_commit": git_commit(),
        "machine": machine_info(),
        "versions": versions(),
        "databases": info,
        "durability": durability,
        "config": {
            "tests_per_strategy": args.tests,
            "isolation_checks_per_strategy": count_checks(args.tests),
            "check_every": CHECK_EVERY,
            "repeats": args.repeats,
            "tables": list(TABLES),
            "backends": backends,
            "strategies": {s: STRATEGIES[s].description for s in strategies},
            "xdist_workers": None if args.no_xdist else 2,
            "lifespan": {"test": "the app's lifespan is entered for every test (the course's client fixture)",
                         "session": "ABLATION: the app's lifespan is entered once per process"}[args.lifespan],
            "clock": "pytest test phase: time.monotonic() from the start of the first test's setup to the end "
                     "of the last test's teardown (union over xdist workers); excludes interpreter start-up, "
                     "imports, collection, database/schema creation and dropping. wall_s is the whole subprocess.",
            "order": "round-robin over strategies, rotated by one each repeat; xdist -n 2 right after rollback",
        },
        "notes": notes,
        "elapsed_s": round(elapsed, 1),
    }
    write_outputs(results, runs, out)
    if failed:
        print(f"FAILED: {len(failed)} run(s) did not pass all {args.tests} tests (see results.json and the log)")
    if not args.keep_workdir and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0
