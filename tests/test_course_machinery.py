"""The course machinery, tested like code: quizzes, notebook generation, the notebook helpers.

Two kinds of tests. Unit tests run ``course.quiz``, ``course.build`` and ``course.notebook`` on
small, made-up inputs (a bank in ``tmp_path``, a lesson tree in ``tmp_path``, a fake
``ipytest.run``). Content tests read the real lessons, quiz banks and generated notebooks and fail
when they disagree: a quiz without a bank entry, an option without feedback, a bank whose hash
matches no option (or two), a stored answer that is wrong.
"""

import re

import pytest

from course import build, notebook, quiz
from course.quiz import WrongAnswer, answer


class _ImportedOnUse:
    """nbformat, imported by the first test that uses it: collecting the suite must not pay
    for its import (nbformat -> jsonschema -> a grammar compiled at import: about a second).
    Private names are not nbformat's: pytest probes every module attribute for fixture markers
    (``_fixture_function_marker``, ``__pytest_wrapped__``), and answering those by importing
    nbformat made every collection pay for it after all."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        import nbformat

        return getattr(nbformat, name)


nbformat = _ImportedOnUse()


def new_code_cell(*args, **kwargs):
    return nbformat.v4.new_code_cell(*args, **kwargs)


def new_markdown_cell(*args, **kwargs):
    return nbformat.v4.new_markdown_cell(*args, **kwargs)


def new_notebook(*args, **kwargs):
    return nbformat.v4.new_notebook(*args, **kwargs)


def new_output(*args, **kwargs):
    return nbformat.v4.new_output(*args, **kwargs)

QUIZ_HEADER = re.compile(r"\*\*Quiz (\d\d\.\d+)\.\*\*")
OPTION = re.compile(r"^- \*\*([a-z])\)\*\*", re.M)
ANSWER_CALL = re.compile(r"""answer\(\s*["'](?P<id>\d\d\.\d+)["']\s*,\s*["'](?P<choice>[^"']*)["']\s*\)""")

LESSONS = build.lesson_paths()
LESSON_IDS = [path.stem for path in LESSONS]


def quizzes_in(lesson_path) -> dict[str, set[str]]:
    """Quiz id -> the option letters its markdown lists (``- **a)** ...``)."""
    found: dict[str, set[str]] = {}
    for cell in build.read_lesson(lesson_path).cells:
        if cell.cell_type != "markdown":
            continue
        parts = QUIZ_HEADER.split(cell.source)  # [before, id, text, id, text, ...]
        for quiz_id, text in zip(parts[1::2], parts[2::2]):
            assert quiz_id not in found, f"quiz {quiz_id} appears twice in {lesson_path.name}"
            found[quiz_id] = set(OPTION.findall(text))
    return found


def answer_cells(nb) -> list[tuple[str, str]]:
    """(quiz id, choice) of every cell tagged ``quiz-answer``."""
    calls = []
    for cell in nb.cells:
        if "quiz-answer" in cell.metadata.get("tags", []):
            match = ANSWER_CALL.search(cell.source)
            assert match, f"quiz-answer cell without an answer(...) call: {cell.source!r}"
            calls.append((match["id"], match["choice"]))
    return calls


# --- course.quiz, on a made-up bank -------------------------------------------------------------


@pytest.fixture
def demo_bank(tmp_path, monkeypatch):
    """Bank of a lesson "99" with one quiz whose right answer is b; strict mode (as in solutions/)."""
    monkeypatch.setattr(quiz, "BANK_DIR", tmp_path)
    monkeypatch.setenv("COURSE_QUIZ_STRICT", "1")
    (tmp_path / "99_demo.toml").write_text(
        f'[1]\nanswer = "{quiz.digest("99.1", "b")}"\n'
        '[1.feedback]\na = "Feedback for a."\nb = "Feedback for b."\nc = "Feedback for c."\n',
        encoding="utf-8",
    )


def test_right_answer_passes_and_prints_its_feedback(demo_bank, capsys):
    assert answer("99.1", "b") is None
    out = capsys.readouterr().out
    assert "Quiz 99.1: b) is right." in out
    assert "Feedback for b." in out


def test_choice_is_case_and_space_insensitive(demo_bank, capsys):
    answer("99.1", " B ")
    assert "Quiz 99.1: b) is right." in capsys.readouterr().out


def test_wrong_answer_raises_with_that_options_feedback(demo_bank):
    with pytest.raises(WrongAnswer) as caught:
        answer("99.1", "c")
    message = str(caught.value)
    assert "c) is not right" in message
    assert "Feedback for c." in message
    assert "Feedback for b." not in message  # the right answer's feedback would give it away


def test_wrong_answer_fails_a_cell_like_an_assert():
    assert issubclass(WrongAnswer, AssertionError)


def test_in_a_learner_notebook_a_wrong_answer_prints_its_feedback_and_does_not_raise(demo_bank, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_QUIZ_STRICT", "0")
    assert answer("99.1", "c") is None
    out = capsys.readouterr().out
    assert "Quiz 99.1: c) is not right. Feedback for c. Try another option." in out
    assert "Feedback for b." not in out


def test_in_a_learner_notebook_an_unknown_option_prints_the_options(demo_bank, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_QUIZ_STRICT", "0")
    answer("99.1", "z")
    assert "Quiz 99.1 has options a, b, c; 'z' is not one of them. Try again." in capsys.readouterr().out


@pytest.mark.parametrize(("where", "strict"), [("solutions", True), ("notebooks", False), (".", False)])
def test_strict_only_in_the_solution_notebooks(monkeypatch, where, strict):
    monkeypatch.delenv("COURSE_QUIZ_STRICT", raising=False)
    monkeypatch.chdir(build.ROOT / where)
    assert quiz.strict() is strict


def test_wrong_answer_shows_its_message_without_a_traceback():
    assert WrongAnswer("Quiz 99.1: c) is not right.")._render_traceback_() == ["WrongAnswer: Quiz 99.1: c) is not right."]


def test_blank_answer_prints_the_prompt_and_returns_none(demo_bank, capsys):
    assert answer("99.1", "") is None
    assert answer("99.1", "   ") is None
    out = capsys.readouterr().out
    assert "Quiz 99.1: put your choice (a, b, c) between the quotes" in out


def test_unknown_option_is_a_value_error(demo_bank):
    with pytest.raises(ValueError, match=r"Quiz 99.1 has options a, b, c; 'z' is not one of them"):
        answer("99.1", "z")


def test_malformed_quiz_id_is_a_value_error(demo_bank):
    with pytest.raises(ValueError, match="quiz ids look like"):
        answer("99-1", "b")


def test_unknown_quiz_is_a_lookup_error(demo_bank):
    with pytest.raises(LookupError, match="no quiz '99.2'"):
        answer("99.2", "b")


def test_lesson_without_a_bank_is_a_lookup_error(demo_bank):
    with pytest.raises(LookupError, match="found 0"):
        answer("98.1", "b")


def test_hash_depends_on_the_quiz_and_the_choice():
    assert quiz.digest("99.1", "b") == quiz.digest("99.1", " B")
    assert quiz.digest("99.1", "b") != quiz.digest("99.2", "b")
    assert quiz.digest("99.1", "b") != quiz.digest("99.1", "a")


# --- the real banks against the real lessons ----------------------------------------------------


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_lesson_has_at_least_three_quizzes(lesson):
    assert len(quizzes_in(lesson)) >= 3


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_bank_matches_the_lessons_quizzes(lesson):
    number = lesson.name[:2]
    in_lesson = quizzes_in(lesson)
    bank = quiz.load_bank(number)
    assert sorted(bank) == sorted(in_lesson), "quizzes in the bank and in the lesson's markdown differ"
    for quiz_id, options in in_lesson.items():
        assert len(options) >= 2, f"{quiz_id} lists fewer than two options"
        entry = bank[quiz_id]
        assert set(entry.feedback) == options, f"{quiz_id}: feedback for {sorted(entry.feedback)}, options {sorted(options)}"
        assert all(text.strip() for text in entry.feedback.values()), f"{quiz_id}: empty feedback"
        right = [option for option in options if entry.is_right(option)]
        assert len(right) == 1, f"{quiz_id}: the bank's hash matches {right}, not exactly one option"


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_every_quiz_has_an_answer_cell(lesson):
    answered = [quiz_id for quiz_id, _ in answer_cells(build.read_lesson(lesson))]
    assert sorted(answered) == sorted(quizzes_in(lesson))


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_every_answer_in_solutions_is_right(lesson):
    path = build.SOLUTIONS / f"{lesson.stem}.ipynb"
    assert path.exists(), f"{path.name} is missing: .venv/bin/python -m course build {lesson.name[:2]}"
    calls = answer_cells(nbformat.read(path, as_version=4))
    assert calls, f"{path.name} has no quiz-answer cells"
    for quiz_id, choice in calls:
        assert choice.strip(), f"{path.name}: quiz {quiz_id} has a blank answer"
        assert quiz.get(quiz_id).is_right(choice), f"{path.name}: {choice!r} is not the right answer to {quiz_id}"


@pytest.mark.parametrize("lesson", LESSONS, ids=LESSON_IDS)
def test_learner_notebooks_do_not_give_answers_away(lesson):
    path = build.NOTEBOOKS / f"{lesson.stem}.ipynb"
    assert path.exists(), f"{path.name} is missing: .venv/bin/python -m course build {lesson.name[:2]}"
    calls = answer_cells(nbformat.read(path, as_version=4))
    assert calls and all(choice == "" for _, choice in calls)


# --- course.build: the learner version ----------------------------------------------------------

EXERCISE = "def area(width, height):\n    # BEGIN SOLUTION\n    return width * height\n    # END SOLUTION\n\n\narea(2, 3)"


def solution_notebook():
    """A small executed solution notebook: outputs, execution counts, every special cell kind."""
    return new_notebook(
        cells=[
            new_markdown_cell("# 99 · Demo"),
            new_code_cell(EXERCISE, execution_count=1, outputs=[new_output("execute_result", {"text/plain": "6"}, execution_count=1)]),
            new_markdown_cell("**Instructor notes.** Say this.", metadata={"tags": ["instructor"]}),
            new_code_cell(
                'answer("99.1", "b")',
                metadata={"tags": ["quiz-answer"]},
                execution_count=2,
                outputs=[new_output("stream", name="stdout", text="Quiz 99.1: b) is right.\n")],
            ),
            new_code_cell(
                "print('hello')",
                metadata={"execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"}},
                execution_count=3,
                outputs=[new_output("stream", name="stdout", text="hello\n")],
            ),
        ]
    )


def test_to_learner_replaces_the_solution_block_and_tags_the_cell():
    learner = build.to_learner(solution_notebook())
    exercise = learner.cells[1]
    assert exercise.source == "def area(width, height):\n    ...  # YOUR CODE HERE\n\n\narea(2, 3)"
    assert {"exercise", "nbval-skip"} <= set(exercise.metadata["tags"])


def test_to_learner_replaces_every_block_at_its_own_indentation():
    source = "# BEGIN SOLUTION\nx = 1\n# END SOLUTION\nclass A:\n    def f(self):\n        # BEGIN SOLUTION\n        return 2\n        # END SOLUTION\n"
    learner = build.to_learner(new_notebook(cells=[new_code_cell(source)]))
    assert learner.cells[0].source == "...  # YOUR CODE HERE\nclass A:\n    def f(self):\n        ...  # YOUR CODE HERE\n"


def test_to_learner_blanks_quiz_answers():
    learner = build.to_learner(solution_notebook())
    quiz_cell = next(c for c in learner.cells if "quiz-answer" in c.metadata.get("tags", []))
    assert quiz_cell.source == 'answer("99.1", "")'
    assert "exercise" not in quiz_cell.metadata["tags"]


def test_to_learner_drops_instructor_cells():
    learner = build.to_learner(solution_notebook())
    assert len(learner.cells) == 4
    assert not any("instructor" in c.metadata.get("tags", []) or "Instructor" in c.source for c in learner.cells)


def test_to_learner_clears_outputs_and_run_metadata():
    learner = build.to_learner(solution_notebook())
    for cell in learner.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata


def test_to_learner_leaves_ordinary_cells_and_the_solution_alone():
    solution = solution_notebook()
    learner = build.to_learner(solution)
    assert learner.cells[3].source == "print('hello')"
    assert "tags" not in learner.cells[3].metadata
    assert "return width * height" in solution.cells[1].source  # a copy was changed, not the input
    assert solution.cells[1].outputs


# --- course.build: check() on a throwaway course tree -------------------------------------------

LESSON_SOURCE = '''# %% [markdown]
# # 99 · Demo

# %%
def area(width, height):
    # BEGIN SOLUTION
    return width * height
    # END SOLUTION

# %% [markdown] tags=["instructor"]
# Say this.

# %% tags=["quiz-answer"]
answer("99.1", "b")
'''


@pytest.fixture
def course_tree(tmp_path, monkeypatch):
    """lessons/, solutions/, notebooks/ in tmp_path, built (without a kernel) from one lesson."""
    for name in ("lessons", "solutions", "notebooks"):
        (tmp_path / name).mkdir()
        monkeypatch.setattr(build, name.upper(), tmp_path / name)
    monkeypatch.setattr(build, "ROOT", tmp_path)
    monkeypatch.setattr(build, "execute", lambda nb, cwd: nb)  # "executing" leaves the cells as they are
    monkeypatch.setattr(build, "stored_url", lambda: "postgresql+asyncpg://course@127.0.0.1:1/shelter")
    (tmp_path / "lessons" / "99_demo.py").write_text(LESSON_SOURCE, encoding="utf-8")
    build.build(["99"])
    return tmp_path


def test_build_writes_the_solution_and_the_learner_notebook(course_tree):
    solution = nbformat.read(course_tree / "solutions" / "99_demo.ipynb", as_version=4)
    learner = nbformat.read(course_tree / "notebooks" / "99_demo.ipynb", as_version=4)
    assert "return width * height" in solution.cells[1].source
    assert 'answer("99.1", "b")' in solution.cells[-1].source
    assert "YOUR CODE HERE" in learner.cells[1].source
    assert len(learner.cells) == len(solution.cells) - 1


def test_check_passes_on_a_fresh_build(course_tree, capsys):
    assert build.check() == 0
    assert "OK: 1 lessons" in capsys.readouterr().out


def test_check_ignores_outputs_of_the_solution(course_tree):
    path = course_tree / "solutions" / "99_demo.ipynb"
    solution = nbformat.read(path, as_version=4)
    solution.cells[1].outputs = [new_output("stream", name="stdout", text="ran\n")]
    nbformat.write(solution, path)
    assert build.check() == 0


def test_check_fails_when_a_learner_notebook_is_edited(course_tree, capsys):
    path = course_tree / "notebooks" / "99_demo.ipynb"
    learner = nbformat.read(path, as_version=4)
    learner.cells[-1].source = 'answer("99.1", "b")'  # someone filled in the answer and committed it
    nbformat.write(learner, path)
    assert build.check() == 1
    assert "notebooks/99_demo.ipynb is not generated from solutions/99_demo.ipynb" in capsys.readouterr().err


def test_check_fails_when_the_lesson_changed_since_the_build(course_tree, capsys):
    lesson = course_tree / "lessons" / "99_demo.py"
    lesson.write_text(LESSON_SOURCE.replace("width * height", "height * width"), encoding="utf-8")
    assert build.check() == 1
    assert "solutions/99_demo.ipynb differs from lessons/99_demo.py" in capsys.readouterr().err


def test_check_fails_when_a_notebook_is_missing(course_tree, capsys):
    (course_tree / "notebooks" / "99_demo.ipynb").unlink()
    assert build.check() == 1
    assert "99_demo: notebook missing" in capsys.readouterr().err


def test_check_fails_on_a_notebook_without_a_lesson(course_tree, capsys):
    (course_tree / "lessons" / "99_demo.py").rename(course_tree / "lessons" / "98_renamed.py")
    assert build.check() == 1
    assert "99_demo.ipynb has no lesson source in lessons/" in capsys.readouterr().err


def test_build_refuses_to_store_sqlite_outputs(course_tree, monkeypatch, capsys):
    monkeypatch.undo()  # the real stored_url, and a selection of SQLite
    for name in ("lessons", "solutions", "notebooks"):
        monkeypatch.setattr(build, name.upper(), course_tree / name)
    monkeypatch.setattr(build, "ROOT", course_tree)
    monkeypatch.setenv("COURSE_SELECTED_DATABASE_URL", f"sqlite+aiosqlite:///{course_tree / 'x.sqlite'}")
    assert build.build(["99"]) == 1
    assert "stored outputs come from PostgreSQL" in capsys.readouterr().err


def test_build_records_the_sqlite_output_of_a_cell_tagged_output_per_database(course_tree, monkeypatch):
    lesson = course_tree / "lessons" / "99_demo.py"
    lesson.write_text(LESSON_SOURCE + '\n# %% tags=["output-per-database"]\nprint("which")\n', encoding="utf-8")

    def execute(nb, cwd):  # "runs" on the database the environment names
        import os

        backend = "sqlite" if os.environ["DATABASE_URL"].startswith("sqlite") else "postgresql"
        nb.cells[-1].outputs = [new_output("stream", name="stdout", text=f"{backend}\n")]
        return nb

    monkeypatch.setattr(build, "execute", execute)
    assert build.build(["99"]) == 0
    cell = nbformat.read(course_tree / "solutions" / "99_demo.ipynb", as_version=4).cells[-1]
    assert cell.outputs[0]["text"] == "postgresql\n"
    assert cell.metadata[build.OTHER_OUTPUTS]["sqlite"][0]["text"] == "sqlite\n"
    learner = nbformat.read(course_tree / "notebooks" / "99_demo.ipynb", as_version=4).cells[-1]
    assert build.OTHER_OUTPUTS not in learner.metadata and learner.outputs == []
    assert build.check() == 0


# --- course.notebook ----------------------------------------------------------------------------


@pytest.fixture
def pytest_exit_code(monkeypatch):
    """Replace ipytest.run: record its arguments, return the exit code the test sets."""
    calls = []
    result = {"code": 0}

    def fake_run(*args, **kwargs):
        calls.append((args, kwargs))
        return result["code"]

    monkeypatch.setattr(notebook.ipytest, "run", fake_run)
    monkeypatch.setattr("gc.freeze", lambda: None)  # run_tests freezes the kernel's objects; not ours
    result["calls"] = calls
    return result


@pytest.mark.parametrize("expect", ["passes", "fail", "error", ""])
def test_run_tests_rejects_an_unknown_expectation(pytest_exit_code, expect):
    with pytest.raises(ValueError, match="expect must be 'passed' or 'failed'"):
        notebook.run_tests("test_x", expect=expect)
    assert pytest_exit_code["calls"] == []  # rejected before running anything


def test_run_tests_runs_the_named_tests_of_the_notebook_without_raising(pytest_exit_code, capsys):
    notebook.run_tests("test_a", "test_b")
    (args, kwargs), = pytest_exit_code["calls"]
    assert args == ("{MODULE}::test_a", "{MODULE}::test_b")
    assert kwargs == {"raise_on_error": False}
    assert "As expected, the tests passed (pytest exit code 0)." in capsys.readouterr().out


def test_run_tests_passes_extra_pytest_options_before_the_tests(pytest_exit_code, capsys):
    notebook.run_tests("test_a", args=["--tb=line"])
    (args, _), = pytest_exit_code["calls"]
    assert args == ("--tb=line", "{MODULE}::test_a")


def test_run_tests_expecting_failure_passes_when_pytest_reports_failures(pytest_exit_code, capsys):
    pytest_exit_code["code"] = 1
    notebook.run_tests("test_a", expect="failed")
    assert "As expected, the tests failed (pytest exit code 1)." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("code", "expect"),
    [(1, "passed"), (0, "failed"), (2, "failed"), (4, "failed"), (5, "failed"), (5, "passed")],
    ids=["failure-expected-pass", "pass-expected-failure", "interrupted", "usage-error", "no-tests-collected", "no-tests-but-pass"],
)
def test_run_tests_fails_the_cell_on_any_other_outcome(pytest_exit_code, code, expect):
    # 4 and 5 matter most: a misspelled test name must not count as "the test failed".
    pytest_exit_code["code"] = code
    with pytest.raises(AssertionError, match=f"expected the tests to have {expect}, but pytest exited with code {code}"):
        notebook.run_tests("test_a", expect=expect)


def test_lesson_describes_its_database():
    lesson = notebook.Lesson("11", "sqlite+aiosqlite:////somewhere/.data/shelter_test_nb11.sqlite")
    assert lesson.backend == "sqlite"
    assert repr(lesson) == "Lesson 11 on SQLite (aiosqlite), file shelter_test_nb11.sqlite"
    assert notebook.Lesson("11", "postgresql+asyncpg://u@h:5/shelter_test_nb11").backend == "postgresql"
