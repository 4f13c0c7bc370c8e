"""Multiple-choice quizzes whose right answer is not readable in the notebook.

The question and its options are a markdown cell of the lesson. The bank
(``course/quizzes/<lesson>.toml``) holds, per quiz, a salted SHA-256 of the right option and
feedback for every option. An answer cell calls ``answer("01.2", "b")``: blank, it prints a
prompt; otherwise it prints the feedback of the chosen option. A wrong choice raises only in
the solution notebooks (``solutions/``, or ``COURSE_QUIZ_STRICT=1``), so CI proves every answer
stored there; in a learner notebook it prints the feedback and "try another option", and *Run All*
carries on.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from course.refs import strip_markers

BANK_DIR = Path(__file__).parent / "quizzes"
SALT = "fastapi-db-testing-course"
QUIZ_ID = re.compile(r"^(\d\d)\.(\d+)$")


class WrongAnswer(AssertionError):
    """The chosen option is not the right one (fails the cell on purpose, in strict mode)."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, not a traceback
        return [f"WrongAnswer: {self}"]


def strict() -> bool:
    """True where a wrong answer must fail the cell: the solution notebooks (CI)."""
    flag = os.environ.get("COURSE_QUIZ_STRICT")
    if flag is not None:
        return flag == "1"
    return Path.cwd().resolve() == (Path(__file__).resolve().parent.parent / "solutions")


@dataclass(frozen=True)
class Quiz:
    id: str
    answer_hash: str
    feedback: dict[str, str]

    def is_right(self, choice: str) -> bool:
        return digest(self.id, choice) == self.answer_hash


def digest(quiz_id: str, choice: str) -> str:
    return hashlib.sha256(f"{SALT}:{quiz_id}:{choice.strip().lower()}".encode()).hexdigest()


def load_bank(lesson: str) -> dict[str, Quiz]:
    """All quizzes of a lesson (``"01"``), keyed by id (``"01.2"``)."""
    files = sorted(BANK_DIR.glob(f"{lesson}_*.toml"))
    if len(files) != 1:
        raise LookupError(f"expected one quiz bank course/quizzes/{lesson}_*.toml, found {len(files)}")
    raw = tomllib.loads(files[0].read_text(encoding="utf-8"))
    return {
        # Feedback is printed as plain text: lesson references and verdicts lose their (invisible) markers.
        f"{lesson}.{key}": Quiz(f"{lesson}.{key}", entry["answer"], {k.lower(): strip_markers(v) for k, v in entry["feedback"].items()})
        for key, entry in raw.items()
    }


def get(quiz_id: str) -> Quiz:
    match = QUIZ_ID.match(quiz_id)
    if not match:
        raise ValueError(f"quiz ids look like '01.2', not {quiz_id!r}")
    bank = load_bank(match.group(1))
    if quiz_id not in bank:
        raise LookupError(f"no quiz {quiz_id!r} in the bank; known: {', '.join(sorted(bank))}")
    return bank[quiz_id]


def answer(quiz_id: str, choice: str) -> None:
    """Check a quiz answer: prints feedback; a wrong one raises ``WrongAnswer`` in strict mode.

    Returns nothing, so the cell shows only the feedback (no stray ``True``).
    """
    quiz = get(quiz_id)
    options = ", ".join(sorted(quiz.feedback))
    choice = (choice or "").strip().lower()
    if not choice:
        print(f"Quiz {quiz_id}: put your choice ({options}) between the quotes and run this cell again.")
        return
    if choice not in quiz.feedback:
        message = f"Quiz {quiz_id} has options {options}; {choice!r} is not one of them."
        if strict():
            raise ValueError(message)
        print(f"{message} Try again.")
        return
    if quiz.is_right(choice):
        print(f"Quiz {quiz_id}: {choice}) is right. {quiz.feedback[choice]}")
        return
    message = f"Quiz {quiz_id}: {choice}) is not right. {quiz.feedback[choice]} Try another option."
    if strict():
        raise WrongAnswer(message)
    print(message)
