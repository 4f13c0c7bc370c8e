"""The course website: static HTML from the lessons and the STORED outputs of ``solutions/``.

``python -m course site [--out DIR]``   builds the site (default ``_build/site/``); nothing is executed
``python -m course site --check DIR``  checks a built site: internal links and anchors, no resource
                                       loaded from outside the site

Sphinx with MyST-NB and sphinx-book-theme (pure Python, pinned in requirements.txt: a Jupyter Book 2 /
mystmd build downloads its HTML theme at build time). Everything a page loads comes from the site:
Mermaid's script is the ``dist/mermaid.min.js`` of the npm package ``mermaid`` at ``MERMAID_VERSION``,
fetched once with ``npm pack`` (the npm registry), checked against ``MERMAID_INTEGRITY`` and cached in
``~/.cache/course-site/`` (``COURSE_SITE_CACHE`` moves it).

The page list is data: one page per ``lessons/NN_*.py`` (rendered from ``solutions/NN_*.ipynb``), plus
home, setup, error index (ERRORS.md), glossary (GLOSSARY.md), the isolation helper (tests/isolation.py),
the instructor guide (INSTRUCTOR_GUIDE.md) and the workshop run sheets (``workshop/*.md``, when present).
On a lesson page: quizzes answered in the browser (the salted hash of ``course/quiz.py``, never the
letter), the demonstration cell after a quiz and every exercise's solution folded, instructor notes left
out (they are in the guide), the learner notebook to download, Binder (once published) and the source.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from course import guide

ROOT = guide.ROOT
LESSONS = ROOT / "lessons"
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_OUT = ROOT / "_build" / "site"
BANK_DIR = ROOT / "course" / "quizzes"

#: The Mermaid major JupyterLab 4.6 renders with (so a diagram looks the same in the notebook and here).
MERMAID_VERSION = "11.17.2"
#: The npm registry's ``dist.integrity`` of mermaid-11.17.2.tgz (``npm view mermaid@11.17.2 dist.integrity``).
MERMAID_INTEGRITY = "sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
MERMAID_FENCE = re.compile(r"^[ \t]*```mermaid[ \t]*$", re.M)

SOLUTION_MARK = re.compile(r"^[ \t]*# (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
QUIZ_START = re.compile(r"\*\*Quiz\s+(\d\d\.\d+)\.\*\*")
OPTION = re.compile(r"^\s*-\s+\*\*([a-z])\)\*\*", re.M)


class SiteError(Exception):
    pass


# --- what the site is made of ----------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    name: str  # the page's file name in the site, without .html
    title: str
    source: str  # repository path it is made from (shown on the page, linked once published)


def lesson_stems() -> list[str]:
    return [p.stem for p in sorted(LESSONS.glob("[0-9][0-9]_*.py"))]


def extra_pages() -> list[Page]:
    """The pages that are not lessons, in the order of the site's navigation; only those whose source exists."""
    pages = [Page("setup", "Setup: laptop, Binder, JupyterHub", "README.md"),
             Page("errors", "Error index", "ERRORS.md"),
             Page("glossary", "Glossary", "GLOSSARY.md"),
             Page("isolation", "The isolation helper", "tests/isolation.py"),
             Page("instructor-guide", "Instructor guide", "INSTRUCTOR_GUIDE.md")]
    for sheet in sorted((ROOT / "workshop").glob("*.md")):
        pages.append(Page(f"workshop-{sheet.stem}", _first_heading(sheet) or sheet.stem, f"workshop/{sheet.name}"))
    return [page for page in pages if (ROOT / page.source).exists()]


