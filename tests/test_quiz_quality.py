"""Quizzes that cannot be gamed: the rules of CONTRIBUTING.md, read off the lessons and the banks.

Each lesson's quizzes are the markdown ``**Quiz NN.K.** question`` with options ``- **a)** ...``;
the right letter is the option whose ``course.quiz.digest`` matches the bank's hash
(``course/quizzes/NN_*.toml``). Rules:

* at least three quizzes per lesson;
* per lesson, no letter is right in more than 40 % of its quizzes;
* across the course every letter a-d is right somewhere;
* across the course, the right option is the (strictly) longest of its quiz in at most a third;
* across the course, no rank of the right option by length (longest, second longest, ...) holds the
  right answer in more than 40 % of the quizzes: "pick the second longest" must not pay;
* no quiz is answered by the text above it: the words only the right option uses (not the question,
  not a wrong option) must not mostly appear in the markdown just above the quiz;
* a code cell right after a quiz's answer cell that asserts something (a demonstration, which reveals
  the answer) has its source folded (``jupyter={"source_hidden": true}``): learners run it after
  answering, and learner notebooks carry no outputs;
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
MAX_SHARE_OF_ONE_RANK = 0.40
LETTERS = "abcd"
# "answered above": at least this many of the right option's own words, and at least this share of them
ABOVE_MIN_WORDS, ABOVE_MAX_SHARE = 2, 0.5
CONTENT_WORD = re.compile(r"[a-z][a-z0-9_]{3,}")
STOP_WORDS = frozenset("""that this with from what when which there their they them then than into only also does each
same have been will would could should about after before other every where while your more most some such just very
over under because these those like make made many much must need needs none both either neither still even here""".split())


@dataclass
class Quiz:
    id: str
    lesson: str
    options: dict[str, str]  # letter -> text, from the markdown
    feedback: dict[str, str]  # letter -> text, from the bank
    right: str | None  # from the bank's hash

    @property
    def right_rank(self) -> int | None:
        """1 when the right option is the longest, 2 when it is the second longest (ties share a rank)."""
        if self.right not in self.options:
            return None
        mine = len(self.options[self.right])
        return 1 + sum(len(text) > mine for letter, text in self.options.items() if letter != self.right)

    @property
    def right_is_longest(self) -> bool:
        if self.right not in self.options:
            return False
        mine = len(self.options[self.right])
        return all(mine > len(text) for letter, text in self.options.items() if letter != self.right)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    text = re.sub(r"\]\([^)]*\)", "]", text)  # a link's address (a glossary anchor, a URL) is not text a learner reads
    return {_stem(w) for w in CONTENT_WORD.findall(text.lower()) if w not in STOP_WORDS}


def answered_above(question: str, options: dict[str, str], right: str, above: str) -> tuple[set[str], set[str]]:
    """The right option's own words (in no wrong option, not in the question), and those of them ``above`` uses."""
    own = content_words(options[right]) - content_words(question)
    for letter, text in options.items():
        if letter != right:
            own -= content_words(text)
    return own, own & content_words(above)


def is_answered_above(own: set[str], found: set[str]) -> bool:
    return len(found) >= ABOVE_MIN_WORDS and len(found) >= ABOVE_MAX_SHARE * len(own)


@dataclass
class Context:
    """What a learner sees around a quiz: the markdown above it, and the code cell after its answer cell."""

    id: str
    question: str
    above: str
    after_answer: object | None  # the code cell right after the answer cell, if any


def quiz_contexts(path: Path) -> list[Context]:
    import jupytext

    cells = jupytext.read(path).cells
    out, previous_markdown = [], ""
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        for head in QUIZ_HEAD.finditer(cell.source):
            question = cell.source[head.end():].split("\n- **")[0].split("\n# - **")[0]
            answer_at = next((i for i in range(index + 1, len(cells))
                              if "quiz-answer" in cells[i].metadata.get("tags", [])
                              and head.group(1) in cells[i].source), None)
            after = cells[answer_at + 1] if answer_at is not None and answer_at + 1 < len(cells) else None
            out.append(Context(head.group(1), question, previous_markdown + "\n" + cell.source[:head.start()],
                               after if after is not None and after.cell_type == "code" else None))
        previous_markdown = cell.source
    return out


