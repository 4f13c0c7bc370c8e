"""Workshop run sheets: generated from course/workshop.toml and the lessons, current, one page each,
following the arc from the flaky test (01) to the capstone (12), and never naming a section that
does not exist."""

import re
from pathlib import Path

import pytest

from course import guide, workshop

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lessons():
    return workshop.read_all()


def test_run_sheets_are_current(lessons):
    for path, text in workshop.build(lessons=lessons).items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is out of date: run .venv/bin/python -m course workshop"


def test_every_section_a_cut_names_exists(lessons):
    assert workshop.problems(workshop.load_cuts(), lessons) == []


def test_a_cut_naming_a_missing_section_or_lesson_is_refused(lessons):
    """Negative control: a renamed heading breaks the build, naming the lesson and its real sections."""
    cuts = workshop.load_cuts()
    cuts["one-day"]["lesson"][1] = {**cuts["one-day"]["lesson"][1], "live": ["4. Every order, made random"]}
    cuts["half-day"]["lesson"].append({"number": "99", "live": ["Anything"], "stuck": "-"})

    with pytest.raises(workshop.WorkshopError) as caught:
        workshop.build(cuts, lessons)

    found = "\n".join(caught.value.problems)
    assert "lesson 01: no section '## 4. Every order, made random' in lessons/01_naive_tests.py" in found
    assert "4. Every order, made deterministic" in found  # the sections it does have
    assert "[half-day]: no lesson 99" in found


def test_a_cut_that_overruns_its_day_is_refused(lessons):
    cuts = workshop.load_cuts()
    cuts["half-day"]["length"] = 60

    with pytest.raises(workshop.WorkshopError, match="run fewer sections live"):
        workshop.build(cuts, lessons)


@pytest.mark.parametrize("name", ["one-day", "half-day"])
def test_a_cut_follows_the_arc_from_the_flaky_test_to_the_capstone(name):
    numbers = [entry["number"] for entry in workshop.load_cuts()[name]["lesson"]]

    assert numbers == sorted(numbers)
    assert numbers[0] == "00" and "01" in numbers and numbers[-1] == "16"
    assert {"05", "07", "09", "12", "13"} <= set(numbers)  # isolation, savepoints, retries, mocking, jobs


def test_the_one_day_cut_reaches_every_core_lesson_and_the_day_is_about_six_hours():
    cut = workshop.load_cuts()["one-day"]
    numbers = {entry["number"] for entry in cut["lesson"]}

    assert {"01", "02", "03", "04", "05", "06", "07", "09", "11", "12", "13", "16"} <= numbers
    assert 330 <= cut["length"] <= 390


@pytest.mark.parametrize("name", ["one-day", "half-day"])
def test_a_run_sheet_fits_on_one_page_and_has_every_part(name):
    text = (ROOT / "workshop" / f"{name}.md").read_text(encoding="utf-8")

    for heading in ("## Timetable", "## What to run live", "## Where learners get stuck", "## When the database will not start"):
        assert heading in text
    assert len(text.split()) <= 1300, "a run sheet is one page: cut prose, not timings"
    times = re.findall(r"^\| (\d\d:\d\d) \|", text, re.M)
    assert times == sorted(times) and times[-1] <= "15:00"


def test_the_guide_shows_the_same_one_day_cut_as_the_run_sheet():
    sheet = (ROOT / "workshop" / "one-day.md").read_text(encoding="utf-8")
    table = sheet.split("## Timetable\n\n", 1)[1].split("\n\n", 1)[0]

    assert table in guide.GUIDE.read_text(encoding="utf-8")
    assert "workshop/one-day.md" in guide.GUIDE.read_text(encoding="utf-8")
