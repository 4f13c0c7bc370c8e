"""course/figures.py: named figures from a copy of the benchmark results, and the markdown markers.

Tests run on a fixture copy (tmp_path), so a re-run of the benchmark that changes the numbers, or
the file's shape a little, does not break them; `python -m course figures --check` (run-tests.sh)
holds the committed markdown to the committed results.
"""

import copy
import json

import pytest

from course import figures

RESULTS = {
    "elapsed_s": 765.2,
    "config": {"tests_per_strategy": 300, "repeats": 2},
    "summary": {
        "postgresql": {
            "strategies": {
                "none": {"label": "no isolation", "test_phase_s": [14.4, 16.1], "median_test_phase_s": 15.25,
                         "per_test_ms_median": 48.9},
                "rollback": {"label": "rollback", "test_phase_s": [13.9, 14.0], "median_test_phase_s": 13.95,
                             "tests_per_s": 21.5, "per_test_ms_median": 43.6, "phase_ms_median": {"teardown": 2.6}},
                "truncate": {"label": "TRUNCATE", "test_phase_s": [26.24, 28.65], "median_test_phase_s": 27.44,
                             "x_rollback": 1.9704, "per_test_ms_median": 89.1, "phase_ms_median": {"teardown": 33.8}},
            },
            "xdist": {"speedup_test_phase": 1.8444, "speedup_wall": 1.327},
        },
    },
}


@pytest.fixture
def results(tmp_path):
    def write(data=RESULTS):
        path = tmp_path / "results.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return figures.load(path)
    return write


def test_short_forms_for_prose(results):
    f = results()

    assert f.text("postgresql.truncate.x_rollback") == "1.97 ×"
    assert f.text("postgresql.truncate.ms_per_test") == "89 ms"
    assert f.text("postgresql.rollback.teardown_ms") == "2.6 ms"
    assert f.text("postgresql.truncate.spread") == "26.2–28.6 s"
    assert f.text("postgresql.xdist.speedup") == "1.84 ×"
    assert f.text("run.minutes") == "13 min"


def test_a_ratio_missing_from_the_file_is_computed_from_the_medians(results):
    f = results()

    assert f.value("postgresql.none.x_rollback") == pytest.approx(15.25 / 13.95)
    assert f.text("postgresql.rollback.x_none") == f"{13.95 / 15.25:.2f} ×"
    assert f.value("postgresql.none.tests_per_s") == pytest.approx(300 / 15.25)


def test_a_missing_key_is_an_error_naming_the_key_not_a_zero(results):
    data = copy.deepcopy(RESULTS)
    del data["summary"]["postgresql"]["xdist"]
    f = results(data)

    with pytest.raises(figures.FigureError, match=r"no 'summary.postgresql.xdist' \(there: strategies\)"):
        f.text("postgresql.xdist.speedup")
    with pytest.raises(figures.FigureError, match="no 'summary.sqlite'"):
        f.text("sqlite.rollback.x_none")
    assert "postgresql.xdist.speedup" not in f.names()


def test_sentences_for_a_notebook_come_from_the_figures(results):
    lines = results().sentences("postgresql")

    assert "On PostgreSQL, TRUNCATE takes 1.97 × the time of rollback (89 ms per test, runs 26.2–28.6 s)." in lines
    assert lines[-1].startswith("On PostgreSQL, two xdist workers run the rollback suite 1.84 ×")


def test_markers_that_disagree_are_named_by_file_and_line_and_rewritten(results):
    text = ("Intro.\n"
            "TRUNCATE costs <!-- fig:postgresql.truncate.x_rollback -->2-3 times<!-- /fig --> rollback,\n"
            "xdist <!-- fig:postgresql.xdist.speedup -->1.84 ×<!-- /fig --> and <!-- fig:postgresql.nope.x_none -->?<!-- /fig -->\n")

    fixed, problems = figures.check_text(text, results(), "README.md")

    assert problems[0] == ("README.md:2: fig:postgresql.truncate.x_rollback says '2-3 times', "
                           f"{results().source} gives '1.97 ×'")
    assert problems[1].startswith("README.md:3: fig:postgresql.nope.x_none: ") and "no 'summary.postgresql.strategies.nope'" in problems[1]
    assert len(problems) == 2
    assert "<!-- fig:postgresql.truncate.x_rollback -->1.97 ×<!-- /fig -->" in fixed
    assert figures.check_text(fixed, results(), "README.md")[1] == [problems[1]]  # only the unknown name is left


def test_markers_in_code_spans_and_fences_are_examples_left_alone(results):
    text = ("Write `<!-- fig:postgresql.truncate.x_rollback -->2 ×<!-- /fig -->` like this:\n"
            "```\n<!-- fig:postgresql.truncate.x_rollback -->2 ×<!-- /fig -->\n```\n"
            "# ```markdown\n# <!-- fig:postgresql.truncate.x_rollback -->2 ×<!-- /fig -->\n# ```\n")

    assert figures.check_text(text, results(), "CONTRIBUTING.md") == (text, [])


def test_the_committed_results_give_every_figure_they_name():
    f = figures.load()

    for name in f.names():
        assert f.text(name)
