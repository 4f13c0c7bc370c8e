"""Lesson references resolve to the lesson that teaches their topic (course/refs.py)."""

import textwrap

import pytest

from course import quiz, refs


def test_every_reference_in_the_course_resolves():
    assert refs.run() == []


def make_course(tmp_path, lessons: dict[str, str], readme: str = "") -> None:
    (tmp_path / "lessons").mkdir()
    for name, body in lessons.items():
        title = name[3:].replace("_", " ").capitalize()
        text = f"# %% [markdown]\n# # {name[:2]} · {title}\n\n# %% [markdown]\n" + textwrap.dedent(body)
        (tmp_path / "lessons" / f"{name}.py").write_text(text)
    (tmp_path / "README.md").write_text(readme)


TWO_LESSONS = {
    "01_loops": "# ## Event loops\n# <!-- topic:loops -->\n",
    "02_fixtures": "# Why one loop (<!-- ref:loops -->lesson 01<!-- /ref -->), see [<!-- ref:loops -->01](01_loops.ipynb)<!-- /ref -->.\n",
}


def test_a_correct_reference_passes(tmp_path):
    make_course(tmp_path, TWO_LESSONS)
    assert refs.run(root=tmp_path) == []


def test_a_reference_to_a_lesson_that_does_not_teach_the_topic_fails(tmp_path):
    lessons = dict(TWO_LESSONS, **{"02_fixtures": "# Why one loop (<!-- ref:loops -->lesson 02<!-- /ref -->).\n"})
    make_course(tmp_path, lessons)
    [problem] = refs.run(root=tmp_path)
    assert "lessons/02_fixtures.py:5: ref:loops says 'lesson 02'; the topic is taught in 'lesson 01'" in problem


def test_a_bare_lesson_number_fails_but_a_code_span_is_output(tmp_path):
    make_course(tmp_path, TWO_LESSONS, readme="See lesson 01 for loops; the setup prints `Lesson 01 on SQLite`.\n")
    [problem] = refs.run(root=tmp_path)
    assert problem.startswith("README.md:1: 'lesson 01' without a topic")


def test_a_bare_number_link_fails(tmp_path):
    make_course(tmp_path, TWO_LESSONS, readme="One loop ([01](01_loops.ipynb)).\n")
    [problem] = refs.run(root=tmp_path)
    assert "'[01](01_loops.ipynb' without a topic" in problem


def test_a_reference_in_a_code_comment_counts_too(tmp_path):
    make_course(tmp_path, dict(TWO_LESSONS, **{"03_code": "# Text.\n\n# %%\nx = 1  # as lesson 01 shows\n"}))
    [problem] = refs.run(root=tmp_path)
    assert "lessons/03_code.py" in problem and "'lesson 01' without a topic" in problem


def test_unknown_and_twice_declared_topics_fail(tmp_path):
    lessons = {"01_loops": "# <!-- topic:loops -->\n", "02_again": "# <!-- topic:loops -->\n# (<!-- ref:nope -->lesson 01<!-- /ref -->)\n"}
    make_course(tmp_path, lessons)
    problems = "\n".join(refs.run(root=tmp_path))
    assert "topic:loops is declared again" in problems and "ref:nope: no lesson declares this topic" in problems


def test_a_title_link_with_a_wrong_title_fails(tmp_path):
    make_course(tmp_path, TWO_LESSONS, readme="**Next:** [01 · Scheduled jobs](01_loops.ipynb)\n")
    [problem] = refs.run(root=tmp_path)
    assert "is not a lesson's number and title ([01 · Loops](01_loops.ipynb))" in problem


def test_moving_a_topic_to_another_lesson_rewrites_every_reference(tmp_path):
    """Splitting a lesson: the section (and its topic) moves; --write renumbers numbers and links."""
    lessons = {
        "01_loops": "# ## Other things\n",
        "02_fixtures": "# (<!-- ref:loops,more -->lessons 01 and 02<!-- /ref -->), [<!-- ref:loops -->01](01_loops.ipynb)<!-- /ref -->\n",
        "03_new": "# ## Event loops\n# <!-- topic:loops -->\n# <!-- topic:more -->\n",
    }
    make_course(tmp_path, lessons)
    assert len(refs.run(root=tmp_path)) == 2  # both references now point at the wrong lesson
    assert refs.run(write=True, root=tmp_path) == []
    text = (tmp_path / "lessons" / "02_fixtures.py").read_text()
    assert "<!-- ref:loops,more -->lessons 03 and 03<!-- /ref -->" in text
    assert "[<!-- ref:loops -->03](03_new.ipynb)<!-- /ref -->" in text
    assert refs.run(root=tmp_path) == []


def test_a_reference_must_name_one_topic_per_number(tmp_path):
    make_course(tmp_path, dict(TWO_LESSONS, **{"02_fixtures": "# (<!-- ref:loops -->lessons 01 and 02<!-- /ref -->)\n"}))
    [problem] = refs.run(root=tmp_path)
    assert "names 1 topic(s) but its text 'lessons 01 and 02' has 2 lesson number(s)" in problem


@pytest.mark.parametrize("quiz_id", ["00.4", "11.4"])
def test_quiz_feedback_prints_without_markers(quiz_id):
    feedback = " ".join(quiz.get(quiz_id).feedback.values())
    assert "<!--" not in feedback and "esson" in feedback


def test_a_reference_broken_over_two_lines_fails():
    from course import refs

    text = "# the speed figures are lesson\n# 10's subject, as lesson 15 says\n"
    _, problems = refs.check_text(text, "x.py", {}, {})
    assert any("x.py:1:" in p and "on one line" in p for p in problems), problems
    _, problems = refs.check_text("# the speed figures are the subject of\n# lesson 14 (ok: one line)\n", "x.py", {}, {})
    assert not any("on one line" in p for p in problems), problems  # negative control: one line, found by the line scan
