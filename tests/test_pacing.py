"""Stated minutes follow the pacing rule of course/pacing.py, and no code cell is over 30 lines.

The rule itself is tested on a small lesson written to a temporary directory; the last test holds
every real lesson to it. Its failure message is the line to write in the lesson's overview cell.
"""

from pathlib import Path

import pytest

from course import pacing

HEADER = "# ---\n# jupyter:\n#   jupytext:\n#     formats: py:percent\n# ---\n"


def lesson(tmp_path: Path, overview: str, *cells: str) -> Path:
    path = tmp_path / "01_sample.py"
    body = "".join(f"\n{cell.strip()}\n" for cell in cells)
    path.write_text(HEADER + f'\n# %% [markdown]\n# # 01 · Sample\n\n# %% [markdown] tags=["overview"]\n# {overview}\n'
                    + body, encoding="utf-8")
    return path


PROSE = "# %% [markdown]\n# " + " ".join(["word"] * 300)  # 2 minutes of reading
CODE = "# %%\n" + "\n".join(f"x{i} = {i}" for i in range(20))  # 20 s + 20 lines x 3 s = 80 s
EXERCISE = "# %% [markdown]\n# ### Exercise 1: do it\n# > Hint: like this."
QUIZ = "# %% [markdown]\n# **Quiz 01.1.** Which?\n# - **a)** this\n# - **b)** that"


def test_the_rule_counts_words_cells_lines_exercises_and_quizzes(tmp_path):
    pace = pacing.measure(lesson(tmp_path, "**Teaching:** 5 min · **Exercises:** 9 min", PROSE, CODE, EXERCISE, QUIZ))

    whole = pace.whole
    assert (whole.code_cells, whole.code_lines, whole.exercises, whole.quizzes) == (1, 20, 1, 1)
    assert 2 * pacing.WORDS_PER_MINUTE <= whole.words < 2 * pacing.WORDS_PER_MINUTE + 40  # + title, overview, headings
    expected = whole.words / 150 + (20 + 20 * 3) / 60
    assert whole.teaching == pytest.approx(expected)
    assert whole.exercise_minutes == 8 + 1
    assert pace.problems() == []  # 5 is within 3 minutes of ~3.6


def test_instructor_notes_and_diagram_sources_are_not_prose_and_collapsed_code_is_not_read(tmp_path):
    notes = '# %% [markdown] tags=["instructor"]\n# ' + " ".join(["note"] * 600)
    diagram = "# %% [markdown]\n# ```mermaid\n# flowchart LR\n#   a --> b --> c --> d --> e\n# ```"
    hidden = '# %% jupyter={"source_hidden": true}\n' + "\n".join(f"y{i} = {i}" for i in range(40))
    pace = pacing.measure(lesson(tmp_path, "**Teaching:** 3 min · **Exercises:** 0 min", notes, diagram, hidden))

    whole = pace.whole
    assert whole.words < 30 and whole.diagrams == 1
    assert (whole.code_cells, whole.code_lines) == (1, 0)
    # Collapsed or not, a cell over 30 lines is too long: whoever expands it reads all of it.
    assert [lines for _, lines in pace.long_cells] == [40]


def test_stated_minutes_off_the_rule_say_which_numbers_to_write(tmp_path):
    path = lesson(tmp_path, "**Teaching:** 30 min · **Exercises:** 1 min", *([PROSE] * 5), EXERCISE, EXERCISE)

    [problem] = pacing.measure(path).problems()

    assert "01_sample.py: write **Teaching:** 10 min · **Exercises:** 16 min in the overview cell" in problem
    assert "Teaching 30 min is not 10." in problem and "Exercises 1 min is not 16.0" in problem


def test_a_lesson_over_60_minutes_is_one_sitting_too_many_and_61_is_enough(tmp_path):
    # 30 x 2 min of reading = 60 min, plus one quiz: 61 computed minutes, stated as such.
    long = lesson(tmp_path, "**Teaching:** 60 min · **Exercises:** 1 min", *([PROSE] * 30), QUIZ)

    [problem] = pacing.measure(long).problems()

    assert "01_sample.py: 61 computed minutes (teaching + exercises) is over the 60 of one sitting" in problem
    assert "split it" in pacing.table([pacing.measure(long)])
    fits = lesson(tmp_path, "**Teaching:** 58 min · **Exercises:** 0 min", *([PROSE] * 29))
    assert pacing.measure(fits).problems() == []


def test_more_than_four_objectives_is_more_than_about_three_ideas(tmp_path):
    bullets = "\n".join(f"# - objective {i};\n#   its second line, not a bullet" for i in range(5))
    five = lesson(tmp_path, f"**Teaching:** 2 min · **Exercises:** 0 min\n#\n# **You will be able to**\n{bullets}", PROSE)

    assert pacing.measure(five).objectives == 5
    [problem] = pacing.measure(five).problems()
    assert "5 objectives under 'You will be able to' (at most 4" in problem
    four = lesson(tmp_path, f"**Teaching:** 2 min · **Exercises:** 0 min\n#\n# **You will be able to**\n"
                            + "\n".join(bullets.splitlines()[:8]), PROSE)
    assert pacing.measure(four).objectives == 4 and pacing.measure(four).problems() == []


def test_a_missing_overview_line_is_reported_with_the_numbers(tmp_path):
    [problem] = pacing.measure(lesson(tmp_path, "no minutes here", PROSE)).problems()

    assert "no '**Teaching:** N min · **Exercises:** M min'" in problem and "write **Teaching:** 2 min" in problem


def test_a_code_cell_over_30_lines_is_named_by_its_line_in_the_lesson(tmp_path):
    long_cell = "# %%\n" + "\n".join(f"z{i} = {i}" for i in range(31))
    path = lesson(tmp_path, "**Teaching:** 2 min · **Exercises:** 0 min", long_cell)

    problems = pacing.measure(path).problems()

    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("z0 = 0")) - 1
    assert [p for p in problems if "31 lines" in p] == [
        f"{path}:{line}: the code cell starting here has 31 lines (at most 30): split it, or move a helper "
        "the lesson does not teach to course machinery or a collapsed setup cell"]


def test_deep_dive_sections_are_measured_apart_until_the_next_heading_of_their_level(tmp_path):
    path = lesson(tmp_path, "**Teaching:** 5 min · **Exercises:** 0 min",
                  "# %% [markdown]\n# ## What the driver sends (deep dive)", PROSE, CODE,
                  "# %% [markdown]\n# ### A sub-section of the deep dive", PROSE,
                  "# %% [markdown] tags=[\"deep-dive\"]\n# ## Tagged instead of named", PROSE,
                  "# %% [markdown]\n# ## Back to the core", PROSE)

    pace = pacing.measure(path)

    assert pace.deep_dives == ["What the driver sends (deep dive)", "Tagged instead of named"]
    assert pace.deep.code_cells == 1 and pace.deep.words > 3 * 300
    assert 300 < pace.core.words < 400


LESSONS = sorted(pacing.LESSONS.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_lesson_states_the_minutes_the_rule_gives_and_has_short_cells(path):
    problems = pacing.measure(path).problems()

    assert not problems, "\n" + "\n".join(problems) + "\n" + pacing.RULE
