"""One verdict per published claim (course/claims.py, course/claims.toml)."""

import copy
import json
import textwrap

import pytest

from course import claims

REGISTRY = '''
[fast]
claim = "Rollback runs about 500 tests per second."
source = "an article"
verdict = "not reproduced here"
mentions = ["500 tests"]
evidence = "the claim check's cell"
'''


def make_course(tmp_path, lessons: dict[str, str], registry: str = REGISTRY, readme: str = "") -> None:
    (tmp_path / "lessons").mkdir()
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "claims.toml").write_text(textwrap.dedent(registry))
    for name, body in lessons.items():
        (tmp_path / "lessons" / f"{name}.py").write_text("# %% [markdown]\n" + textwrap.dedent(body))
    (tmp_path / "README.md").write_text(readme)


HOME = "# ### Claim check: 500 tests per second\n#\n# **Verdict:** <!-- verdict:fast -->not reproduced here<!-- /verdict -->. Ours are slower.\n"


def test_the_course_judges_every_claim_once_as_registered():
    assert claims.problems() == []


def test_a_claim_judged_once_and_shown_elsewhere_passes(tmp_path):
    shown = "# Lesson 10 judges the 500 tests a second claim: <!-- verdict:fast -->not reproduced here<!-- /verdict -->.\n"
    make_course(tmp_path, {"10_speed": HOME, "11_slow": shown})
    assert claims.problems(tmp_path, results={}) == []


def test_two_lessons_judging_the_same_claim_fail_even_when_they_agree(tmp_path):
    make_course(tmp_path, {"10_speed": HOME, "11_slow": HOME})
    problems = claims.problems(tmp_path, results={})
    assert any(p.startswith("fast is judged in 2 places (lessons/10_speed.py:4, lessons/11_slow.py:4)") for p in problems)


def test_two_lessons_giving_different_verdicts_fail(tmp_path):
    other = "# **Verdict:** <!-- verdict:fast -->the order of magnitude holds<!-- /verdict -->.\n"
    make_course(tmp_path, {"10_speed": HOME, "11_slow": other})
    problems = "\n".join(claims.problems(tmp_path, results={}))
    assert "lessons/11_slow.py:2: verdict:fast says 'the order of magnitude holds', course/claims.toml says 'not reproduced here'" in problems
    assert "fast is judged in 2 places" in problems


def test_an_unregistered_verdict_fails(tmp_path):
    make_course(tmp_path, {"10_speed": HOME, "11_slow": "# **Verdict:** the order of magnitude holds.\n"})
    [problem] = claims.problems(tmp_path, results={})
    assert problem.startswith("lessons/11_slow.py:2: a verdict without a claim id")


def test_a_mention_outside_the_home_without_the_verdict_fails(tmp_path):
    make_course(tmp_path, {"10_speed": HOME}, readme="Rollback reaches about 500 tests a second here.\n")
    [problem] = claims.problems(tmp_path, results={})
    assert problem.startswith("README.md:1: mentions the claim fast (judged in lessons/10_speed.py)")


def test_the_verdict_shown_elsewhere_must_name_the_lesson_that_judges_it(tmp_path):
    make_course(tmp_path, {"10_speed": HOME}, readme="The 500 tests claim: <!-- verdict:fast -->not reproduced here<!-- /verdict -->.\n")
    [problem] = claims.problems(tmp_path, results={})
    assert "without naming the lesson that judges it (lesson 10)" in problem


def test_a_registered_claim_that_no_lesson_judges_fails(tmp_path):
    make_course(tmp_path, {"10_speed": "# Nothing here.\n"})
    assert claims.problems(tmp_path, results={}) == [
        "course/claims.toml: fast is judged nowhere: its claim check's '**Verdict:**' paragraph must carry its marker"]


def results_with(sqlite_rate: float, **xdist) -> dict:
    stored = json.loads(claims.RESULTS.read_text())
    results = copy.deepcopy(stored)
    results["summary"]["sqlite"]["strategies"]["rollback"]["tests_per_s"] = sqlite_rate
    results["summary"]["sqlite"]["xdist"].update(xdist)
    return results


def test_the_rate_verdict_is_computed_from_every_rate_the_benchmark_records():
    assert claims.judge_rate_500(results_with(60.0)) == "not reproduced here"
    assert claims.judge_rate_500(results_with(450.0)) == "holds here"
    # a mode a newer benchmark adds (any key with tests_per_s) feeds the verdict too
    newer = results_with(60.0, n4_tests_per_s=420.0)
    assert ("SQLite, xdist n4", 420.0) in claims.rollback_rates(newer)
    assert claims.judge_rate_500(newer) == "holds here"


def test_a_benchmark_that_changes_a_verdict_fails_the_registry(tmp_path):
    registry = REGISTRY.replace('mentions = ["500 tests"]', 'mentions = ["500 tests"]\njudge = "rate_500"')
    make_course(tmp_path, {"10_speed": HOME}, registry=registry)
    assert claims.problems(tmp_path, results=results_with(60.0)) == []
    [problem] = claims.problems(tmp_path, results=results_with(450.0))
    assert "the stored benchmark now gives 'holds here', the registry says 'not reproduced here'" in problem


@pytest.mark.parametrize(("ratios", "verdict"), [([1.5, 2.5], "partly right"), ([1.2, 3.7], "wrong"), ([2.2, 2.96], "right")])
def test_the_ratio_verdict(ratios, verdict):
    results = {"summary": {"sqlite": {"strategies": {
        "rollback": {"median_test_phase_s": 1.0},
        **{s: {"median_test_phase_s": r} for s, r in zip(("delete", "dropcreate"), ratios)}}}}}
    assert claims.judge_ratio_2_to_3(results) == verdict
