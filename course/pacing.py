"""How long a lesson takes, computed from its content by one stated rule.

``python -m course pacing`` prints, per lesson, its cells, prose words, code lines, longest code
cell, and the minutes its overview states next to the minutes the rule gives.

The rule (CONTRIBUTING.md, "Pacing"), for a lesson read and run live with an instructor:

* **Teaching** = prose words / 150 per minute (every markdown cell except instructor notes;
  the source of a Mermaid diagram is not prose: a diagram counts ``DIAGRAM_MINUTES``)
  + ``CELL_SECONDS`` per code cell (run it, look at the output)
  + ``LINE_SECONDS`` per non-blank line of visible code (read it; a collapsed setup cell,
  ``jupyter: {source_hidden: true}``, is run but not read).
* **Exercises** = ``EXERCISE_MINUTES`` per ``### Exercise N:`` + ``QUIZ_MINUTES`` per quiz.

A lesson is one sitting: at most ``MAX_LESSON_MINUTES`` computed minutes (teaching + exercises) and
at most ``MAX_OBJECTIVES`` bullets under "You will be able to" in its overview (about three ideas).

A lesson's stated ``**Teaching:** N min · **Exercises:** M min`` follows the rule when each number
is within ``TOLERANCE`` (20 %) or ``SLACK_MINUTES`` (3 min) of the computed one, whichever is
larger. The number to write is the computed one rounded to whole minutes (``suggested``).

Sections whose heading ends with "(deep dive)", or whose heading cell is tagged ``deep-dive``,
are the ones a workshop may skip; their minutes are reported apart (``core`` and ``deep``), and
the instructor guide builds its one-day and half-day paths from the core minutes.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"

WORDS_PER_MINUTE = 150
CELL_SECONDS = 20
LINE_SECONDS = 3
DIAGRAM_MINUTES = 1.0
EXERCISE_MINUTES = 8
QUIZ_MINUTES = 1
TOLERANCE = 0.20
SLACK_MINUTES = 3
MAX_CODE_LINES = 30
SLOT_MINUTES = 45  # one workshop block (teaching + exercises) between two breaks
MAX_LESSON_MINUTES = 60  # one sitting: a lesson longer than this (teaching + exercises) is split
MAX_OBJECTIVES = 4  # "about three ideas": the overview's "You will be able to" bullets
DEEP_DIVE_TAG = "deep-dive"

WORD = re.compile(r"[\w'’-]+")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.M)
DEEP_DIVE_HEADING = re.compile(r"\(deep dive\)\s*$", re.I)
MERMAID = re.compile(r"^```mermaid\s*$.*?^```\s*$", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
EXERCISE = re.compile(r"^###\s+Exercise\s+\d+\s*:", re.M)
QUIZ = re.compile(r"\*\*Quiz\s+\d\d\.\d+\.\*\*")
MINUTES = {"teaching": re.compile(r"\*\*Teaching:\*\*\s*(\d+)\s*min", re.I),
           "exercises": re.compile(r"\*\*Exercises?:\*\*\s*(\d+)\s*min", re.I)}


@dataclass
class Part:
    """The measured content of a lesson or of one of its parts (core, deep dives)."""

    cells: int = 0
    words: int = 0
    code_cells: int = 0
    code_lines: int = 0
    diagrams: int = 0
    exercises: int = 0
    quizzes: int = 0

    @property
    def teaching(self) -> float:
        return (self.words / WORDS_PER_MINUTE + self.diagrams * DIAGRAM_MINUTES
                + (self.code_cells * CELL_SECONDS + self.code_lines * LINE_SECONDS) / 60)

    @property
    def exercise_minutes(self) -> float:
        return float(self.exercises * EXERCISE_MINUTES + self.quizzes * QUIZ_MINUTES)

    @property
    def total(self) -> float:
        return self.teaching + self.exercise_minutes

    def add(self, other: "Part") -> None:
        for name in ("cells", "words", "code_cells", "code_lines", "diagrams", "exercises", "quizzes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Pace:
    path: Path
    stated_teaching: int | None
    stated_exercises: int | None
    core: Part = field(default_factory=Part)
    deep: Part = field(default_factory=Part)
    deep_dives: list[str] = field(default_factory=list)  # headings of the deep-dive sections
    objectives: int = 0  # bullets under "You will be able to" in the overview cell
    longest_code_cell: int = 0
    long_cells: list[tuple[int, int]] = field(default_factory=list)  # (line in the .py file, lines) over the limit

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def whole(self) -> Part:
        part = Part()
        part.add(self.core)
        part.add(self.deep)
        return part

    @property
    def suggested(self) -> tuple[int, int]:
        """The ``**Teaching:** N min · **Exercises:** M min`` the rule gives (whole minutes)."""
        whole = self.whole
        return max(1, round(whole.teaching)), round(whole.exercise_minutes)

    def problems(self) -> list[str]:
        """Where the lesson breaks the pacing rules, each with the number or change that fixes it."""
        out, rel = [], _rel(self.path)
        teaching, exercises = self.suggested
        whole = self.whole
        if self.stated_teaching is None or self.stated_exercises is None:
            out.append(f"{rel}: no '**Teaching:** N min · **Exercises:** M min' in the overview cell; "
                       f"write **Teaching:** {teaching} min · **Exercises:** {exercises} min")
        else:
            wrong = [(label, stated, computed) for label, stated, computed in
                     (("Teaching", self.stated_teaching, whole.teaching),
                      ("Exercises", self.stated_exercises, whole.exercise_minutes))
                     if not within(stated, computed)]
            if wrong:
                said = ", ".join(f"{label} {stated} min is not {computed:.1f} ± {allowed(computed):.1f}"
                                 for label, stated, computed in wrong)
                out.append(f"{rel}: write **Teaching:** {teaching} min · **Exercises:** {exercises} min "
                           f"in the overview cell ({said}; {explain(whole)})")
        if whole.total > MAX_LESSON_MINUTES:
            out.append(f"{rel}: {whole.total:.0f} computed minutes (teaching + exercises) is over the "
                       f"{MAX_LESSON_MINUTES} of one sitting: split it at a section boundary into two lessons")
        if self.objectives > MAX_OBJECTIVES:
            out.append(f"{rel}: {self.objectives} objectives under 'You will be able to' (at most {MAX_OBJECTIVES}, "
                       "about three ideas per lesson): merge them, or move an idea to a lesson of its own")
        for line, lines in self.long_cells:
            out.append(f"{rel}:{line}: the code cell starting here has {lines} lines (at most {MAX_CODE_LINES}): split it, "
                       "or move a helper the lesson does not teach to course machinery or a collapsed setup cell")
        return out


def allowed(computed: float) -> float:
    return max(SLACK_MINUTES, TOLERANCE * computed)


def within(stated: int, computed: float) -> bool:
    return abs(stated - computed) <= allowed(computed)


def explain(part: Part) -> str:
    return (f"{part.words} words / {WORDS_PER_MINUTE} + {part.code_cells} code cells × {CELL_SECONDS} s + "
            f"{part.code_lines} code lines × {LINE_SECONDS} s + {part.diagrams} diagrams × {DIAGRAM_MINUTES:g} min; "
            f"{part.exercises} exercises × {EXERCISE_MINUTES} + {part.quizzes} quizzes × {QUIZ_MINUTES} min")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _hidden(cell) -> bool:
    return bool(cell.metadata.get("jupyter", {}).get("source_hidden"))


def measure_cell(cell) -> Part:
    part = Part(cells=1)
    if cell.cell_type == "markdown":
        if "instructor" in _tags(cell):  # read by the instructor beforehand, not in class
            return part
        text = cell.source
        part.diagrams = len(MERMAID.findall(text))
        prose = COMMENT.sub(" ", MERMAID.sub(" ", text))  # markers (figures, refs, verdicts) are not read
        part.words = len(WORD.findall(prose))
        part.exercises = len(EXERCISE.findall(prose))
        part.quizzes = len(QUIZ.findall(prose))
    elif cell.cell_type == "code":
        part.code_cells = 1
        if not _hidden(cell):
            part.code_lines = sum(1 for line in cell.source.splitlines() if line.strip())
    return part


def code_cell_lines(cell) -> int:
    """Lines a reader scrolls through: the source without trailing blank lines."""
    return len(cell.source.rstrip().splitlines())


def sections(cells) -> list[tuple[object, bool, str | None]]:
    """Each cell with whether it lies in a deep-dive section, and that section's heading.

    A deep dive starts at a markdown heading ending with "(deep dive)", or at a markdown cell
    tagged ``deep-dive`` (its first heading), and runs until the next heading of the same or a
    higher level.
    """
    out, deep_level, deep_title = [], None, None
    for cell in cells:
        if cell.cell_type == "markdown" and (heading := HEADING.search(cell.source)):
            level, text = len(heading.group(1)), heading.group(2)
            if deep_level is not None and level <= deep_level:
                deep_level = deep_title = None
            if deep_level is None and (DEEP_DIVE_HEADING.search(text) or DEEP_DIVE_TAG in _tags(cell)):
                deep_level, deep_title = level, text
        elif cell.cell_type == "markdown" and DEEP_DIVE_TAG in _tags(cell) and deep_level is None:
            deep_level, deep_title = 6, cell.source.strip().splitlines()[0] if cell.source.strip() else "deep dive"
        out.append((cell, deep_level is not None, deep_title))
    return out


CELL_MARKER = re.compile(r"^# %%(?: |$)")


def cell_lines(path: Path) -> list[int]:
    """The line of each ``# %%`` cell marker of a jupytext percent file (1-based)."""
    text = path.read_text(encoding="utf-8").splitlines()
    return [number for number, line in enumerate(text, 1) if CELL_MARKER.match(line)]


