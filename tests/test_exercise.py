"""course.exercise: exercise checks tell right from wrong, and a blank exercise never fails a cell.

``check_test`` is driven with a fake ``ipytest.run`` whose exit code depends on which mutant is
installed, so each verdict is tested without a kernel; ``replace_route`` is tested on the real
app through the suite's isolated client. ``python -m course learner-path`` proves the checks
of the real lessons in real kernels (run-tests.sh).
"""

import contextlib

import pytest

from app.main import app as shelter_app
from course import exercise
from course.exercise import Condition, ExerciseIncomplete, Mutant, attempted, check_test, replace_route, report


def placeholder_test(client):
    ...  # YOUR CODE HERE


def answered_test(client):
    assert client is not None


def test_a_placeholder_is_not_attempted():
    assert not attempted(placeholder_test)
    assert not attempted("def f():\n    ...\n")
    assert not attempted("x = 1\n...  # YOUR CODE HERE\n")


def test_an_answer_is_attempted():
    assert attempted(answered_test)
    assert attempted("def f():\n    return 1\n")


def test_report_without_problems_says_well_done(capsys):
    report([], "0 rows left after three shuffled runs.")
    assert capsys.readouterr().out == "Well done: 0 rows left after three shuffled runs.\n"


def test_report_lists_every_problem():
    with pytest.raises(ExerciseIncomplete) as caught:
        report(["rows are left in adoptions", "the animal is not available"], "unused")
    assert str(caught.value) == "not yet:\n  - rows are left in adoptions\n  - the animal is not available"
    assert caught.value._render_traceback_() == [f"ExerciseIncomplete: {caught.value}"]  # no 255-line traceback


@pytest.fixture
def pytest_runs(monkeypatch):
    """A fake ipytest.run: exit code 0 unless the installed mutant (or the real app) says otherwise."""
    state = {"installed": None, "codes": {}, "calls": [], "output": ""}

    def fake_run(*args, raise_on_error, display_columns):
        state["calls"].append((state["installed"], args))
        code = state["codes"].get(state["installed"], 0)
        print(state["output"] if code else "1 passed")
        return code

    monkeypatch.setattr("ipytest.run", fake_run)
    monkeypatch.setattr("gc.freeze", lambda: None)
    return state


def mutant(name, state):
    @contextlib.contextmanager
    def install():
        state["installed"] = name
        try:
            yield
        finally:
            state["installed"] = None

    return Mutant(f"the route {name}", install)


def test_placeholder_prints_not_attempted_and_runs_nothing(pytest_runs, capsys):
    check_test("placeholder_test", mutants=[mutant("answers 200", pytest_runs)], namespace=globals())
    assert capsys.readouterr().out.startswith("Not attempted yet: `placeholder_test` still holds the placeholder.")
    assert pytest_runs["calls"] == []


def test_a_test_that_catches_every_mutant_is_well_done(pytest_runs, capsys):
    pytest_runs["codes"] = {"answers 200": 1, "skips the lower-casing": 1}
    mutants = [mutant("answers 200", pytest_runs), mutant("skips the lower-casing", pytest_runs)]
    check_test("answered_test", mutants=mutants, namespace=globals())
    out = capsys.readouterr().out
    assert "Well done: `answered_test` passes against the real app and fails against each of 2 broken versions" in out
    assert "  - the route skips the lower-casing" in out
    assert [installed for installed, _ in pytest_runs["calls"]] == [None, "answers 200", "skips the lower-casing"]
    assert pytest_runs["installed"] is None  # every mutant was uninstalled


def test_a_mutant_that_slips_through_is_named(pytest_runs):
    pytest_runs["codes"] = {"answers 200": 1}
    mutants = [mutant("answers 200", pytest_runs), mutant("skips the lower-casing", pytest_runs)]
    with pytest.raises(ExerciseIncomplete) as caught:
        check_test("answered_test", mutants=mutants, hint="compare the e-mail", namespace=globals())
    message = str(caught.value)
    assert "your test still passes when the route skips the lower-casing" in message
    assert "answers 200" not in message
    assert "Hint: compare the e-mail" in message


