"""course/guide.py: the instructor guide is read off the lessons' own cells.

Sample lessons are written as jupytext sources into a temporary directory, so these tests do not
depend on the real lessons (which change while they are written); `python -m course guide --check`
is what proves the committed INSTRUCTOR_GUIDE.md matches them.
"""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import re

import pytest

from course import guide, quiz

HEADER = """# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---
"""

OVERVIEW = """
# %% [markdown] tags=["overview"]
# **Teaching:** 20 min · **Exercises:** 10 min
#
# **Prerequisites:** 00 · Start here.
#
# **You will be able to**
# - explain why tests that share a database
#   depend on each other;
# - count the rows a run leaves behind.
"""

BODY = """
# %% [markdown] tags=["instructor"]
# ## Pace
# Show of hands before quiz 01.1.

# %%
from course.quiz import answer

# %% [markdown]
# **Quiz 01.1.** What does the second run
# of the test get?
# - **a)** 201
# - **b)** 409

# %% tags=["quiz-answer"]
answer("01.1", "b")

# %% [markdown]
# ### Claim check: in-memory SQLite isolates the tests

# %%
print("run it")

# %% [markdown]
# **Verdict:** mostly wrong. Nothing connects that database to the app.

# %% [markdown]
# ### Exercise 1: make the test stand on its own
# > Hint: seed the row.
"""

KEY_POINTS = """
# %% [markdown] tags=["key-points"]
# ## Key points
#
# - Shared state makes tests order-dependent.
# - A rollback fixture makes
#   the order irrelevant.
#
# **Next:** [02 · Dependency overrides](02_dependency_overrides.ipynb)
"""