OBJECTIVES = re.compile(r"You will be able to\W*\n((?:[ \t]*[-*].*\n?|[ \t]+\S.*\n?)+)", re.I)


def count_objectives(overview: str) -> int:
    """The bullets of the overview's "You will be able to" list (continuation lines are not bullets)."""
    found = OBJECTIVES.search(overview)
    return sum(1 for line in found.group(1).splitlines() if re.match(r"[-*]\s", line)) if found else 0


def measure(path: Path) -> Pace:
    import jupytext

    nb = jupytext.read(path)
    overview = next((c.source for c in nb.cells if "overview" in _tags(c)), "")
    stated = {k: (int(m.group(1)) if (m := rx.search(overview)) else None) for k, rx in MINUTES.items()}
    pace = Pace(path=path, stated_teaching=stated["teaching"], stated_exercises=stated["exercises"],
                objectives=count_objectives(overview))
    starts = cell_lines(path)
    if len(starts) != len(nb.cells):  # unusual layout: fall back to cell numbers
        starts = list(range(1, len(nb.cells) + 1))
    for index, (cell, deep, title) in enumerate(sections(nb.cells)):
        (pace.deep if deep else pace.core).add(measure_cell(cell))
        if deep and title not in pace.deep_dives:
            pace.deep_dives.append(title)
        if cell.cell_type == "code":
            lines = code_cell_lines(cell)
            pace.longest_code_cell = max(pace.longest_code_cell, lines)
            if lines > MAX_CODE_LINES:
                pace.long_cells.append((starts[index], lines))
    return pace


