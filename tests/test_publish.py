"""course.publish: one command points every launch link at the published repository.

Runs on copies of README.md and binder/course.toml in tmp_path; the real lessons give the table.
They are read once for the whole module (reading all lessons is most of the cost of a test here):
``publish`` then gets that list whenever it asks ``guide.read_lessons()`` for the lessons.
"""

import shutil

import pytest

from course import guide, publish


@pytest.fixture(scope="module")
def lessons():
    return guide.read_lessons()


@pytest.fixture
def copies(tmp_path, monkeypatch, lessons):
    readme, settings = tmp_path / "README.md", tmp_path / "course.toml"
    shutil.copy(guide.README, readme)
    shutil.copy(guide.SETTINGS, settings)
    settings.write_text(settings.read_text().replace(guide.load_settings().repository, guide.PLACEHOLDER_REPOSITORY))
    for module in (guide, publish):
        monkeypatch.setattr(module, "README", readme)
        monkeypatch.setattr(module, "SETTINGS", settings)
    monkeypatch.setattr(guide, "main", lambda args: 0)  # the guide has its own tests
    zero = []
    for path in publish.lesson_zero_files():  # notebook 00's website line: copies too
        zero.append(tmp_path / path.parent.name / path.name)
        zero[-1].parent.mkdir(exist_ok=True)
        shutil.copy(path, zero[-1])
    monkeypatch.setattr(publish, "lesson_zero_files", lambda: zero)
    read = guide.read_lessons
    monkeypatch.setattr(guide, "read_lessons", lambda *args, **kwargs: list(lessons) if not (args or kwargs) else read(*args, **kwargs))
    return readme, settings


def test_unpublished_readme_says_so_and_shows_no_dead_badge(copies):
    readme, _ = copies
    assert publish.main([]) == 0
    text = readme.read_text()
    assert "**Not published yet:**" in text
    assert "mybinder.org/v2/gh" not in text
    assert publish.main(["--check"]) == 0


def test_publishing_names_the_repository_everywhere_at_once(copies, lessons):
    readme, settings = copies
    assert publish.main(["my-org/fastapi-db-testing", "--branch", "trunk"]) == 0
    text = readme.read_text()
    assert 'repository = "my-org/fastapi-db-testing"' in settings.read_text()
    assert "Not published yet" not in text
    for lesson in lessons:
        assert f"/v2/gh/my-org/fastapi-db-testing/trunk?urlpath=lab/tree/notebooks/{lesson.stem}.ipynb" in text
    assert publish.main(["--check"]) == 0


def test_publishing_sets_the_website_address_in_the_readme_and_notebook_00(copies):
    readme, _ = copies
    site = "https://my-org.github.io/fastapi-db-testing/"
    assert site not in readme.read_text()
    assert publish.main(["my-org/fastapi-db-testing"]) == 0
    first_screen = "\n".join(readme.read_text().splitlines()[:20])
    assert f"**The course as a website:** <{site}>" in first_screen
    for path in publish.lesson_zero_files():  # the lesson source and both notebooks built from it
        text = path.read_text(encoding="utf-8")
        assert site in text and "not published yet" not in text, path
    assert guide.load_settings(publish.SETTINGS).site_url == site
    assert publish.main(["--check"]) == 0


def test_check_fails_when_notebook_00_names_another_website(copies, capsys):
    publish.main(["my-org/fastapi-db-testing"])
    solution = next(p for p in publish.lesson_zero_files() if p.parent.name == "solutions")
    solution.write_text(solution.read_text().replace("my-org.github.io", "old-org.github.io"))
    assert publish.main(["--check"]) == 1
    assert "solutions/00_start_here.ipynb: its website line" in capsys.readouterr().err


def test_check_fails_when_the_readme_table_is_stale(copies, capsys):
    readme, _ = copies
    publish.main([])
    readme.write_text(readme.read_text().replace("| 01 |", "| 1 |"))
    assert publish.main(["--check"]) == 1
    assert "Regenerate with: .venv/bin/python -m course publish" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["OWNER/REPO", "no-slash", "a/b/c", "a b/c"])
def test_a_malformed_repository_is_refused_with_the_expected_form(copies, name, capsys):
    assert publish.main([name]) == 1
    assert "name the repository as OWNER/NAME" in capsys.readouterr().err


def test_every_lesson_has_a_readme_summary(lessons):
    assert {lesson.stem for lesson in lessons} <= set(publish.SUMMARIES)
