"""Turn runs into numbers: medians, ratios, targets, the printed table, results.json and the plot."""

from __future__ import annotations

import statistics

from bench.strategies import STRATEGIES

BACKEND_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

#: The issue's targets: (name, backend, measured key, comparison, threshold, explanation).
TARGETS = [
    ("rollback_vs_none_sqlite", "sqlite", "rollback.x_none", "<=", 1.10, "rollback time / no-isolation time"),
    ("rollback_vs_none_postgresql", "postgresql", "rollback.x_none", "<=", 1.10, "rollback time / no-isolation time"),
    ("truncate_vs_rollback_postgresql", "postgresql", "truncate.x_rollback", ">=", 4.0, "TRUNCATE time / rollback time"),
    ("dropcreate_vs_rollback_postgresql", "postgresql", "dropcreate.x_rollback", ">=", 10.0,
     "drop/create time / rollback time"),
    ("xdist_speedup_postgresql", "postgresql", "xdist.speedup_test_phase", ">=", 1.6,
     "one-process test phase / -n 2 test phase (rollback)"),
]


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs, backends, strategies, tests) -> dict:
    """Medians per (backend, strategy) of the one-process runs; ratios of medians; xdist."""
    summary: dict = {}
    for b in backends:
        rows = {}
        for s in strategies:
            mine = [r for r in runs if r.backend == b and r.strategy == s and r.workers == 0]
            if not mine:
                continue
            phase = _median([r.test_phase_s for r in mine if r.ok])
            rows[s] = {
                "label": STRATEGIES[s].label,
                "runs": len(mine),
                "ok": all(r.ok for r in mine),
                "test_phase_s": [r.test_phase_s for r in mine],
                "median_test_phase_s": phase,
                "tests_per_s": tests / phase if phase else None,
                "per_test_ms_median": _median([r.per_test_ms_median for r in mine]),
                "phase_ms_median": {ph: _median([r.phase_ms_median.get(ph) for r in mine])
                                    for ph in ("setup", "call", "teardown")},
                "min_test_phase_s": min((r.test_phase_s for r in mine if r.ok), default=None),
                "load_1min": [r.load_1min for r in mine],
                "median_wall_s": _median([r.wall_s for r in mine]),
            }
        for s, row in rows.items():
            for ref in ("none", "rollback"):
                base = rows.get(ref, {}).get("median_test_phase_s")
                row[f"x_{ref}"] = row["median_test_phase_s"] / base if base and row["median_test_phase_s"] else None
                # the same ratio from the fastest run of each: contention from other processes only
                # ever adds time, so this is the cross-check when the machine is shared
                best = rows.get(ref, {}).get("min_test_phase_s")
                row[f"x_{ref}_best"] = row["min_test_phase_s"] / best if best and row["min_test_phase_s"] else None
        xdist = None
        one = [r for r in runs if r.backend == b and r.strategy == "rollback" and r.workers == 0 and r.ok]
        two = [r for r in runs if r.backend == b and r.strategy == "rollback" and r.workers == 2]
        if one and two:
            p1, p2 = _median([r.test_phase_s for r in one]), _median([r.test_phase_s for r in two if r.ok])
            w1, w2 = _median([r.wall_s for r in one]), _median([r.wall_s for r in two if r.ok])
            paired = [a.test_phase_s / b2.test_phase_s for a in one for b2 in two
                      if b2.ok and a.repeat == b2.repeat]  # run back to back, so drift cancels out
            xdist = {
                "ok": all(r.ok for r in two),
                "paired_speedups": paired,
                "speedup_best": min(r.test_phase_s for r in one) / min(r.test_phase_s for r in two if r.ok)
                if any(r.ok for r in two) else None,
                "n0_test_phase_s": p1, "n2_test_phase_s": p2,
                "n2_test_phase_runs_s": [r.test_phase_s for r in two],
                "n0_wall_s": w1, "n2_wall_s": w2,
                "speedup_test_phase": p1 / p2 if p1 and p2 else None,
                "speedup_wall": w1 / w2 if w1 and w2 else None,
                "n2_tests_per_s": tests / p2 if p2 else None,
            }
        summary[b] = {"strategies": rows, "xdist": xdist}
    return summary


def _lookup(summary, backend, key):
    first, second = key.split(".")
    block = summary.get(backend)
    if not block:
        return None
    if first == "xdist":
        return (block["xdist"] or {}).get(second)
    return block["strategies"].get(first, {}).get(second)


def evaluate_targets(summary) -> list[dict]:
    out = []
    for name, b, key, op, threshold, meaning in TARGETS:
        value = _lookup(summary, b, key)
        best = _lookup(summary, b, key.replace("speedup_test_phase", "speedup_best") if "xdist" in key else key + "_best")
        met = None if value is None else (value <= threshold if op == "<=" else value >= threshold)
        met_best = None if best is None else (best <= threshold if op == "<=" else best >= threshold)
        out.append({"target": name, "backend": b, "measure": meaning, "value": value, "value_best_runs": best,
                    "requirement": f"{op} {threshold}", "met": met, "met_with_best_runs": met_best})
    return out


def _fmt(value, pattern="{:.2f}", missing="-"):
    return missing if value is None else pattern.format(value)


