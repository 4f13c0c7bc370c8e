"""Lesson references are derived from topics, so renumbering or splitting a lesson cannot break them.

A lesson declares the topics it teaches where it teaches them, in the markdown cell of the section
(invisible in JupyterLab and on GitHub)::

    # ## 4 · Event-loop traps (pytest-asyncio 1.x)
    # <!-- topic:event-loop-scopes -->

Every other place that sends the reader to a lesson names the topic, not the number::

    ... on the session loop scope (<!-- ref:event-loop-scopes -->lesson 03<!-- /ref -->).
    ... (<!-- ref:create-savepoint,sqlite-savepoint-fix -->lessons 04 and 05<!-- /ref -->)
    ... ([<!-- ref:create-savepoint -->04](05_rollback_fixtures.ipynb)<!-- /ref -->)

The text between the markers is what the reader sees; its two-digit numbers (in order, one per
topic) and its notebook file names are derived from where the topics are declared.
``python -m course refs --check`` (run-tests.sh, and ``tests/test_refs.py``) fails, with file and
line, when

* a reference's numbers or file names are not those of the lessons that declare its topics,
* a reference names a topic no lesson declares, or a topic is declared twice,
* a "lesson NN" / "lessons NN and MM" / ``[NN](NN_x.ipynb)`` reference stands without markers
  (in lessons, code comments included, quiz feedback, the error index, the guide's template, the
  README and CONTRIBUTING; a code span such as ```Lesson 00 on SQLite``` is output, not a reference),
* a title link ``[NN · Title](NN_slug.ipynb)`` names a title or number that is not the lesson's.

``python -m course refs --write`` rewrites every reference from the topics (after moving a section
to another lesson, or renumbering); ``python -m course refs`` lists the topics per lesson.
Quiz feedback is printed as plain text: ``course.quiz`` strips the markers before printing.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPIC = re.compile(r"<!-- topic:(?P<id>[\w-]+) -->")
REF = re.compile(r"<!-- ref:(?P<ids>[\w,-]+) -->(?P<text>.*?)<!-- /ref -->")
NUMBER = re.compile(r"(?<![\w.])(\d{2})(?![\w.])")
FILE = re.compile(r"\b(\d{2})_[\w-]+\.ipynb")
BARE = re.compile(r"\blessons?\s+\d{2}\b|\[\d{2}\]\(\d{2}_[\w-]+\.ipynb", re.I)
TITLE_LINK = re.compile(r"\[(?P<n>\d{2}) · (?P<title>[^\]]+)\]\((?P<file>(?P<fn>\d{2})_[\w-]+)\.ipynb\)")
SCANNED = ["lessons/[0-9][0-9]_*.py", "course/quizzes/*.toml", "course/errors.toml", "course/guide_template.md",
           "README.md", "CONTRIBUTING.md"]
STRIP = re.compile(r"<!-- /?(?:ref|topic|verdict|fig)(?::[\w,.-]+)? -->")


def strip_markers(text: str) -> str:
    """The text a reader sees once markdown drops the comments: for output printed as plain text."""
    return STRIP.sub("", text)


@dataclass
class Lesson:
    number: str
    stem: str  # 03_lifecycle
    title: str


def lessons(root: Path = ROOT) -> dict[str, Lesson]:
    out = {}
    for path in sorted((root / "lessons").glob("[0-9][0-9]_*.py")):
        title = next((line[len("# # "):].split(" · ", 1)[-1].strip() for line in path.read_text(encoding="utf-8").split("\n")
                      if line.startswith("# # ")), "")
        out[path.name[:2]] = Lesson(path.name[:2], path.stem, title)
    return out


def topics(root: Path = ROOT) -> tuple[dict[str, str], list[str]]:
    """topic id -> lesson number, and the problems (a topic declared twice)."""
    where: dict[str, list[str]] = {}
    for path in sorted((root / "lessons").glob("[0-9][0-9]_*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            for match in TOPIC.finditer(line):
                where.setdefault(match["id"], []).append(f"lessons/{path.name}:{number}")
    problems = [f"{places[1]}: topic:{tid} is declared again (first in {places[0]}): a topic is taught in one place"
                for tid, places in where.items() if len(places) > 1]
    return {tid: Path(places[0].split(":")[0]).name[:2] for tid, places in where.items()}, problems


def scanned_files(root: Path = ROOT) -> list[Path]:
    return [p for pattern in SCANNED for p in sorted(root.glob(pattern))]


def _outside_code_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) spans of a line that are not inside `code spans`."""
    spans, start, inside = [], 0, False
    for match in re.finditer(r"`+", line):
        if not inside:
            spans.append((start, match.start()))
        inside, start = not inside, match.end()
    if not inside:
        spans.append((start, len(line)))
    return spans