def reveals_unfolded(cell) -> bool:
    """A visible code cell that asserts something: it shows the result the quiz asks about."""
    if cell is None:
        return False
    folded = cell.metadata.get("jupyter", {}).get("source_hidden", False)
    return not folded and re.search(r"^\s*assert\b", cell.source, re.M) is not None


def markdown_quizzes(path: Path) -> dict[str, dict[str, str]]:
    """``{"05.1": {"a": "option text", ...}}`` from the lesson's markdown cells."""
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


def test_no_length_rank_holds_the_right_answer_in_more_than_40_percent_of_the_quizzes():
    quizzes = [q for qs in all_quizzes().values() for q in qs if q.right]
    ranks = Counter(q.right_rank for q in quizzes)
    names = {1: "the longest", 2: "the second longest", 3: "the third longest", 4: "the fourth longest"}
    too_often = {rank: n for rank, n in ranks.items() if n > MAX_SHARE_OF_ONE_RANK * len(quizzes)}

    assert not too_often, "; ".join(
        f"the right option is {names.get(rank, f'rank {rank}')} in {n} of {len(quizzes)} quizzes (at most "
        f"{int(MAX_SHARE_OF_ONE_RANK * len(quizzes))}, 40 %): "
        f"{', '.join(q.id for q in quizzes if q.right_rank == rank)}; lengthen or shorten an option of some of them"
        for rank, n in sorted(too_often.items()))


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_no_quiz_is_answered_by_the_text_above_it(path):
    quizzes = {q.id: q for q in all_quizzes()[path.stem]}
    offending = []
    for context in quiz_contexts(path):
        q = quizzes.get(context.id)
        if q is None or q.right is None:
            continue
        own, found = answered_above(context.question, q.options, q.right, context.above)
        if is_answered_above(own, found):
            offending.append(f"quiz {q.id}: the markdown above it uses {len(found)} of the {len(own)} words only the "
                             f"right option uses ({', '.join(sorted(found))}): ask before explaining, or reword")

    assert not offending, "\n".join(offending)


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_a_demonstration_right_after_an_answer_cell_is_folded(path):
    offending = [f"quiz {c.id}: the code cell after its answer cell asserts the result in plain sight "
                 f"({c.after_answer.source.strip().splitlines()[0][:80]!r}...): fold it with "
                 '`# %% jupyter={"source_hidden": true}`'
                 for c in quiz_contexts(path) if reveals_unfolded(c.after_answer)]

    assert not offending, "\n".join(offending)


def test_the_giveaway_checks_catch_giveaways_and_pass_the_rest():
    """Negative controls for the two heuristics above, on made-up quizzes and cells."""
    import nbformat

    options = {"a": "The session commits every row at once.", "b": "A savepoint is released, the outer transaction survives.",
               "c": "The engine is disposed.", "d": "Nothing happens."}
    question = "What does the session's commit() do inside the test?"
    copied = "Inside the fixture a commit() only releases a savepoint: the outer transaction survives."
    unrelated = "The next cell creates Rex and counts the rows of the animals table."
    assert is_answered_above(*answered_above(question, options, "b", copied))
    assert not is_answered_above(*answered_above(question, options, "b", unrelated))
    assert not is_answered_above(*answered_above(question, options, "b", ""))

    demo = nbformat.v4.new_code_cell("rows = count()\nassert rows == 0")
    assert reveals_unfolded(demo)
    demo.metadata["jupyter"] = {"source_hidden": True}
    assert not reveals_unfolded(demo)
    assert not reveals_unfolded(nbformat.v4.new_code_cell("print(count())"))
    assert not reveals_unfolded(None)


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
    assert (q.right, q.right_is_longest, q.right_rank) == ("b", True, 1)
    assert FEEDBACK_VERDICT.match(q.feedback["a"]) and not FEEDBACK_VERDICT.match(q.feedback["b"])
