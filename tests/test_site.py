"""The course website's pieces (course/site.py), without a browser and without building the site.

scripts/site-check (CI) builds the whole site and opens every page in Chromium; these tests prove the
parts it relies on, each with a negative control: the link checker finds a missing page, a missing
anchor and a link out of the site; the resource check finds every way a page can load something from
elsewhere; a lesson page never holds a quiz's right letter while the solution notebook does; exercises
show the learner's version with the solution folded; Mermaid's script is refused when it is not the
package the registry published.
"""

from __future__ import annotations

import functools
import io
import json
import re
import tarfile

import pytest

from course import guide, site
from course.build import SOLUTION_BLOCK

PLACEHOLDER = guide.Settings(repository="OWNER/REPO", branch="main", binderhub="https://mybinder.org")
PUBLISHED = guide.Settings(repository="my-org/fastapi-db-testing", branch="main", binderhub="https://mybinder.org")


def linker(settings=PLACEHOLDER) -> site.Linker:
    return site.Linker(settings, site.lesson_stems(), site.extra_pages())


def write_site(root, pages: dict[str, str]):
    for name, body in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<!doctype html><html><head></head><body>{body}</body></html>", encoding="utf-8")
    return root


# --- the link checker -----------------------------------------------------------------------------

def test_links_and_anchors_that_exist_pass(tmp_path):
    write_site(tmp_path, {
        "index.html": '<a href="a.html#here">a</a> <a href="#top">top</a> <h1 id="top">t</h1>'
                      '<a href="https://example.org/x.html#nowhere">out</a> <a href="sub/">sub</a>',
        "a.html": '<span id="here"></span><img src="_static/p.png">',
        "sub/index.html": '<a href="../index.html">home</a>',
    })
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "p.png").write_bytes(b"png")
    assert site.broken_links(tmp_path) == []


@pytest.mark.parametrize("body, expected", [
    ('<a href="missing.html">x</a>', "no such file"),
    ('<a href="a.html#nowhere">x</a>', "no element with id 'nowhere'"),
    ('<a href="#nowhere">x</a>', "no element with id 'nowhere'"),
    ('<a href="../outside.html">x</a>', "points outside the site"),
    ('<script src="_static/gone.js"></script>', "no such file"),
])
def test_the_link_checker_reports_each_broken_link(tmp_path, body, expected):
    write_site(tmp_path, {"index.html": body, "a.html": '<p id="here">a</p>'})
    problems = site.broken_links(tmp_path)
    assert len(problems) == 1 and expected in problems[0], problems


# --- nothing loaded from outside the site ---------------------------------------------------------------

def test_local_resources_and_plain_links_out_are_fine(tmp_path):
    write_site(tmp_path, {"index.html": (
        '<link rel="stylesheet" href="_static/a.css"><script src="_static/a.js"></script>'
        '<link rel="canonical" href="https://me.github.io/course/index.html">'
        '<a href="https://github.com/pytest-dev/pytest">pytest</a><img src="data:image/png;base64,AAAA">')})
    (tmp_path / "a.css").write_text("body { background: url(_static/bg.png); }")
    assert site.external_resources(tmp_path) == []


@pytest.mark.parametrize("html_body, css", [
    ('<script src="https://cdn.jsdelivr.net/npm/mermaid/dist/mermaid.min.js"></script>', ""),
    ('<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">', ""),
    ('<link rel="preload" as="font" href="https://fonts.gstatic.com/x.woff2">', ""),
    ('<img src="https://mybinder.org/badge_logo.svg">', ""),
    ('<img srcset="https://example.org/a.png 2x">', ""),
    ('<iframe src="https://www.youtube.com/embed/x"></iframe>', ""),
    ('<div style="background: url(https://example.org/bg.png)"></div>', ""),
    ('<style>@import "https://example.org/theme.css";</style>', ""),
    ("", "@font-face { src: url('https://fonts.gstatic.com/s/lato.woff2'); }"),
])
def test_every_way_of_loading_from_elsewhere_is_reported(tmp_path, html_body, css):
    write_site(tmp_path, {"index.html": html_body})
    if css:
        (tmp_path / "theme.css").write_text(css)
    problems = site.external_resources(tmp_path)
    assert len(problems) == 1, problems


def test_the_site_configuration_turns_off_what_would_load_from_a_cdn():
    config = site.sphinx_config(PLACEHOLDER)
    assert config["nb_ipywidgets_js"] == {}  # MyST-NB's default loads require.js from a CDN
    assert config["mathjax_path"] == "none"
    assert config["nb_execution_mode"] == "off"  # the stored outputs, never re-run
    assert "html_baseurl" not in config
    assert site.sphinx_config(PUBLISHED)["html_baseurl"] == "https://my-org.github.io/fastapi-db-testing/"