def condition(name, state, advice=""):
    return Condition(f"ids {name}", mutant(name, state).install, advice=advice)


def test_a_condition_the_test_survives_is_named_in_the_verdict(pytest_runs, capsys):
    pytest_runs["codes"] = {"answers 200": 1}
    check_test("answered_test", mutants=[mutant("answers 200", pytest_runs)],
               conditions=[condition("start at 1001", pytest_runs)], namespace=globals())
    assert "  and it still passes when ids start at 1001" in capsys.readouterr().out
    assert [installed for installed, _ in pytest_runs["calls"]] == [None, "start at 1001", "answers 200"]


def test_a_test_that_fails_under_a_condition_is_told_what_to_change(pytest_runs):
    pytest_runs["codes"] = {"answers 200": 1, "start at 1001": 1}
    pytest_runs["output"] = "FAILED t_0123456789abcdef0123456789abcdef.py::answered_test - assert 404 == 200"
    with pytest.raises(ExerciseIncomplete) as caught:
        check_test("answered_test", mutants=[mutant("answers 200", pytest_runs)],
                   conditions=[condition("start at 1001", pytest_runs, advice="use the id the POST returned")],
                   namespace=globals())
    message = str(caught.value)
    assert message.startswith("your test passes against the real app but fails when ids start at 1001:")
    assert "FAILED answered_test - assert 404 == 200" in message and message.endswith("use the id the POST returned")
    assert pytest_runs["installed"] is None  # the condition was undone
    assert len(pytest_runs["calls"]) == 2  # no mutant is tried against a test that fails under a condition


def test_a_test_that_fails_against_the_real_app_shows_the_assertion(pytest_runs):
    pytest_runs["codes"] = {None: 1}
    pytest_runs["output"] = "FAILED t_0123456789abcdef0123456789abcdef.py::answered_test - assert 404 == 200"
    with pytest.raises(ExerciseIncomplete) as caught:
        check_test("answered_test", mutants=[mutant("answers 200", pytest_runs)], namespace=globals())
    assert "your test fails against the real app, which behaves correctly here" in str(caught.value)
    assert "FAILED answered_test - assert 404 == 200" in str(caught.value)
    assert len(pytest_runs["calls"]) == 1  # no mutant is tried against a test that is already wrong


def test_runs_the_named_tests_with_one_line_reports(pytest_runs):
    pytest_runs["codes"] = {"answers 200": 1}
    check_test("answered_test", mutants=[mutant("answers 200", pytest_runs)], args=["-x"], namespace=globals())
    assert pytest_runs["calls"][0][1] == ("--tb=line", "-x", "{MODULE}::answered_test")


def test_no_test_collected_is_not_a_pass(pytest_runs):
    pytest_runs["codes"] = {None: 5}
    with pytest.raises(ExerciseIncomplete, match="pytest found no test"):
        check_test("answered_test", mutants=[mutant("answers 200", pytest_runs)], namespace=globals())


def test_an_undefined_test_asks_to_run_the_exercise_cell(pytest_runs):
    with pytest.raises(ExerciseIncomplete, match="no test named test_nowhere in this notebook"):
        check_test("test_nowhere", mutants=[mutant("answers 200", pytest_runs)], namespace=globals())


def test_a_check_without_mutants_is_refused(pytest_runs):
    with pytest.raises(ValueError, match="at least one mutant"):
        check_test("answered_test", mutants=[], namespace=globals())


async def always_found(animal_id: int):
    return {"id": animal_id, "name": "Ghost", "species": "cat", "status": "available"}


async def test_replace_route_serves_the_replacement_then_restores_the_route(client):
    assert (await client.get("/animals/999999")).status_code == 404
    with replace_route(shelter_app, "GET", "/animals/{animal_id}", always_found):
        replaced = await client.get("/animals/999999")
    assert (replaced.status_code, replaced.json()["name"]) == (200, "Ghost")
    assert (await client.get("/animals/999999")).status_code == 404