def _first_heading(path: Path) -> str | None:
    match = re.search(r"^#\s+(.+?)\s*$", path.read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else None


def mermaid_count_in_lessons() -> dict[str, int]:
    """Lesson stem -> number of ```mermaid blocks in its source (what the browser check expects)."""
    counts = {}
    for path in sorted(LESSONS.glob("[0-9][0-9]_*.py")):
        text = re.sub(r"^# ?", "", path.read_text(encoding="utf-8"), flags=re.M)
        counts[path.stem] = len(MERMAID_FENCE.findall(text))
    return counts


# --- Mermaid's script, from the npm registry, checked ---------------------------------------------------

def cache_dir() -> Path:
    return Path(os.environ.get("COURSE_SITE_CACHE") or Path.home() / ".cache" / "course-site")


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def mermaid_script() -> bytes:
    """``dist/mermaid.min.js`` of the pinned npm package, downloaded once by ``npm pack``, integrity checked."""
    tarball = cache_dir() / f"mermaid-{MERMAID_VERSION}.tgz"
    if not tarball.exists():
        npm = shutil.which("npm")
        if not npm:
            raise SiteError("npm is missing: the site serves Mermaid's script from the npm package "
                            f"mermaid@{MERMAID_VERSION}. Install Node.js and npm (Debian: apt-get install npm), "
                            f"or put mermaid-{MERMAID_VERSION}.tgz in {tarball.parent}")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
            result = subprocess.run([npm, "pack", f"mermaid@{MERMAID_VERSION}", "--pack-destination", tmp],
                                    capture_output=True, text=True, cwd=tmp)
            packed = Path(tmp) / f"mermaid-{MERMAID_VERSION}.tgz"
            if result.returncode != 0 or not packed.exists():
                raise SiteError(f"npm pack mermaid@{MERMAID_VERSION} failed: {result.stderr.strip()[-500:]}")
            os.replace(packed, tarball)
    data = tarball.read_bytes()
    if integrity_of(data) != MERMAID_INTEGRITY:
        tarball.unlink()
        raise SiteError(f"{tarball} is not the mermaid@{MERMAID_VERSION} the registry published "
                        f"(integrity {integrity_of(data)[:30]}..., expected {MERMAID_INTEGRITY[:30]}...); "
                        "deleted it, run again")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("package/dist/mermaid.min.js")
        if member is None:
            raise SiteError(f"mermaid@{MERMAID_VERSION} has no dist/mermaid.min.js")
        return member.read()


# --- links: repository paths become site pages, GitHub links or plain text ---------------------------

EXTERNAL_IMAGE = re.compile(r"!\[([^\]]*)\]\((?:https?:)?//[^)\s]+\)")


class Linker:
    """Rewrites the relative links of markdown written for the repository into links of the site."""

    def __init__(self, settings: guide.Settings, lessons: list[str], pages: list[Page]):
        self.settings = settings
        self.targets: dict[str, str] = {"README.md": "index.html"}
        for stem in lessons:
            for folder in ("solutions", "notebooks", "lessons"):
                suffix = ".py" if folder == "lessons" else ".ipynb"
                self.targets[f"{folder}/{stem}{suffix}"] = f"{stem}.html"
        for page in pages:
            if page.source != "README.md":
                self.targets[page.source] = f"{page.name}.html"

    def repository_link(self, path: str) -> str | None:
        if self.settings.is_placeholder:
            return None
        kind = "tree" if (ROOT / path).is_dir() else "blob"
        return f"{self.settings.git_url}/{kind}/{self.settings.branch}/{path}"

    def resolve(self, target: str, base: str) -> str | None:
        """The site URL for a link written in repository file ``base`` (a folder, '' for the root)."""
        parts = urlsplit(target)
        if parts.scheme or target.startswith("//"):
            return target
        if not parts.path:
            return target  # '#anchor' on the same page
        path = os.path.normpath(os.path.join(base, unquote(parts.path))).replace(os.sep, "/")
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        if path in self.targets:
            return self.targets[path] + fragment
        if path.startswith(".."):
            return None
        return self.repository_link(path)

    def markdown(self, text: str, base: str) -> str:
        """An image from outside the site becomes its alt text (the site loads nothing from elsewhere).
        Every ``[text](target)`` outside code: a raw ``<a>`` to the site (MyST leaves raw HTML alone),
        or the bare text when the target is a repository file and the course is not published."""
        out, fenced, prose = [], False, []
        for line in text.splitlines(keepends=True):
            fence = bool(re.match(r"^\s*(```|~~~)", line))
            if fenced or fence or not line.strip():
                out.append(self._prose("".join(prose), base))
                prose = []
                if fence:
                    fenced = not fenced
                out.append(line)
            else:
                prose.append(line)
        out.append(self._prose("".join(prose), base))
        return "".join(out)

    def _prose(self, paragraph: str, base: str) -> str:
        """One paragraph (the lines between blank lines or fences): a code span or a link may cross its
        line breaks, never its end."""
        paragraph = EXTERNAL_IMAGE.sub(lambda m: m.group(1), paragraph)
        result, i = [], 0
        while True:
            start = _find_link(paragraph, i)
            if start is None:
                result.append(paragraph[i:])
                return "".join(result)
            open_text, close_text, close_url = start
            result.append(paragraph[i:open_text])
            label = paragraph[open_text + 1:close_text]
            target = paragraph[close_text + 2:close_url].strip()
            if open_text > 0 and paragraph[open_text - 1] == "!":  # an image: leave it to MyST
                result.append(paragraph[open_text:close_url + 1])
            else:
                url = self.resolve(target, base)
                if url is None:
                    result.append(label)
                elif urlsplit(url).scheme:
                    result.append(f"[{label}]({url})")
                else:
                    result.append(f'<a href="{html.escape(url)}">{label}</a>')
            i = close_url + 1


def _find_link(line: str, start: int) -> tuple[int, int, int] | None:
    """(index of '[', of the ']' before '(', of the ')' closing the target) of the next link outside code
    spans, parentheses balanced; ``line`` is a paragraph, so both may cross its line breaks."""
    i = start
    while i < len(line):
        char = line[i]
        if char == "`":
            # a code span: a run of backticks up to the next run as long; a run never closed is literal
            run = re.compile("`+").match(line, i).end() - i
            close = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(line, i + run)
            i = close.end() if close else i + run
            continue
        elif char == "[":
            depth, j = 0, i
            while j < len(line):
                if line[j] == "[":
                    depth += 1
                elif line[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j < len(line) - 1 and line[j + 1] == "(":
                depth, k = 0, j + 1
                while k < len(line):
                    if line[k] == "(":
                        depth += 1
                    elif line[k] == ")":
                        depth -= 1
                        if depth == 0:
                            return i, j, k
                    k += 1
        i += 1
    return None


# --- quizzes and exercises -----------------------------------------------------------------------------

def _inline_html(text: str) -> str:
    """Quiz feedback (plain text with `code`, **bold**, *emphasis*) as safe HTML."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            escaped = html.escape(part)
            escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
            escaped = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", escaped)
            out.append(escaped)
    return "".join(out)


def quiz_bank(stem: str) -> dict[str, dict]:
    path = BANK_DIR / f"{stem}.toml"
    if not path.exists():
        return {}
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return {f"{stem[:2]}.{key}": entry for key, entry in raw.items()}


def quiz_markdown(source: str, bank: dict[str, dict]) -> str:
    """A quiz cell: the quiz (from ``**Quiz NN.K.**`` to the end of the cell) in a ``course-quiz`` container
    with what the browser needs to answer it: the salted hash and each option's feedback, never the letter."""
    from course.quiz import SALT

    match = QUIZ_START.search(source)
    if not match:
        return source
    quiz_id = match.group(1)
    entry = bank.get(quiz_id)
    if entry is None:
        raise SiteError(f"quiz {quiz_id} has no entry in its bank course/quizzes/")
    data = {"id": quiz_id, "salt": SALT, "hash": entry["answer"],
            "feedback": {k.lower(): _inline_html(v) for k, v in entry["feedback"].items()}}
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    before, quiz = source[: match.start()], source[match.start():].rstrip()
    fence = ":" * (4 + max((len(m) for m in re.findall(r"^:{3,}", quiz, re.M)), default=0))
    return (f"{before}{fence}{{container}} course-quiz\n{quiz}\n\n"
            f'<script type="application/json" class="course-quiz-data">{payload}</script>\n{fence}\n')


def learner_source(source: str) -> str:
    from course.build import SOLUTION_BLOCK

    return SOLUTION_BLOCK.sub(lambda m: f"{m['indent']}...  # YOUR CODE HERE", source)


def read_notebook(path: Path) -> dict:
    """A stored notebook as plain JSON, every ``source`` one string (no nbformat: its import costs seconds)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        cell.setdefault("metadata", {})
    return notebook


def _tags(cell: dict) -> list[str]:
    return list(cell["metadata"].get("tags", []))


def _fold(cell: dict, show: str, hide: str) -> None:
    tags = [t for t in _tags(cell) if t not in {"hide-input", "hide-output"}]
    cell["metadata"]["tags"] = tags + ["hide-cell"]
    cell["metadata"]["mystnb"] = {"code_prompt_show": show, "code_prompt_hide": hide}


def lesson_page(stem: str, settings: guide.Settings, linker: Linker) -> dict:
    """The solution notebook as the site shows it (a copy; the stored outputs are not re-run)."""
    from course.build import SOLUTION_BLOCK

    page = read_notebook(SOLUTIONS / f"{stem}.ipynb")
    bank = quiz_bank(stem)
    cells, after_quiz = [], False
    for cell in page["cells"]:
        tags = _tags(cell)
        if "instructor" in tags:
            continue
        if cell["cell_type"] == "markdown":
            after_quiz = False
            text = linker.markdown(cell["source"], "solutions")
            if QUIZ_START.search(text) and OPTION.search(text):
                text = quiz_markdown(text, bank)
            cell["source"] = text
            cells.append(cell)
            continue
        if cell["cell_type"] != "code":
            cells.append(cell)
            continue
        if "quiz-answer" in tags:
            after_quiz = True  # the answer call and its output name the right option: not on the page
            continue
        if cell["metadata"].get("jupyter", {}).get("source_hidden"):
            cell["metadata"]["tags"] = tags + ["hide-input"]
        if SOLUTION_BLOCK.search(cell["source"]):
            cells.append({"cell_type": "code", "execution_count": None, "id": f"{cell.get('id', 'cell')}-learner",
                          "metadata": {"tags": ["exercise"]}, "outputs": [], "source": learner_source(cell["source"])})
            cell["source"] = SOLUTION_MARK.sub("", cell["source"])
            _fold(cell, "Show the solution (and what its check printed)", "Hide the solution")
        elif after_quiz:
            _fold(cell, "Show the demonstration (it gives the quiz's answer away)", "Hide the demonstration")
        cells.append(cell)
    if not cells or cells[0]["cell_type"] != "markdown":
        raise SiteError(f"solutions/{stem}.ipynb does not start with its title cell")
    cells.insert(1, {"cell_type": "markdown", "id": "course-actions", "metadata": {},
                     "source": lesson_actions(stem, settings, linker)})
    page["cells"] = cells
    page["metadata"].setdefault("language_info", {"name": "python", "pygments_lexer": "ipython3"})
    return page


def lesson_actions(stem: str, settings: guide.Settings, linker: Linker) -> str:
    """The bar under a lesson's title: Binder (or how to run it locally), the notebook, the source."""
    if settings.is_placeholder:
        launch = ('<span class="course-launch-local"><strong>Run it:</strong> this copy of the course is not '
                  'published yet, so there is no Binder link; run it on your laptop: '
                  f'<code>./launch.sh</code> opens JupyterLab, then <code>notebooks/{stem}.ipynb</code> '
                  '(<a href="setup.html">setup</a>).</span>')
    else:
        launch = (f'<a class="course-button" href="{html.escape(settings.binder_url(stem))}">Launch on Binder</a>')
    source = linker.repository_link(f"lessons/{stem}.py") or f"downloads/lessons/{stem}.py"
    return ('<div class="course-actions">\n'
            f'{launch}\n'
            f'<a class="course-button" href="downloads/notebooks/{stem}.ipynb" download>Download this notebook</a>\n'
            f'<a class="course-button" href="{html.escape(source)}">Source: lessons/{stem}.py</a>\n'
            '</div>\n')


# --- the other pages --------------------------------------------------------------------------------

def _readme_section(readme: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}.*?$\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if not match:
        raise SiteError(f"README.md has no section '## {heading}'")
    return match.group(1).strip()


def _readme_intro(readme: str) -> str:
    """The README's paragraphs between its launch block and its first ``##`` section."""
    body = readme.split("<!-- /course:launch -->", 1)[-1]
    body = re.sub(r"<!-- course:site -->.*?<!-- /course:site -->", "", body, flags=re.S)
    return body.split("\n## ", 1)[0].strip()


def home_page(settings: guide.Settings, lessons: list[guide.Lesson], pages: list[Page], linker: Linker) -> str:
    from course.publish import SUMMARIES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    title = re.search(r"^#\s+(.+)$", readme, re.M).group(1)
    if settings.is_placeholder:
        binder = ("**In the browser, nothing to install:** once the course is published (`python -m course publish "
                  "OWNER/NAME`), every lesson page has a *Launch on Binder* button; this copy is not published yet.")
    else:
        binder = (f"**In the browser, nothing to install:** [Launch on Binder]({settings.binder_url()}) "
                  "(PostgreSQL runs inside the session; sessions are temporary).")
    rows = ["| # | lesson | minutes | what you see happen, then fixed |", "|---|---|---|---|"]
    for lesson in lessons:
        summary = SUMMARIES.get(lesson.stem) or (lesson.objectives[0] if lesson.objectives else "")
        rows.append(f"| {lesson.number} | <a href=\"{lesson.stem}.html\">{lesson.title}</a> | {lesson.minutes} | {summary} |")
    more = "\n".join(f"- <a href=\"{p.name}.html\">{p.title}</a>" for p in pages)
    total = sum(lesson.minutes for lesson in lessons)
    toc_lessons = "\n".join(lesson.stem for lesson in lessons)
    toc_more = "\n".join(p.name for p in pages)
    return f"""# {title}

{linker.markdown(_readme_intro(readme), "")}

## How to start

- {binder}
- **On your laptop:** two commands, `./launch.sh` then `./run-tests.sh`; SQLite needs nothing else,
  PostgreSQL is one switch away (<a href="setup.html">setup</a>).
- **On a JupyterHub:** an instructor hands out one nbgitpuller link (<a href="setup.html#on-a-jupyterhub">setup</a>,
  <a href="instructor-guide.html">instructor guide</a>).

Every lesson page shows the notebook as it ran, outputs included; download the learner version from the
page to run it yourself.

## The lessons

{len(lessons)} lessons, {total} minutes of teaching and exercises in all.

{chr(10).join(rows)}

## Also here

{more}

```{{toctree}}
:hidden:
:caption: Lessons

{toc_lessons}
```

```{{toctree}}
:hidden:
:caption: Reference

{toc_more}
```
"""


def setup_page(settings: guide.Settings, linker: Linker) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    laptop = _readme_section(readme, "Set up (two commands)")
    database = _readme_section(readme, "PostgreSQL or SQLite")
    if settings.is_placeholder:
        binder = ("This copy of the course is not published yet, so it has no Binder link. Whoever publishes it runs "
                  "`python -m course publish OWNER/NAME` once; every lesson page then has a *Launch on Binder* "
                  "button, and this section the link.")
        hub = ("The instructor guide's nbgitpuller link needs the published repository too; until then a hub "
               "user clones the repository and runs `./launch.sh` in a terminal.")
    else:
        binder = (f"[Launch on Binder]({settings.binder_url()}): JupyterLab opens on notebook 00 with PostgreSQL "
                  "running inside the session. Nothing to install; a session is temporary and ends after about "
                  "10 minutes without activity, so download what you want to keep.")
        hub = (f"An instructor hands out one link, which clones the course into each learner's home and opens "
               f"notebook 00:\n\n```text\n{settings.nbgitpuller_url()}\n```\n\n"
               "Replace `https://hub.example.org` with the hub's address.")
    return f"""# Setup: laptop, Binder, JupyterHub

Three ways to run the course; the lessons are the same on each. Reading is possible right here: every
lesson page shows the notebook as it ran.

## On your laptop

{linker.markdown(laptop, "")}

## On Binder

{binder}

## On a JupyterHub

{hub} The <a href="instructor-guide.html">instructor guide</a> has the details (workshop checklist, memory,
what to do when a session dies).

## Which database

{linker.markdown(database, "")}
"""


def isolation_page(linker: Linker) -> str:
    import ast

    text = (ROOT / "tests" / "isolation.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text)) or ""
    source = linker.repository_link("tests/isolation.py")
    link = f"`the repository's copy <{source}>`_" if source else "``tests/isolation.py`` in the repository"
    title = "The isolation helper: tests/isolation.py"
    return f"""{title}
{"=" * len(title)}

One file, no dependency beyond SQLAlchemy and the standard library: copy it into your project
(:download:`download isolation.py <isolation.py>`, or {link}). Lessons 04, 05, 06 and 12 build it
step by step; the recipes below are its own documentation, each one a test of the course on SQLite and
PostgreSQL.

Recipes
-------

{doc}

The whole file
--------------

.. literalinclude:: isolation.py
   :language: python
"""


GUIDE_ANSWERS = re.compile(r"^(\*\*Quizzes\*\* \(the right option.*?\n)\n((?:- .*\n)+)", re.M)


def fold_guide_answers(text: str) -> str:
    """The guide's lists of right options, folded: a learner reading the guide page does not see them by chance."""
    return GUIDE_ANSWERS.sub(lambda m: (f"{m.group(1)}\n<details class=\"course-answers\"><summary>Show the right "
                                        f"options</summary>\n\n{m.group(2)}\n</details>\n"), text)


def markdown_page(path: Path, linker: Linker) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
    if path.name == "INSTRUCTOR_GUIDE.md":
        text = fold_guide_answers(text)
    base = str(path.parent.relative_to(ROOT)) if path.parent != ROOT else ""
    return linker.markdown(text, "" if base == "." else base)


# --- the build ----------------------------------------------------------------------------------------

def sphinx_config(settings: guide.Settings) -> dict:
    """The site's Sphinx configuration (conf.py of the generated source folder reads it from here)."""
    url = settings.site_url
    config = {
        "project": "Testing FastAPI + SQLAlchemy against a real database",
        "author": "The contributors of the course",
        "copyright": "the contributors of the course (licences: LICENSE.md)",
        "extensions": ["myst_nb", "course.site"],
        "source_suffix": {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"},
        "exclude_patterns": ["_build", "downloads", "**.ipynb_checkpoints"],
        "myst_enable_extensions": ["colon_fence", "deflist"],
        "myst_fence_as_directive": ["mermaid"],
        "nb_execution_mode": "off",  # the stored outputs of solutions/, never re-run
        "nb_merge_streams": True,
        "nb_ipywidgets_js": {},  # MyST-NB would otherwise load require.js and the widget manager from a CDN
        "nb_output_stderr": "show",
        "html_theme": "sphinx_book_theme",
        "html_title": "FastAPI + SQLAlchemy testing course",
        "html_static_path": ["_static"],
        "html_favicon": "_static/favicon.svg",  # else the browser asks for /favicon.ico, a 404
        "html_context": {"default_mode": "light"},  # pydata's script logs an error while no mode is stored
        "html_css_files": ["course.css"],
        "html_js_files": [("course.js", {"defer": "defer"})],
        "html_extra_path": ["extra"],
        "html_copy_source": False,
        # Search results without the page summaries Sphinx fetches: opened from the disk (file://) those
        # fetches are refused; the search itself runs on searchindex.js, no server needed.
        "html_show_search_summary": False,
        "html_show_sourcelink": False,
        "html_last_updated_fmt": None,
        "html_theme_options": {
            "show_toc_level": 2,
            "use_download_button": False,
            "use_fullscreen_button": False,
            "home_page_in_toc": True,
            "navigation_with_keys": False,
        },
        "smartquotes": False,  # an error message is searched for with its own quotes, as the notebook printed it
        "mathjax_path": "none",  # no page has math; Sphinx would otherwise load MathJax from a CDN
        "suppress_warnings": ["myst.header", "misc.highlighting_failure"],
    }
    if url:
        config["html_baseurl"] = url
        config["html_theme_options"].update({"repository_url": settings.git_url, "repository_branch": settings.branch,
                                             "use_repository_button": True})
    return config


CONF_PY = '''\
# Generated by `python -m course site`: the configuration lives in course/site.py (sphinx_config),
# the settings come from binder/course.toml.
from course import guide, site

globals().update(site.sphinx_config(guide.Settings(repository={repository!r}, branch={branch!r},
                                                   binderhub={binderhub!r})))
'''


def write_sources(src: Path, settings: guide.Settings) -> dict:
    """The Sphinx source folder of the site; returns what was written (pages, diagrams)."""
    lessons = guide.read_lessons()
    stems = [lesson.stem for lesson in lessons]
    missing = [s for s in stems if not (SOLUTIONS / f"{s}.ipynb").exists()]
    if missing:
        raise SiteError(f"no stored notebook for {', '.join(missing)}: run .venv/bin/python -m course build")
    pages = extra_pages()
    linker = Linker(settings, stems, pages)
    (src / "_static").mkdir(parents=True)
    (src / "_static" / "mermaid.min.js").write_bytes(mermaid_script())
    static = Path(__file__).with_name("site_static")
    for name in ("course.js", "course.css", "favicon.svg"):
        shutil.copy(static / name, src / "_static" / name)
    extra = src / "extra" / "downloads"
    (extra / "notebooks").mkdir(parents=True)
    (extra / "lessons").mkdir()
    (src / "conf.py").write_text(CONF_PY.format(repository=settings.repository, branch=settings.branch,
                                                binderhub=settings.binderhub), encoding="utf-8")
    (src / "index.md").write_text(home_page(settings, lessons, pages, linker), encoding="utf-8")
    for stem in stems:
        (src / f"{stem}.ipynb").write_text(json.dumps(lesson_page(stem, settings, linker), ensure_ascii=False),
                                           encoding="utf-8")
        shutil.copy(NOTEBOOKS / f"{stem}.ipynb", extra / "notebooks" / f"{stem}.ipynb")
        shutil.copy(LESSONS / f"{stem}.py", extra / "lessons" / f"{stem}.py")
    for page in pages:
        if page.name == "setup":
            text = setup_page(settings, linker)
        elif page.name == "isolation":
            shutil.copy(ROOT / "tests" / "isolation.py", src / "isolation.py")
            (src / "isolation.rst").write_text(isolation_page(linker), encoding="utf-8")
            continue
        else:
            text = markdown_page(ROOT / page.source, linker)
        (src / f"{page.name}.md").write_text(text, encoding="utf-8")
    return {"lessons": stems, "pages": pages}


def build(out: Path, settings: guide.Settings | None = None, quiet: bool = True) -> dict:
    """Build the site into ``out`` (replaced); return what was built. Raises SiteError on any Sphinx warning."""
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    settings = settings or guide.load_settings()
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        written = write_sources(src, settings)
        warnings = io.StringIO()
        if out.exists():
            shutil.rmtree(out)
        with patch_docutils(src), docutils_namespace():
            app = Sphinx(str(src), str(src), str(Path(tmp) / "html"), str(Path(tmp) / "doctrees"), "html",
                         status=None if quiet else sys.stderr, warning=warnings, freshenv=True,
                         parallel=1)
            app.build(force_all=True)
        problems = [line for line in warnings.getvalue().splitlines() if "WARNING" in line or "ERROR" in line]
        if problems:
            raise SiteError("Sphinx warned (the site must build cleanly):\n" + "\n".join(problems))
        shutil.copytree(Path(tmp) / "html", out)
    for macros in (out / "_static").glob("*.html"):  # the themes' template fragments, not pages
        macros.unlink()
    for leftover in (".buildinfo", ".doctrees", "objects.inv", "_sources"):
        target = out / leftover
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    add_anchors(out)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ as it is
    return written


# --- after Sphinx: the anchors the repository's links use -------------------------------------------------

HEADING = re.compile(r"<h([1-6])([^>]*)>(.*?)</h\1>", re.S)


def _text_of(fragment: str) -> str:
    fragment = re.sub(r'<a class="headerlink".*?</a>', "", fragment, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def add_anchors(out: Path) -> None:
    """Give every heading the anchors JupyterLab and GitHub would give it, beside Sphinx's own id, so the
    links written for the repository (ERRORS.md, the guide, the lessons) land on the heading here too."""
    from course.errors import _anchor, _github_anchor

    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        ids = set(re.findall(r'\sid="([^"]+)"', text))

        def anchors(match: re.Match) -> str:
            heading = _text_of(match.group(3))
            spans = []
            for anchor in dict.fromkeys((_anchor(heading), _github_anchor(heading))):
                if anchor and anchor not in ids:
                    ids.add(anchor)
                    spans.append(f'<span id="{html.escape(anchor)}"></span>')
            return f"<h{match.group(1)}{match.group(2)}>{''.join(spans)}{match.group(3)}</h{match.group(1)}>"

        new = HEADING.sub(anchors, text)
        if new != text:
            page.write_text(new, encoding="utf-8")


# --- checks of a built site (also run by scripts/site-check and tests/test_site.py) ---------------------

class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag/attr, url) of navigations
        self.loads: list[tuple[str, str]] = []  # (tag/attr, url) of what the browser fetches to show the page
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag == "a" and a.get("href") is not None:
            self.links.append(("a href", a["href"]))
        if tag == "link" and a.get("href"):
            rel = set((a.get("rel") or "").lower().split())
            kind = "links" if rel & {"canonical", "alternate", "next", "prev", "index", "search", "author", "license"} \
                and not rel & {"stylesheet", "preload", "modulepreload", "icon", "manifest", "prefetch"} else "loads"
            getattr(self, kind).append((f"link rel={' '.join(sorted(rel))}", a["href"]))
        for attr in ("src", "data", "poster"):
            if a.get(attr) and tag in {"script", "img", "iframe", "source", "video", "audio", "embed", "object", "track", "input"}:
                self.loads.append((f"{tag} {attr}", a[attr]))
        if a.get("srcset"):
            for item in a["srcset"].split(","):
                if item.strip():
                    self.loads.append((f"{tag} srcset", item.split()[0]))
        if a.get("style"):
            self.styles.append(a["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


def _parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8", errors="replace"))
    return collector


def _leaves_site(url: str) -> bool:
    parts = urlsplit(url.strip())
    return bool(parts.netloc) or parts.scheme not in {"", "data", "blob"}


def external_resources(out: Path) -> list[str]:
    """Every script, style sheet, font or image a page or a style sheet of the site would fetch from elsewhere."""
    problems = []
    for page in sorted(out.rglob("*.html")):
        found = _parse(page)
        for kind, url in found.loads:
            if _leaves_site(url):
                problems.append(f"{page.relative_to(out)}: <{kind}> loads {url}")
        for style in found.styles:
            for m in CSS_URL.finditer(style):
                url = m.group(1) or m.group(2)
                if _leaves_site(url):
                    problems.append(f"{page.relative_to(out)}: a style loads {url}")
    for sheet in sorted(out.rglob("*.css")):
        for m in CSS_URL.finditer(sheet.read_text(encoding="utf-8", errors="replace")):
            url = m.group(1) or m.group(2)
            if _leaves_site(url):
                problems.append(f"{sheet.relative_to(out)}: loads {url}")
    return problems


def broken_links(out: Path) -> list[str]:
    """Every internal link, image or script of the site whose file or anchor does not exist."""
    problems, ids = [], {}
    pages = sorted(out.rglob("*.html"))
    parsed = {page: _parse(page) for page in pages}
    for page, found in parsed.items():
        ids[page.resolve()] = found.ids
    for page, found in parsed.items():
        for kind, url in found.links + found.loads:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path))
            where = f"{page.relative_to(out)}: <{kind}> {url}"
            try:
                target.resolve().relative_to(out.resolve())
            except ValueError:
                problems.append(f"{where} points outside the site")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{where}: no such file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in ids.get(target.resolve(), set()):
                problems.append(f"{where}: no element with id {fragment!r}")
    return problems


def size_of(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


# --- Sphinx extension: ```mermaid blocks become <pre class="mermaid">, rendered in the browser ------------

def setup(app):  # noqa: D401 - Sphinx's extension entry point
    from docutils import nodes
    from docutils.parsers.rst import Directive

    class MermaidDirective(Directive):
        has_content = True
        optional_arguments = 0
        final_argument_whitespace = True

        def run(self):
            source = "\n".join(self.content)
            return [nodes.raw("", f'<pre class="mermaid">{html.escape(source)}</pre>\n', format="html")]

    def on_page(app, pagename, templatename, context, doctree):
        if '<pre class="mermaid">' in context.get("body", ""):
            app.add_js_file("mermaid.min.js")

    app.add_directive("mermaid", MermaidDirective)
    app.connect("html-page-context", on_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --- command line ---------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m course site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the site (default: _build/site)")
    parser.add_argument("--check", type=Path, metavar="DIR", help="check a built site instead of building one")
    args = parser.parse_args(argv)
    if args.check:
        problems = broken_links(args.check) + external_resources(args.check)
        for problem in problems:
            print(f"site: {problem}", file=sys.stderr)
        pages = len(list(args.check.rglob("*.html")))
        print(f"site: {pages} pages, {size_of(args.check) / 1e6:.1f} MB, {len(problems)} problems")
        return 1 if problems else 0
    started = time.monotonic()
    try:
        written = build(args.out)
    except (SiteError, guide.GuideError) as exc:
        print(f"site: {exc}", file=sys.stderr)
        return 1
    pages = len(list(args.out.rglob("*.html")))
    diagrams = sum(mermaid_count_in_lessons().values())
    print(f"site: wrote {args.out} in {time.monotonic() - started:.0f} s: {pages} pages "
          f"({len(written['lessons'])} lessons), {diagrams} diagrams, {size_of(args.out) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