def write_lesson(directory: Path, stem: str, title: str, *parts: str) -> Path:
    path = directory / f"{stem}.py"
    path.write_text(HEADER + f"\n# %% [markdown]\n# # {title}\n# Intro.\n" + "".join(parts), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def bank(tmp_path, monkeypatch):
    """A quiz bank for the sample lessons: quiz 01.1's right option is b (as its hash says)."""
    banks = tmp_path / "quizzes"
    banks.mkdir()
    (banks / "01_naive_tests.toml").write_text(
        f'[1]\nanswer = "{quiz.digest("01.1", "b")}"\n[1.feedback]\na = "No."\nb = "Yes."\n', encoding="utf-8")
    monkeypatch.setattr(guide, "BANK_DIR", banks)
    return banks


@pytest.fixture
def settings():
    return guide.Settings(repository="acme/db-course", branch="main", binderhub="https://mybinder.org")


def test_overview_minutes_objectives_and_the_rest_are_parsed(tmp_path):
    path = write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests and why they flake", OVERVIEW, BODY, KEY_POINTS)

    lesson, problems = guide.read_lesson(path)

    assert problems == []
    assert (lesson.number, lesson.title) == ("01", "Naive tests and why they flake")
    assert (lesson.teaching, lesson.exercises, lesson.minutes) == (20, 10, 30)
    assert lesson.prerequisites == "00 · Start here."
    assert lesson.objectives == ["explain why tests that share a database depend on each other;",
                                 "count the rows a run leaves behind."]
    assert lesson.key_points == ["Shared state makes tests order-dependent.",
                                 "A rollback fixture makes the order irrelevant."]
    assert lesson.instructor_notes == ["#### Pace\nShow of hands before quiz 01.1."]  # nested under the guide's ###
    assert lesson.exercise_titles == ["Exercise 1: make the test stand on its own"]
    assert lesson.claim_checks == [("in-memory SQLite isolates the tests", "mostly wrong")]
    assert lesson.quizzes == [("01.1", "What does the second run of the test get?", "b")]


def test_the_right_letter_comes_from_the_bank_not_from_answer_calls_in_the_lesson(tmp_path):
    demo = '\n# %% tags=["quiz-answer"]\nanswer("01.1", "a")  # a demo of a wrong answer, after the right one\n'
    path = write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests", OVERVIEW, BODY, demo, KEY_POINTS)

    lesson, problems = guide.read_lesson(path)

    assert problems == []
    assert lesson.quizzes[0][2] == "b"


def test_a_bank_hash_that_matches_no_option_is_an_error_saying_how_to_fix_it(tmp_path, bank):
    (bank / "01_naive_tests.toml").write_text(
        f'[1]\nanswer = "{quiz.digest("01.1", "z")}"\n[1.feedback]\na = "No."\nb = "Yes."\n', encoding="utf-8")
    path = write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests", OVERVIEW, BODY, KEY_POINTS)

    lesson, problems = guide.read_lesson(path)

    assert lesson is None
    assert problems == [f"{bank / '01_naive_tests.toml'}: quiz 01.1's answer hash matches none of its options "
                        "(a, b); set it with .venv/bin/python -m course quiz-hash 01.1 <letter>"]


def test_a_quiz_missing_from_the_bank_is_an_error(tmp_path, bank):
    (bank / "01_naive_tests.toml").unlink()
    path = write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests", OVERVIEW, BODY, KEY_POINTS)

    _, problems = guide.read_lesson(path)

    assert problems == [f"{path}: quiz 01.1 has no entry in course/quizzes/01_naive_tests.toml"]


def test_every_answer_the_real_guide_prints_is_accepted_by_course_quiz(monkeypatch):
    monkeypatch.setattr(guide, "BANK_DIR", quiz.BANK_DIR)
    monkeypatch.setenv("COURSE_QUIZ_STRICT", "1")  # a wrong answer raises, as in solutions/
    printed = re.findall(r"^- \*\*(\d\d\.\d+)\*\* .* → \*\*([a-z])\*\*$", guide.build_guide(), re.M)
    in_lessons = re.findall(r"\*\*Quiz (\d\d\.\d+)\.\*\*",
                            "".join(p.read_text(encoding="utf-8") for p in sorted(guide.LESSONS.glob("[0-9][0-9]_*.py"))))

    assert sorted(qid for qid, _ in printed) == sorted(in_lessons), "every quiz of every lesson is in the guide"
    for qid, letter in printed:
        assert quiz.get(qid).is_right(letter), f"the guide says {qid} -> {letter}, course.quiz disagrees"
        quiz.answer(qid, letter)  # strict mode: raises WrongAnswer if it were wrong


def test_day_paths_take_core_minutes_in_order_with_breaks_and_stop_when_the_day_is_full(tmp_path):
    lessons = []
    for number, core in (("00", 40), ("01", 50), ("02", 100), ("03", 60)):
        lesson = guide.Lesson(stem=f"{number}_x", number=number, title=f"L{number}", teaching=1, exercises=1,
                              prerequisites="", objectives=["o"], key_points=["k"], core_minutes=core - 0.4,
                              deep_dives=["Wire protocol (deep dive)"] if number == "01" else [])
        lessons.append(lesson)
    day = guide.Day("Morning", start=9 * 60, length=210, break_every=90, break_minutes=15)

    text = guide.day_path(lessons, day)

    assert "| 09:00 | 00 · L00 (core) | 40 | — |" in text
    assert "| 09:40 | 01 · L01 (core) | 50 | Wire protocol (deep dive) |" in text
    assert "| 10:30 | *break* | 15 | |" in text  # 40 + 50 = 90, and 02 would go past 90 minutes
    assert "| 10:45 | 02 · L02 (core) | 100 | — |" in text
    assert "| 12:25 | *end* | | |" in text  # 03 (60 min) does not fit before 12:30
    assert text.endswith("Not in this path (learners take them on their own, from the notebooks): 03 · L03.")


def test_a_lesson_without_overview_is_an_error_naming_the_lesson_and_the_cell(tmp_path):
    path = write_lesson(tmp_path, "00_start_here", "00 · Start here", BODY, KEY_POINTS)

    lesson, problems = guide.read_lesson(path)

    assert lesson is None
    assert len(problems) == 1
    assert "00_start_here.py" in problems[0] and "'overview'" in problems[0]


def test_every_problem_of_every_lesson_is_reported_at_once(tmp_path):
    write_lesson(tmp_path, "00_start_here", "00 · Start here", BODY, KEY_POINTS)  # no overview
    write_lesson(tmp_path, "01_naive_tests", "02 · Wrong number", OVERVIEW.replace("**Exercises:** 10 min", ""), BODY)

    with pytest.raises(guide.GuideError) as caught:
        guide.read_lessons(tmp_path)

    text = "\n".join(caught.value.problems)
    assert "00_start_here.py" in text and "'overview'" in text
    assert "01_naive_tests.py: the title says 02" in text
    assert "01_naive_tests.py: the 'overview' cell has no '**Exercises:** N min'" in text
    assert "01_naive_tests.py" in text and "'key-points'" in text


def test_overview_without_objectives_is_an_error(tmp_path):
    overview = OVERVIEW.split("# **You will be able to**")[0]
    path = write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests", overview, KEY_POINTS)

    _, problems = guide.read_lesson(path)

    assert problems == [f"{path}: the 'overview' cell has no objectives ('**You will be able to**' then a bullet list)"]


def test_schedule_has_a_running_total(tmp_path, settings):
    write_lesson(tmp_path, "00_start_here", "00 · Start here", OVERVIEW.replace("20 min", "15 min"), KEY_POINTS)
    write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests", OVERVIEW, KEY_POINTS)
    lessons = guide.read_lessons(tmp_path)

    table = guide.schedule_table(lessons, settings).splitlines()

    assert "| 15 min | 10 min | 25 min | 0:25 |" in table[2]
    assert "| 20 min | 10 min | 30 min | 0:55 |" in table[3]
    assert "**35 min** | **20 min** | **55 min** | **0:55**" in table[4]


def test_links(settings):
    assert settings.binder_url("03_rollback_fixtures") == (
        "https://mybinder.org/v2/gh/acme/db-course/main?urlpath=lab/tree/notebooks/03_rollback_fixtures.ipynb")
    url = urlsplit(settings.nbgitpuller_url("https://hub.example.org"))
    assert (url.scheme, url.netloc, url.path) == ("https", "hub.example.org", "/hub/user-redirect/git-pull")
    assert "/" not in url.query.split("&urlpath=")[1]  # every value URL-encoded
    assert parse_qs(url.query) == {"repo": ["https://github.com/acme/db-course"], "branch": ["main"],
                                   "urlpath": ["lab/tree/db-course/notebooks/00_start_here.ipynb"]}


def test_the_real_template_renders_and_is_deterministic(tmp_path, settings):
    write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests and why they flake", OVERVIEW, BODY, KEY_POINTS)
    lessons = guide.read_lessons(tmp_path)
    template = guide.TEMPLATE.read_text(encoding="utf-8")
    note = "# Saving your work\n\nDownload the notebook.\n"

    first = guide.render(lessons, settings, template, note)

    assert first == guide.render(lessons, settings, template, note)
    assert "{{" not in first
    assert "### 01 · Naive tests and why they flake" in first
    assert "- **01.1** What does the second run of the test get? → **b**" in first
    assert "Download the notebook." in first and "# Saving your work" not in first
    assert "Not published yet" not in first  # a real repository is configured


def test_unknown_template_placeholder_is_an_error(tmp_path, settings):
    write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests", OVERVIEW, KEY_POINTS)

    with pytest.raises(guide.GuideError, match="unknown placeholder.*schedual"):
        guide.render(guide.read_lessons(tmp_path), settings, "{{schedual}}", "")


def test_stale_binder_links_in_the_readme_are_found(tmp_path, settings):
    write_lesson(tmp_path, "00_start_here", "00 · Start here", OVERVIEW, KEY_POINTS)
    lessons = guide.read_lessons(tmp_path)
    readme = f"[![b](https://mybinder.org/badge_logo.svg)]({settings.binder_url()})\n" \
             "[old](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/00_start_here.ipynb)\n"

    problems = guide.readme_problems(readme, lessons, settings)

    assert problems == ["README.md: Binder link https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/"
                        "notebooks/00_start_here.ipynb is not current (see: python -m course guide --links)"]


def test_deep_dives_are_listed_per_lesson_with_core_and_deep_minutes(tmp_path, settings):
    deep = '\n# %% [markdown]\n# ## What the driver sends (deep dive)\n# ' + " ".join(["word"] * 300) + "\n"
    back = "\n# %% [markdown]\n# ## Back to the core\n# Short.\n"
    path = write_lesson(tmp_path, "01_naive_tests", "01 · Naive tests", OVERVIEW, BODY, deep, back, KEY_POINTS)

    lesson, problems = guide.read_lesson(path)
    section = guide.lesson_section(lesson, settings)

    assert problems == []
    assert lesson.deep_dives == ["What the driver sends (deep dive)"]
    assert lesson.deep_minutes == pytest.approx(2, abs=0.2)  # 300 words at 150 a minute, and a heading
    assert "skip *What the driver sends (deep dive)* in a short workshop" in section
