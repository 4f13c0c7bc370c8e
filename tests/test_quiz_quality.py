"""Quizzes that cannot be gamed: the rules of CONTRIBUTING.md, read off the lessons and the banks.

Each lesson's quizzes are the markdown ``**Quiz NN.K.** question`` with options ``- **a)** ...``;
the right letter is the option whose ``course.quiz.digest`` matches the bank's hash
(``course/quizzes/NN_*.toml``). Rules:

* at least three quizzes per lesson;
* per lesson, no letter is right in more than 40 % of its quizzes;
* across the course every letter a-d is right somewhere;
* across the course, the right option is the (strictly) longest of its quiz in at most a third;
* no feedback begins with "Right" or "Wrong" (the check already says "is right" / "is not right");
* every option in the markdown has feedback in the bank and the other way round, and every quiz is
  in both.

Every failure names the quiz (or lesson) and the rule it breaks.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from course import guide, quiz

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
QUIZ_HEAD = re.compile(r"\*\*Quiz\s+(\d\d\.\d+)\.\*\*")
OPTION = re.compile(r"^\s*[-*]\s+\*\*([a-z])\)\*\*\s*(.*)$")
FEEDBACK_VERDICT = re.compile(r"^\W*(right|wrong)\b", re.I)
MAX_SHARE_OF_ONE_LETTER = 0.40
MAX_SHARE_LONGEST = 1 / 3
LETTERS = "abcd"


@dataclass
class Quiz:
    id: str
    lesson: str
    options: dict[str, str]  # letter -> text, from the markdown
    feedback: dict[str, str]  # letter -> text, from the bank
    right: str | None  # from the bank's hash

    @property
    def right_is_longest(self) -> bool:
        if self.right not in self.options:
            return False
        mine = len(self.options[self.right])
        return all(mine > len(text) for letter, text in self.options.items() if letter != self.right)


def markdown_quizzes(path: Path) -> dict[str, dict[str, str]]:
    """``{"04.1": {"a": "option text", ...}}`` from the lesson's markdown cells."""
    import jupytext  # here, not at import: collecting the suite must not load jupytext and nbformat

    found: dict[str, dict[str, str]] = {}
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "markdown":
            continue
        current = None
        for line in cell.source.splitlines():
            if head := QUIZ_HEAD.search(line):
                current = found.setdefault(head.group(1), {})
            elif current is not None and (option := OPTION.match(line)):
                current[option.group(1)] = option.group(2).strip()
                last = option.group(1)
            elif current is not None and current and line.startswith(("  ", "\t")) and line.strip():
                current[last] += " " + line.strip()  # a continuation line of the last option
    return found


def bank(path: Path) -> dict[str, dict]:
    file = quiz.BANK_DIR / f"{path.stem}.toml"
    if not file.exists():
        return {}
    import tomllib

    raw = tomllib.loads(file.read_text(encoding="utf-8"))
    return {f"{path.name[:2]}.{key}": entry for key, entry in raw.items()}


def lesson_quizzes(path: Path) -> list[Quiz]:
    answers, _ = guide.bank_answers(path.stem, quiz.BANK_DIR)
    entries = bank(path)
    out = []
    for qid, options in markdown_quizzes(path).items():
        feedback = {k.lower(): v for k, v in (entries.get(qid, {}).get("feedback") or {}).items()}
        out.append(Quiz(qid, path.stem, options, feedback, answers.get(qid)))
    return out


@functools.cache
def all_quizzes() -> dict[str, list[Quiz]]:
    """Every lesson's quizzes, read by the first test that needs them, not while the suite is collected."""
    return {path.stem: lesson_quizzes(path) for path in LESSONS}