def test_replace_route_names_a_route_that_does_not_exist():
    with pytest.raises(LookupError, match="the app has no route DELETE /animals/{animal_id}"):
        with replace_route(shelter_app, "DELETE", "/animals/{animal_id}", always_found):
            pass


def test_the_placeholder_mark_is_what_the_build_writes():
    from course.build import SOLUTION_BLOCK

    learner = SOLUTION_BLOCK.sub("...  # YOUR CODE HERE", "def t():\n    # BEGIN SOLUTION\n    assert 1\n    # END SOLUTION\n")
    assert exercise.PLACEHOLDER_MARK in learner and not attempted(learner)


def test_after_run_sees_every_run_and_fails_the_exercise_with_its_sentence(pytest_runs):
    """The hook that checks *how* a test did it (an override left in place, the API used to seed)."""
    pytest_runs["codes"] = {"answers 200": 1}
    seen = []

    def after_run(when):
        seen.append(when)
        return "your test left an override in place" if when.startswith("against a broken app") else None

    with pytest.raises(ExerciseIncomplete, match="^your test left an override in place$"):
        check_test("answered_test", mutants=[mutant("answers 200", pytest_runs)], namespace=globals(), after_run=after_run)
    assert seen == ["against the real app", "against a broken app where the route answers 200"]
    assert pytest_runs["installed"] is None  # the mutant was uninstalled before the verdict


def test_after_run_that_finds_nothing_keeps_the_verdict(pytest_runs, capsys):
    pytest_runs["codes"] = {"answers 200": 1}
    check_test("answered_test", mutants=[mutant("answers 200", pytest_runs)], namespace=globals(), after_run=lambda when: None)
    assert "Well done" in capsys.readouterr().out


async def test_record_calls_records_each_request_and_keeps_the_route_working(client):
    from course.exercise import record_calls

    with record_calls(shelter_app, "POST", "/animals") as calls:
        created = await client.post("/animals", json={"name": "Recorded", "species": "cat"})
    after = await client.post("/animals", json={"name": "Unrecorded", "species": "cat"})

    real = await client.post("/animals", json={"name": "Real", "species": "cat"})
    assert (created.status_code, created.json()["name"]) == (201, "Recorded")
    assert sorted(created.json()) == sorted(real.json())  # the route's own response model, not the ORM object's
    assert [call["body"].name for call in calls] == ["Recorded"]
    assert after.status_code == 201 and len(calls) == 1  # the real route is back


def test_every_exercise_has_its_technique_written_down_and_four_wrong_answers():
    """course/exercises.toml names the technique of every exercise the lessons have; each has >= 4 wrong answers."""
    import re
    import tomllib
    from pathlib import Path

    from course.learner_path import MIN_WRONG

    root = Path(__file__).resolve().parent.parent
    entries = tomllib.loads((root / "course" / "exercises.toml").read_text(encoding="utf-8"))["exercise"]
    written = {(e["lesson"], e["name"]) for e in entries}
    problems = [f"{lesson}/{name}: an empty technique" for e in entries for lesson, name in [(e["lesson"], e["name"])]
                if len(e["technique"].split()) < 8]
    for path in sorted((root / "lessons").glob("[0-9][0-9]_*.py")):
        number = path.name[:2]
        answers = root / "tests" / "exercise_answers" / f"{number}.toml"
        wrong = tomllib.loads(answers.read_text(encoding="utf-8"))["wrong"] if answers.exists() else []
        names = {w["exercise"] for w in wrong}
        source = path.read_text(encoding="utf-8")
        if re.search(r"^# ### Exercise \d+:", source, re.M) and not names:
            problems.append(f"{path.name}: exercises without wrong answers")
        for name in names:
            if (number, name) not in written:
                problems.append(f"{path.name}: exercise {name} has no technique in course/exercises.toml")
            if (n := sum(w["exercise"] == name for w in wrong)) < MIN_WRONG:
                problems.append(f"{path.name}: exercise {name} has {n} wrong answers, at least {MIN_WRONG} wanted")
        for lesson, name in written:
            if lesson == number and name not in source:
                problems.append(f"course/exercises.toml: {name} is not in {path.name}")

    assert problems == []