def measure_all(lessons_dir: Path | None = None) -> list[Pace]:
    return [measure(p) for p in sorted((lessons_dir or LESSONS).glob("[0-9][0-9]_*.py"))]


def table(paces: list[Pace]) -> str:
    head = ("| lesson | cells | words | code cells | code lines | longest cell | stated T+E | computed T+E "
            "| core / deep min | objectives | note |")
    rows = [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for p in paces:
        w = p.whole
        stated = (f"{p.stated_teaching}+{p.stated_exercises}"
                  if p.stated_teaching is not None and p.stated_exercises is not None else "?")
        teaching, exercises = p.suggested
        notes = []
        if p.stated_teaching is not None and p.stated_exercises is not None:
            if not (within(p.stated_teaching, w.teaching) and within(p.stated_exercises, w.exercise_minutes)):
                notes.append("stated minutes off the rule")
            if w.total > 1.5 * (p.stated_teaching + p.stated_exercises):
                notes.append("exceeds its stated slot by half")
        if w.total > MAX_LESSON_MINUTES:
            notes.append(f"over {MAX_LESSON_MINUTES} min: split it")
        if p.objectives > MAX_OBJECTIVES:
            notes.append(f"{p.objectives} objectives: at most {MAX_OBJECTIVES}")
        if p.long_cells:
            notes.append(f"{len(p.long_cells)} code cell(s) over {MAX_CODE_LINES} lines")
        rows.append(f"| {p.name} | {w.cells} | {w.words} | {w.code_cells} | {w.code_lines} | {p.longest_code_cell} "
                    f"| {stated} | {teaching}+{exercises} | {p.core.total:.0f} / {p.deep.total:.0f} "
                    f"| {p.objectives} | {'; '.join(notes) or 'ok'} |")
    whole = Part()
    for p in paces:
        whole.add(p.whole)
    stated_total = sum((p.stated_teaching or 0) + (p.stated_exercises or 0) for p in paces)
    rows.append(f"| **all {len(paces)}** | {whole.cells} | {whole.words} | {whole.code_cells} | {whole.code_lines} "
                f"| | {stated_total} | {whole.total:.0f} | {sum(p.core.total for p in paces):.0f} / "
                f"{sum(p.deep.total for p in paces):.0f} | | |")
    return "\n".join(rows)


RULE = (f"Rule: teaching = prose words / {WORDS_PER_MINUTE} per min + {CELL_SECONDS} s per code cell + "
        f"{LINE_SECONDS} s per visible code line + {DIAGRAM_MINUTES:g} min per diagram; exercises = "
        f"{EXERCISE_MINUTES} min per exercise + {QUIZ_MINUTES} min per quiz; stated minutes must be within "
        f"{TOLERANCE:.0%} or {SLACK_MINUTES} min of the rule; no code cell over {MAX_CODE_LINES} lines; a lesson "
        f"is one sitting: at most {MAX_LESSON_MINUTES} computed minutes and {MAX_OBJECTIVES} objectives.")


def main(args: list[str]) -> int:
    if args and args[0] not in {"--check"}:
        print("usage: python -m course pacing [--check]", file=sys.stderr)
        return 2
    paces = measure_all()
    print(table(paces))
    print()
    print(RULE)
    problems = [problem for p in paces for problem in p.problems()]
    if problems:
        print(f"\n{len(problems)} pacing problem(s):")
        for problem in problems:
            print(f"  {problem}")
    return 1 if problems and args else 0