IDS = [path.stem for path in LESSONS]


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_at_least_three_quizzes_per_lesson(path):
    quizzes = all_quizzes()[path.stem]

    assert len(quizzes) >= 3, f"{path.stem}: {len(quizzes)} quiz(zes); the rule is at least three per lesson"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_every_quiz_option_has_feedback_and_every_quiz_a_right_answer(path):
    problems = []
    markdown = {q.id for q in all_quizzes()[path.stem]}
    for qid in sorted(set(bank(path)) - markdown):
        problems.append(f"quiz {qid}: in course/quizzes/{path.stem}.toml but not in the lesson's markdown")
    for q in all_quizzes()[path.stem]:
        if not q.options:
            problems.append(f"quiz {q.id}: no options ('- **a)** ...') under its question")
        if not q.feedback:
            problems.append(f"quiz {q.id}: no feedback table in course/quizzes/{path.stem}.toml")
            continue
        if missing := sorted(set(q.options) - set(q.feedback)):
            problems.append(f"quiz {q.id}: option(s) {', '.join(missing)} have no feedback in the bank")
        if extra := sorted(set(q.feedback) - set(q.options)):
            problems.append(f"quiz {q.id}: the bank has feedback for {', '.join(extra)}, which the lesson does not offer")
        if q.right is None:
            problems.append(f"quiz {q.id}: the bank's answer hash matches none of its options "
                            f"(.venv/bin/python -m course quiz-hash {q.id} <letter>)")

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_no_letter_is_right_in_more_than_40_percent_of_a_lessons_quizzes(path):
    quizzes = [q for q in all_quizzes()[path.stem] if q.right]
    counts = Counter(q.right for q in quizzes)
    limit = int(MAX_SHARE_OF_ONE_LETTER * len(quizzes))
    too_often = {letter: n for letter, n in counts.items() if n > MAX_SHARE_OF_ONE_LETTER * len(quizzes)}

    assert not too_often, "; ".join(
        f"{path.stem}: {letter}) is right in {n} of {len(quizzes)} quizzes "
        f"({', '.join(q.id for q in quizzes if q.right == letter)}); the rule allows at most {limit} "
        f"(40 %): move the right option of one of them to another letter"
        for letter, n in sorted(too_often.items()))


def test_every_letter_is_right_somewhere_in_the_course():
    used = {q.right for quizzes in all_quizzes().values() for q in quizzes if q.right}

    assert set(LETTERS) <= used, f"no quiz in the course has {', '.join(sorted(set(LETTERS) - used))}) as its right option"


def test_the_right_option_is_the_longest_in_at_most_a_third_of_the_quizzes():
    quizzes = [q for qs in all_quizzes().values() for q in qs if q.right]
    longest = [q.id for q in quizzes if q.right_is_longest]

    assert len(longest) <= MAX_SHARE_LONGEST * len(quizzes), (
        f"the right option is the longest in {len(longest)} of {len(quizzes)} quizzes (at most a third allowed, "
        f"{int(MAX_SHARE_LONGEST * len(quizzes))}): {', '.join(longest)}; shorten it or lengthen a wrong one")


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_no_feedback_begins_with_right_or_wrong(path):
    offending = [f"quiz {q.id} option {letter}): feedback begins {text.split()[0]!r}"
                 for q in all_quizzes()[path.stem] for letter, text in sorted(q.feedback.items())
                 if FEEDBACK_VERDICT.match(text)]

    assert not offending, ("\n".join(offending) + "\nthe check already says 'is right' / 'is not right': "
                           "start the feedback with the reason")


def test_the_parser_reads_options_continuations_and_the_bank(tmp_path, monkeypatch):
    """A negative control for the parser: a sample lesson and bank with a known answer."""
    lesson = tmp_path / "01_sample.py"
    lesson.write_text("# %% [markdown]\n# **Quiz 01.1.** Which?\n# - **a)** short\n# - **b)** a much\n"
                      "#   longer option\n\n# %%\nx = 1\n", encoding="utf-8")
    (tmp_path / "01_sample.toml").write_text(
        f'[1]\nanswer = "{quiz.digest("01.1", "b")}"\n[1.feedback]\na = "Right: no."\nb = "Because."\n',
        encoding="utf-8")
    monkeypatch.setattr(quiz, "BANK_DIR", tmp_path)

    [q] = lesson_quizzes(lesson)

    assert q.options == {"a": "short", "b": "a much longer option"}
    assert (q.right, q.right_is_longest) == ("b", True)
    assert FEEDBACK_VERDICT.match(q.feedback["a"]) and not FEEDBACK_VERDICT.match(q.feedback["b"])
