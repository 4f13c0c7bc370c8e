"""A lesson named by number and title, or a quiz named by its id, is one that exists.

Lessons are renumbered when one is split; references by topic (``course refs``) follow by
themselves, but the hand-written (title or its part before a colon) "05 · Rollback fixtures" of a Prerequisites line or a run sheet,
and "Quiz 06.2" in prose or an instructor note, would go stale without a word. These tests fail on
the first title that is not the lesson's own and on a quiz id no bank holds.
"""

import re
from pathlib import Path

import pytest

from course import quiz

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
TITLES = {m.group(1): m.group(2) for path in LESSONS
          if (m := re.search(r"^# # (\d\d) · (.+?)\s*$", path.read_text(encoding="utf-8"), re.M))}
WRITTEN = [*LESSONS, *sorted((ROOT / "course" / "quizzes").glob("*.toml")), ROOT / "README.md",
           ROOT / "CONTRIBUTING.md", ROOT / "INSTRUCTOR_GUIDE.md", ROOT / "course" / "guide_template.md",
           ROOT / "course" / "workshop.toml", ROOT / "course" / "exercises.toml", ROOT / "ERRORS.md",
           ROOT / "GLOSSARY.md", *sorted((ROOT / "workshop").glob("*.md"))]
TITLED = re.compile(r"(?<![\d.:])\b(\d\d) · ")
QUIZ = re.compile(r"\bQuiz (\d\d)\.(\d+)\b")


def mentions(pattern):
    for path in WRITTEN:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in pattern.finditer(line):
                yield f"{path.relative_to(ROOT)}:{number}", match, line


def title_problems(mentioned) -> list[str]:
    out = []
    for where, match, line in mentioned:
        lesson, rest = match.group(1), line[match.end():]
        if lesson not in TITLES:
            out.append(f"{where}: lesson {lesson} does not exist ({line.strip()[:80]})")
        elif not rest.startswith(TITLES[lesson].split(":")[0]):  # the part before a colon is enough
            out.append(f"{where}: '{lesson} · {rest[:40]}...' is not lesson {lesson}'s title '{TITLES[lesson]}'")
    return out


def quiz_problems(mentioned) -> list[str]:
    out = []
    for where, match, _ in mentioned:
        quiz_id = f"{match.group(1)}.{match.group(2)}"
        try:
            quiz.get(quiz_id)
        except LookupError as exc:
            out.append(f"{where}: Quiz {quiz_id}: {exc}")
    return out


def test_the_lessons_are_numbered_from_00_without_a_gap():
    assert list(TITLES) == [f"{n:02d}" for n in range(len(LESSONS))]


def test_every_lesson_named_with_its_title_is_named_with_its_own_title():
    found = list(mentions(TITLED))
    assert len(found) > len(LESSONS)  # the Next lines alone name every lesson but 00
    assert title_problems(found) == []


def test_every_quiz_named_in_prose_is_in_its_lessons_bank():
    found = list(mentions(QUIZ))
    assert len(found) > 20
    assert quiz_problems(found) == []


@pytest.mark.negative_control
def test_a_stale_title_and_a_quiz_that_moved_are_named():
    line = "# **Prerequisites:** 05 · Savepoints; see Quiz 05.9 and Quiz 99.1"
    stale = title_problems([("lessons/x.py:1", m, line) for m in TITLED.finditer(line)])
    missing = quiz_problems([("lessons/x.py:1", m, line) for m in QUIZ.finditer(line)])

    assert stale == [f"lessons/x.py:1: '05 · Savepoints; see Quiz 05.9 and Quiz 99.1...' is not lesson 05's title '{TITLES['05']}'"]
    assert [p.split(": ", 2)[1] for p in missing] == ["Quiz 05.9", "Quiz 99.1"]