def test_external_images_in_repository_markdown_become_their_alt_text():
    text = "[![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/a/b/main)"
    assert linker().markdown(text, "") == "[Launch on Binder](https://mybinder.org/v2/gh/a/b/main)"


# --- links written for the repository ----------------------------------------------------------------

def test_repository_links_become_site_pages_with_their_anchors():
    rewrite = linker().markdown
    anchor = "Claim-check:-wrap-the-test's-session-(deep-dive)"
    assert rewrite(f"[05](solutions/05_rollback_fixtures.ipynb#{anchor}).", "") == \
        f"<a href=\"05_rollback_fixtures.html#{anchor.replace(chr(39), '&#x27;')}\">05</a>."
    assert rewrite("[next](07_savepoints.ipynb)", "solutions") == '<a href="07_savepoints.html">next</a>'
    assert rewrite("[helper](../tests/isolation.py)", "solutions") == '<a href="isolation.html">helper</a>'
    assert rewrite("[guide](INSTRUCTOR_GUIDE.md)", "") == '<a href="instructor-guide.html">guide</a>'
    assert rewrite("[errors](ERRORS.md#savepoints)", "") == '<a href="errors.html#savepoints">errors</a>'
    assert rewrite("[out](https://docs.pytest.org/en/stable/)", "") == "[out](https://docs.pytest.org/en/stable/)"


def test_a_repository_file_without_a_page_links_to_github_once_published_else_is_plain_text():
    text = "see [the app](app/main.py) and [bench](bench/)"
    assert linker(PLACEHOLDER).markdown(text, "") == "see the app and bench"
    assert linker(PUBLISHED).markdown(text, "") == (
        "see [the app](https://github.com/my-org/fastapi-db-testing/blob/main/app/main.py) and "
        "[bench](https://github.com/my-org/fastapi-db-testing/tree/main/bench)")


def test_links_inside_code_are_left_alone():
    text = "```python\nx = '[a](ERRORS.md)'\n```\nand `[b](ERRORS.md)`\n"
    assert linker().markdown(text, "") == text


def test_a_code_span_or_a_link_broken_across_lines_is_one_span_or_link():
    """A markdown cell is rewritten paragraph by paragraph, not line by line: a code span that starts on
    one line and ends on the next still hides what is in it, and the link after it is still a link."""
    rewrite = linker().markdown
    span = "A suite that enters it per test (`with\nTestClient(app)` in a [fixture](ERRORS.md#savepoints)) starts one.\n"
    assert rewrite(span, "") == ("A suite that enters it per test (`with\nTestClient(app)` in a "
                                 '<a href="errors.html#savepoints">fixture</a>) starts one.\n')
    hidden = "and `[b](ERRORS.md)\nstill code` here\n"
    assert rewrite(hidden, "") == hidden
    broken_label = "see [the error\nindex](ERRORS.md) and [next](INSTRUCTOR_GUIDE.md)\n"
    assert rewrite(broken_label, "") == ('see <a href="errors.html">the error\nindex</a> and '
                                         '<a href="instructor-guide.html">next</a>\n')


def test_a_backtick_never_closed_in_its_paragraph_hides_nothing_after_it():
    """Negative control: a span ends with its paragraph (a blank line or a fence), so a lone backtick does
    not turn the links of the next paragraphs into code."""
    rewrite = linker().markdown
    assert rewrite("a lone ` and [errors](ERRORS.md)\n\n[guide](INSTRUCTOR_GUIDE.md)\n", "") == (
        'a lone ` and <a href="errors.html">errors</a>\n\n<a href="instructor-guide.html">guide</a>\n')
    assert rewrite("`open\n\n[guide](INSTRUCTOR_GUIDE.md) `x`\n", "") == (
        '`open\n\n<a href="instructor-guide.html">guide</a> `x`\n')
    assert rewrite("a [label\n\nover a blank line](ERRORS.md)\n", "") == "a [label\n\nover a blank line](ERRORS.md)\n"


def test_headings_get_the_anchors_jupyterlab_and_github_give_them(tmp_path):
    page = tmp_path / "05_savepoints.html"
    page.write_text('<h2 id="a-two">4a. Two requests at once on the test\'s one connection'
                    '<a class="headerlink" href="#a-two">#</a></h2>', encoding="utf-8")
    site.add_anchors(tmp_path)
    ids = site._parse(page).ids
    assert {"a-two", "4a.-Two-requests-at-once-on-the-test's-one-connection",
            "4a-two-requests-at-once-on-the-tests-one-connection"} <= ids


