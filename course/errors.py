"""ERRORS.md, the index of every error message the notebooks make happen, proven by their outputs.

``python -m course errors``          writes ERRORS.md from ``course/errors.toml`` and ``solutions/*.ipynb``
``python -m course errors --check``  exits 1 when ERRORS.md is stale, or when a registered message is
                                     not where the registry says it is shown

The registry holds, per error, the message verbatim as a learner sees it (what they paste into a
search box), its cause in one sentence and the fix. Where it is shown is *found*, never typed:

* ``shown = "output"`` (the default): the message must appear in the stored output of at least one
  cell of ``solutions/*.ipynb`` (built on PostgreSQL; the SQLite output a cell tagged
  ``output-per-database`` records counts too); every such cell is linked, with the section
  heading above it;
* ``shown = "postgresql"``: a text PostgreSQL produces that must appear in the source of a cell of
  ``solutions/*.ipynb``: the code cell that asserts it (nbval runs it on both databases) or the
  markdown cell that explains what that cell does there.

Messages are matched as they are, whitespace collapsed, on the notebooks' own text: lessons are
renumbered freely, the index follows them when it is regenerated.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Path(__file__).with_name("errors.toml")
SOLUTIONS = ROOT / "solutions"
INDEX = ROOT / "ERRORS.md"
SHOWN = {"output", "postgresql"}
MAX_LINKS = 4
HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*$", re.M)


class RegistryError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Entry:
    message: str
    cause: str
    fix: str
    kind: str = ""  # the exception or warning class, as printed
    shown: str = "output"
    topic: str = ""  # what the learner was doing (groups the index)


@dataclass
class Place:
    notebook: str  # solutions/07_savepoints.ipynb
    cell: int  # 1-based, counting every cell
    section: str  # the nearest heading above the cell

    def link(self) -> str:
        anchor = _anchor(self.section) if self.section else ""
        title = Path(self.notebook).stem
        where = f"[{title}]({self.notebook}{'#' + anchor if anchor else ''})"
        return f"{where}, cell {self.cell}" + (f" (*{self.section}*)" if self.section else "")


@dataclass
class Found:
    entry: Entry
    places: list[Place] = field(default_factory=list)


def _anchor(heading: str) -> str:
    """The anchor JupyterLab and GitHub give a notebook heading: spaces to dashes, punctuation kept."""
    text = re.sub(r"[*`_]", "", heading).strip()
    return text.replace(" ", "-")


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading of a markdown file: lower case, punctuation dropped."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _squash(text: str) -> str:
    return " ".join(text.split())


def load_registry(path: Path | None = None) -> list[Entry]:
    path = path or REGISTRY
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError([f"{path.name}: cannot read it ({exc})"]) from None
    entries, problems = [], []
    for number, item in enumerate(raw.get("error", []), 1):
        missing = [key for key in ("message", "cause", "fix") if not str(item.get(key, "")).strip()]
        unknown = sorted(set(item) - {"message", "cause", "fix", "kind", "shown", "topic"})
        label = f"{path.name}: error {number} ({str(item.get('message', ''))[:50]!r})"
        if missing:
            problems.append(f"{label}: missing {', '.join(missing)}")
        if unknown:
            problems.append(f"{label}: unknown key(s) {', '.join(unknown)}")
        if item.get("shown", "output") not in SHOWN:
            problems.append(f"{label}: shown must be one of {', '.join(sorted(SHOWN))}")
        if not missing and not unknown:
            entries.append(Entry(**{k: _squash(str(v)) if k == "message" else str(v).strip() for k, v in item.items()}))
    if not raw.get("error"):
        problems.append(f"{path.name}: no [[error]] entries")
    seen = set()
    for entry in entries:
        if entry.message in seen:
            problems.append(f"{path.name}: {entry.message!r} is registered twice")
        seen.add(entry.message)
    if problems:
        raise RegistryError(problems)
    return entries


def _output_text(cell: dict) -> str:
    parts = []
    # stored outputs (PostgreSQL's) and, for a cell tagged output-per-database, SQLite's recorded ones
    recorded = [o for outputs in cell.get("metadata", {}).get("outputs_by_database", {}).values() for o in outputs]
    for output in [*cell.get("outputs", []), *recorded]:
        if "text" in output:
            parts.append("".join(output["text"]))
        data = output.get("data", {})
        for kind in ("text/plain", "text/markdown"):
            if kind in data:
                parts.append("".join(data[kind]))
        if output.get("output_type") == "error":
            parts.append(f"{output.get('ename', '')}: {output.get('evalue', '')}")
            parts.extend(output.get("traceback", []))
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(parts))  # tracebacks carry ANSI colours


def notebook_cells(solutions: Path | None = None):
    """``(notebook path, cell number, section heading, source, output text)`` of every cell.

    Instructor notes (in ``solutions/`` only) are left out: they are not what a learner sees.
    """
    solutions = solutions or SOLUTIONS
    for path in sorted(solutions.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        section = ""
        rel = f"{solutions.name}/{path.name}"
        for number, cell in enumerate(cells, 1):
            source = "".join(cell.get("source", ""))
            if cell.get("cell_type") == "markdown":
                if "instructor" in cell.get("metadata", {}).get("tags", []):
                    continue
                headings = HEADING.findall(source)
                if headings:
                    section = headings[-1][1]
                yield rel, number, section, source, ""
                continue
            if cell.get("cell_type") == "code":
                yield rel, number, section, source, _output_text(cell)


def locate(entries: list[Entry], solutions: Path | None = None) -> list[Found]:
    cells = list(notebook_cells(solutions))
    found = []
    for entry in entries:
        wanted = entry.message
        places = [Place(nb, number, section) for nb, number, section, source, output in cells
                  if wanted in _squash(source.replace('\\"', '"') if entry.shown == "postgresql" else output)]
        found.append(Found(entry, places))
    return found


def problems_of(found: list[Found]) -> list[str]:
    out = []
    for item in found:
        if not item.places:
            where = ("the source of any cell" if item.entry.shown == "postgresql"
                     else "the stored output of any cell")
            out.append(f"{item.entry.message!r} is registered in course/errors.toml but is not in {where} of "
                       "solutions/*.ipynb: rebuild the lesson that shows it, correct the text to what the "
                       "notebook prints, or remove the entry")
    return out


def _code(text: str) -> str:
    ticks = "``" if "`" in text else "`"
    pad = " " if ticks == "``" else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def render(found: list[Found]) -> str:
    lines = ["<!-- Generated by `python -m course errors` from course/errors.toml and the stored outputs of "
             "solutions/*.ipynb. Do not edit: edit the registry, then regenerate. -->", "",
             "# Error index", "",
             "Every error and warning the notebooks make happen, with the text you see, why it happens and what "
             "fixes it. Search this page for the line you got (the part without addresses, ids or paths). Each "
             "message is proven: CI (`python -m course errors --check`) fails when a message below is no longer "
             "in the executed notebook it links to.", ""]
    topics: dict[str, list[Found]] = {}
    for item in found:
        topics.setdefault(item.entry.topic or "Other", []).append(item)
    lines += ["Topics: " + " · ".join(f"[{t}](#{_github_anchor(t)})" for t in topics), ""]
    for topic, items in topics.items():
        lines += [f"## {topic}", ""]
        for item in items:
            e = item.entry
            lines += [f"### {_code(e.message)}", ""]
            if e.kind:
                lines += [f"**Raised as:** `{e.kind}`" + (" (PostgreSQL only)" if e.shown == "postgresql" else ""), ""]
            lines += [f"**Cause:** {e.cause}", "", f"**Fix:** {e.fix}", ""]
            shown = item.places[:MAX_LINKS]
            more = len(item.places) - len(shown)
            label = ("**Where the course shows it** (on PostgreSQL; the cell that checks it):"
                     if e.shown == "postgresql" else "**Where the course shows it:**")
            lines += [label + " " + "; ".join(p.link() for p in shown) + (f"; and {more} more" if more > 0 else "")
                      if shown else label + " nowhere yet (see `python -m course errors --check`)", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(args: list[str]) -> int:
    if args not in ([], ["--check"]):
        print("usage: python -m course errors [--check]", file=sys.stderr)
        return 2
    try:
        found = locate(load_registry())
    except RegistryError as exc:
        print("The error index cannot be generated:", *exc.problems, sep="\n  ", file=sys.stderr)
        return 1
    text, problems = render(found), problems_of(found)
    if args == ["--check"]:
        if not INDEX.exists() or INDEX.read_text(encoding="utf-8") != text:
            problems.append("ERRORS.md is not current: regenerate with .venv/bin/python -m course errors")
        for problem in problems:
            print(f"error index: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"OK: ERRORS.md is current, and all {len(found)} messages are where the notebooks show them")
        return 0
    INDEX.write_text(text, encoding="utf-8")
    print(f"wrote ERRORS.md ({len(found)} messages)")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 1 if problems else 0