def _range(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{min(values):.1f} s" if len(values) == 1 else f"{min(values):.1f}–{max(values):.1f} s"


def table_rows(summary, tests) -> list[list[str]]:
    rows = []
    for b, block in summary.items():
        for s, row in block["strategies"].items():
            rows.append([
                BACKEND_LABELS[b], row["label"], str(tests), _fmt(row["median_test_phase_s"], "{:.2f} s"),
                _range(row["test_phase_s"]),
                _fmt(row["tests_per_s"], "{:.1f}"), _fmt(row["per_test_ms_median"], "{:.1f}"),
                _fmt(row["phase_ms_median"]["teardown"], "{:.1f}"),
                _fmt(row["x_none"], "{:.2f}×"), _fmt(row["x_rollback"], "{:.2f}×"),
                "ok" if row["ok"] else "FAILED",
            ])
        if block["xdist"]:
            x = block["xdist"]
            rows.append([
                BACKEND_LABELS[b], "rollback, xdist -n 2", str(tests), _fmt(x["n2_test_phase_s"], "{:.2f} s"),
                _range(x["n2_test_phase_runs_s"]),
                _fmt(x["n2_tests_per_s"], "{:.1f}"), "", "", "", _fmt(x["speedup_test_phase"], "{:.2f}× faster"),
                "ok" if x["ok"] else "FAILED",
            ])
    return rows


HEADERS = ["database", "strategy", "tests", "test phase (median)", "runs (min–max)", "tests/s", "ms/test", "teardown ms",
           "× no isolation", "× rollback", "status"]


def text_table(summary, tests) -> str:
    rows = [HEADERS, *table_rows(summary, tests)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(summary, tests) -> str:
    rows = table_rows(summary, tests)
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(HEADERS) - 2)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def targets_text(targets) -> str:
    lines = []
    for t in targets:
        verdict = {True: "MET", False: "MISSED", None: "not measured"}[t["met"]]
        best = "" if t["value_best_runs"] is None else f"; from the fastest runs: {_fmt(t['value_best_runs'])}"
        lines.append(f"  {verdict:12} {t['target']}: {t['measure']} = {_fmt(t['value'])} "
                     f"(target {t['requirement']}{best})")
    return "\n".join(lines)


def tests_of(rows, s) -> float:
    """Tests per run, recovered from the median rate and the median time."""
    return rows[s]["tests_per_s"] * rows[s]["median_test_phase_s"]


def plot(summary, targets, path, *, title: str, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [b for b in summary if summary[b]["strategies"]]
    has_xdist = any(summary[b]["xdist"] for b in backends)
    ncols = len(backends) + (1 if has_xdist else 0)
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 5.4), squeeze=False,
                             gridspec_kw={"width_ratios": [3] * len(backends) + ([1.4] if has_xdist else [])})
    axes = axes[0]
    colours = {"none": "#9e9e9e", "rollback": "#2e7d32", "delete": "#1565c0", "truncate": "#ef6c00",
               "dropcreate": "#c62828", "freshdb": "#6a1b9a"}
    all_rates = [row["tests_per_s"] for b in backends for row in summary[b]["strategies"].values()
                 if row["tests_per_s"]]
    log = bool(all_rates) and max(all_rates) / min(all_rates) > 8
    for ax, b in zip(axes, backends):
        rows = summary[b]["strategies"]
        names = list(rows)
        rates = [rows[s]["tests_per_s"] or 0 for s in names]
        # whiskers: the fastest and the slowest of the repeated runs
        phases = [[p for p in rows[s]["test_phase_s"] if p] or [None] for s in names]
        low = [rate - tests_of(rows, s) / max(ph) if rate and ph[0] else 0 for s, rate, ph in zip(names, rates, phases)]
        high = [tests_of(rows, s) / min(ph) - rate if rate and ph[0] else 0 for s, rate, ph in zip(names, rates, phases)]
        bars = ax.bar(range(len(names)), rates, color=[colours.get(s, "#555") for s in names],
                      yerr=[low, high], capsize=3, error_kw={"elinewidth": 0.8, "ecolor": "#333"})
        ax.set_xticks(range(len(names)), [rows[s]["label"].replace(" (course helper)", "\n(course helper)")
                                          .replace(" per test", "\nper test").replace(" all tables", "\nall tables")
                                          .replace(" schema", "\nschema") for s in names], fontsize=8)
        ax.set_title(f"{BACKEND_LABELS[b]} (whiskers: fastest and slowest run)", fontsize=10)
        ax.set_ylabel("tests per second (higher is better)")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(min(all_rates) / 2, max(all_rates) * 3)
        else:
            ax.set_ylim(0, max(all_rates) * 1.45)
        for bar, s in zip(bars, names):
            x_rb = rows[s]["x_rollback"]
            label = f"{rows[s]['tests_per_s']:.0f}/s" if rows[s]["tests_per_s"] else "failed"
            if x_rb is not None and s != "rollback":
                label += f"\n{x_rb:.1f}× rollback's time"
            top = bar.get_height() + high[names.index(s)]
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.grid(axis="y", alpha=0.3, which="both")
    if has_xdist:
        ax = axes[-1]
        xb = [b for b in backends if summary[b]["xdist"]]
        width = 0.38
        for i, b in enumerate(xb):
            x = summary[b]["xdist"]
            one = summary[b]["strategies"]["rollback"]["tests_per_s"] or 0
            two = x["n2_tests_per_s"] or 0
            ax.bar(i - width / 2, one, width, color="#2e7d32", label="one process" if i == 0 else None)
            ax.bar(i + width / 2, two, width, color="#81c784", label="xdist -n 2" if i == 0 else None)
            if x["speedup_test_phase"]:
                ax.annotate(f"{x['speedup_test_phase']:.2f}×", (i + width / 2, two), ha="center", va="bottom",
                            fontsize=8, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(xb)), [BACKEND_LABELS[b] for b in xb])
        ax.set_title("rollback: 1 process vs xdist -n 2")
        ax.set_ylabel("tests per second")
        ax.legend(fontsize=8, loc="lower center")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=12)
    fig.text(0.5, 0.005, subtitle, ha="center", va="bottom", fontsize=8, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