# --- lesson pages: quizzes, exercises, instructor notes ----------------------------------------------------

@functools.cache
def lesson_page(stem: str):
    return site.lesson_page(stem, PLACEHOLDER, linker())


@functools.cache
def solution(stem: str):
    return site.read_notebook(site.SOLUTIONS / f"{stem}.ipynb")


def page_text(notebook) -> str:
    """Everything a page shows: every cell's source and every stored output."""
    parts = []
    for cell in notebook["cells"]:
        parts.append(cell["source"])
        for output in cell.get("outputs", []):
            parts.append(json.dumps(output))
    return "\n".join(parts)


def revealing(text: str, quiz_id: str, right: str) -> list[str]:
    patterns = [rf"""answer\(\s*["']{re.escape(quiz_id)}["']\s*,\s*["']{right}["']""",
                rf"Quiz {re.escape(quiz_id)}: {right}\) is right"]
    return [p for p in patterns if re.search(p, text)]


@pytest.mark.parametrize("stem", site.lesson_stems())
def test_a_lesson_page_never_gives_a_quiz_answer_away(stem):
    answers, _ = guide.bank_answers(stem)
    assert answers, f"{stem}: no quizzes found in its bank"
    page = page_text(lesson_page(stem))
    stored = page_text(solution(stem))
    bank = site.quiz_bank(stem)
    for quiz_id, right in answers.items():
        # negative control: the stored solution does name the right option, so the detector can see it
        assert revealing(stored, quiz_id, right), f"{quiz_id}: the detector finds nothing in the solution"
        assert not revealing(page, quiz_id, right), f"{quiz_id}: the lesson page names the right option"
        # what the browser needs instead: the bank's hash and every option's feedback
        data = re.search(rf'<script type="application/json" class="course-quiz-data">(\{{"id": "{re.escape(quiz_id)}".*?)</script>', page)
        assert data, f"{quiz_id}: no quiz data on the page"
        payload = json.loads(data.group(1))
        assert payload["hash"] == bank[quiz_id]["answer"]
        assert sorted(payload["feedback"]) == sorted(k.lower() for k in bank[quiz_id]["feedback"])


def test_the_instructor_guide_page_folds_every_list_of_right_options():
    guide_text = (guide.ROOT / "INSTRUCTOR_GUIDE.md").read_text(encoding="utf-8")
    page = site.markdown_page(guide.ROOT / "INSTRUCTOR_GUIDE.md", linker())
    answers = re.findall(r"^- \*\*(\d\d\.\d+)\*\* .*→ \*\*[a-d]\*\*$", guide_text, re.M)
    assert len(answers) >= 3 * len(site.lesson_stems())  # negative control: the guide does list them
    folded = re.findall(r"<details class=\"course-answers\">.*?</details>", page, re.S)
    assert len(folded) == len(site.lesson_stems())
    inside = "".join(folded)
    assert all(f"**{quiz_id}**" in inside for quiz_id in answers)
    outside = re.sub(r"<details class=\"course-answers\">.*?</details>", "", page, flags=re.S)
    assert not re.search(r"→ \*\*[a-d]\*\*", outside)


def test_the_quiz_data_is_checkable_and_cannot_end_its_script_element():
    from course.quiz import digest

    bank = {"01.9": {"answer": digest("01.9", "c"),
                     "feedback": {"a": "No: `</script><script>alert(1)</script>` & more", "b": "**No**", "c": "Yes"}}}
    text = site.quiz_markdown("Intro.\n\n**Quiz 01.9.** Which?\n- **a)** one\n- **b)** two\n- **c)** three", bank)
    assert text.startswith("Intro.\n\n::::{container} course-quiz\n**Quiz 01.9.**")
    script = re.search(r'class="course-quiz-data">(.*?)</script>', text, re.S).group(1)
    assert "</" not in script
    data = json.loads(script)
    assert set(data) == {"id", "salt", "hash", "feedback"}  # the letter itself is nowhere
    assert data["hash"] == digest("01.9", "c") and digest(data["id"], "c") == data["hash"]
    assert data["feedback"]["a"].startswith("No: <code>&lt;/script&gt;")
    assert data["feedback"]["b"] == "<strong>No</strong>"