def resolve(text: str, ids: list[str], topic_lessons: dict[str, str], known: dict[str, Lesson]) -> str:
    """The reference's text with its numbers and file names derived from its topics."""
    numbers = [topic_lessons[t] for t in ids]
    count = iter(range(len(NUMBER.findall(FILE.sub("", text)))))
    out, last, position = [], numbers[0], 0
    for match in re.finditer(rf"{FILE.pattern}|{NUMBER.pattern}", text):
        out.append(text[position: match.start()])
        if match.group(0).endswith(".ipynb"):
            out.append(f"{known[last].stem}.ipynb")
        else:
            index = next(count)
            last = numbers[min(index, len(numbers) - 1)]
            out.append(last)
        position = match.end()
    out.append(text[position:])
    return "".join(out)


def check_text(text: str, where: str, topic_lessons: dict[str, str], known: dict[str, Lesson]) -> tuple[str, list[str]]:
    """The text with every reference rewritten from its topics, and the problems (file:line: ...)."""
    problems, lines, fenced = [], text.split("\n"), False
    for index, line in enumerate(lines):
        number = index + 1
        if line.lstrip("# ").startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue

        def fix(match):
            ids = match["ids"].split(",")
            unknown = [t for t in ids if t not in topic_lessons]
            if unknown:
                problems.append(f"{where}:{number}: ref:{','.join(unknown)}: no lesson declares this topic "
                                "(<!-- topic:ID --> in the section that teaches it)")
                return match.group(0)
            shown = match["text"]
            count = len(NUMBER.findall(FILE.sub("", shown)))
            if count != len(ids):
                problems.append(f"{where}:{number}: ref:{match['ids']} names {len(ids)} topic(s) but its text "
                                f"{shown!r} has {count} lesson number(s)")
                return match.group(0)
            wanted = resolve(shown, ids, topic_lessons, known)
            if wanted != shown:
                problems.append(f"{where}:{number}: ref:{match['ids']} says {shown!r}; the topic is taught in "
                                f"{wanted!r} (python -m course refs --write)")
            return f"<!-- ref:{match['ids']} -->{wanted}<!-- /ref -->"

        fixed = REF.sub(fix, line)
        lines[index] = fixed
        bare_line = REF.sub(lambda m: " " * len(m.group(0)), line)
        for start, end in _outside_code_spans(bare_line):
            for match in BARE.finditer(bare_line, start, end):
                problems.append(f"{where}:{number}: {match.group(0)!r} without a topic: write "
                                "<!-- ref:TOPIC -->lesson NN<!-- /ref --> (python -m course refs lists the topics)")
            for match in TITLE_LINK.finditer(bare_line, start, end):
                lesson = known.get(match["fn"])
                if lesson is None or match["n"] != match["fn"] or lesson.stem != match["file"] \
                        or lesson.title != match["title"]:
                    right = f"[{lesson.number} · {lesson.title}]({lesson.stem}.ipynb)" if lesson else "no such lesson"
                    problems.append(f"{where}:{number}: {match.group(0)!r} is not a lesson's number and title ({right})")
    problems += _wrapped_references(text.split("\n"), where)
    return "\n".join(lines), problems


WRAPPED_START = re.compile(r"\blessons?\s*$", re.I)
WRAPPED_END = re.compile(r"^[\s#]*\d{2}\b")


def _wrapped_references(lines: list[str], where: str) -> list[str]:
    """A bare reference broken over two lines ("... lesson" / "03 ..."), which the line scan misses."""
    problems, fenced = [], False
    for index, line in enumerate(lines[:-1]):
        if line.lstrip("# ").startswith(("```", "~~~")):
            fenced = not fenced
        if fenced:
            continue
        bare_line = REF.sub(lambda m: " " * len(m.group(0)), line)
        if WRAPPED_START.search(bare_line) and WRAPPED_END.match(lines[index + 1]):
            problems.append(f"{where}:{index + 1}: 'lesson' at the end of the line and a lesson number on the next, "
                            "without a topic: write <!-- ref:TOPIC -->lesson NN<!-- /ref --> on one line")
    return problems


def run(write: bool = False, root: Path = ROOT) -> list[str]:
    known = lessons(root)
    topic_lessons, problems = topics(root)
    for path in scanned_files(root):
        text = path.read_text(encoding="utf-8")
        fixed, found = check_text(text, str(path.relative_to(root)), topic_lessons, known)
        if write:
            if fixed != text:
                path.write_text(fixed, encoding="utf-8")
                print(f"updated {path.relative_to(root)}")
            found = [f for f in found if "python -m course refs --write" not in f]
        problems += found
    return problems


def main(args: list[str]) -> int:
    if args not in ([], ["--check"], ["--write"]):
        print("usage: python -m course refs [--check | --write]", file=sys.stderr)
        return 2
    if not args:
        topic_lessons, _ = topics()
        for number, lesson in lessons().items():
            names = sorted(t for t, n in topic_lessons.items() if n == number)
            print(f"{number} {lesson.title}: {', '.join(names) or '-'}")
        return 0
    problems = run(write=args == ["--write"])
    for problem in problems:
        print(f"refs: {problem}", file=sys.stderr)
    if not problems and args == ["--check"]:
        print(f"OK: every lesson reference resolves to the lesson that teaches its topic ({len(topics()[0])} topics)")
    return 1 if problems else 0