@pytest.mark.parametrize("stem", site.lesson_stems())
def test_exercises_show_the_learner_version_and_fold_the_solution(stem):
    page = lesson_page(stem)
    exercises = [c for c in solution(stem)["cells"] if c["cell_type"] == "code" and SOLUTION_BLOCK.search(c["source"])]
    folded = [c for c in page["cells"] if "Show the solution" in c["metadata"].get("mystnb", {}).get("code_prompt_show", "")]
    shown = [c for c in page["cells"] if "exercise" in c["metadata"].get("tags", [])]
    assert len(folded) == len(shown) == len(exercises)
    for learner, hidden in zip(shown, folded):
        assert "...  # YOUR CODE HERE" in learner["source"] and "BEGIN SOLUTION" not in learner["source"]
        assert "hide-cell" in hidden["metadata"]["tags"]
    assert all("instructor" not in c["metadata"].get("tags", []) for c in page["cells"])


def test_a_lesson_page_links_binder_once_published_else_says_how_to_run_it_locally():
    before = site.lesson_actions("04_rollback_fixtures", PLACEHOLDER, linker(PLACEHOLDER))
    after = site.lesson_actions("04_rollback_fixtures", PUBLISHED, linker(PUBLISHED))
    assert "mybinder.org" not in before and "./launch.sh" in before
    assert PUBLISHED.binder_url("04_rollback_fixtures") in after
    for actions in (before, after):
        assert 'href="downloads/notebooks/04_rollback_fixtures.ipynb" download' in actions
    assert "https://github.com/my-org/fastapi-db-testing/blob/main/lessons/04_rollback_fixtures.py" in after


def test_the_home_page_links_every_lesson_and_every_reference_page():
    lessons, pages = guide.read_lessons(), site.extra_pages()
    home = site.home_page(PLACEHOLDER, lessons, pages, linker())
    assert [lesson.stem for lesson in lessons] == site.lesson_stems()
    for name in [lesson.stem for lesson in lessons] + [page.name for page in pages]:
        assert f'href="{name}.html"' in home, name
    assert {"setup", "errors", "glossary", "isolation", "instructor-guide"} <= {page.name for page in pages}


def test_the_diagram_count_is_the_mermaid_blocks_of_the_lessons():
    counts = site.mermaid_count_in_lessons()
    for stem, expected in counts.items():
        markdown = "\n".join(c["source"] for c in solution(stem)["cells"] if c["cell_type"] == "markdown")
        assert len(site.MERMAID_FENCE.findall(markdown)) == expected, stem
    assert sum(counts.values()) >= 6


# --- Mermaid's script ----------------------------------------------------------------------------------

def fake_tarball(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/dist/mermaid.min.js")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_a_cached_mermaid_package_that_is_not_the_published_one_is_refused_and_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SITE_CACHE", str(tmp_path))
    cached = tmp_path / f"mermaid-{site.MERMAID_VERSION}.tgz"
    cached.write_bytes(fake_tarball(b"window.mermaid = {evil: true};"))
    with pytest.raises(site.SiteError, match="is not the mermaid@"):
        site.mermaid_script()
    assert not cached.exists()


def test_the_mermaid_package_is_read_when_its_integrity_matches(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SITE_CACHE", str(tmp_path))
    data = fake_tarball(b"window.mermaid = {};")
    (tmp_path / f"mermaid-{site.MERMAID_VERSION}.tgz").write_bytes(data)
    monkeypatch.setattr(site, "MERMAID_INTEGRITY", site.integrity_of(data))
    assert site.mermaid_script() == b"window.mermaid = {};"


def test_the_reference_pages_come_from_the_files_that_exist(tmp_path, monkeypatch):
    """Data, not code: a run sheet that appears becomes a page; a missing glossary is no page (nor a dead link)."""
    for name in ("README.md", "ERRORS.md", "INSTRUCTOR_GUIDE.md", "tests/isolation.py", "workshop/half-day.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# Half-day workshop: the run sheet\n" if "workshop" in name else "x\n")
    monkeypatch.setattr(site, "ROOT", tmp_path)
    pages = {page.name: page for page in site.extra_pages()}
    assert "glossary" not in pages
    assert pages["workshop-half-day"].title == "Half-day workshop: the run sheet"
    assert pages["workshop-half-day"].source == "workshop/half-day.md"
    (tmp_path / "GLOSSARY.md").write_text("# Glossary\n")
    assert "glossary" in {page.name for page in site.extra_pages()}


def test_the_setup_page_is_made_from_the_readme_as_it_is():
    """The setup page quotes README sections by their headings: a renamed heading fails here, not only in
    scripts/site-check's build."""
    page = site.setup_page(PLACEHOLDER, linker())
    assert "## Which database" in page and "DATABASE_URL" in page
    with pytest.raises(site.SiteError, match="no section '## No such heading'"):
        site._readme_section("## Another\ntext\n", "No such heading")  # negative control
