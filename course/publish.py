"""One publish step: every link to the published course comes from ``binder/course.toml``.

``python -m course publish OWNER/NAME [--branch B]``  names the repository in binder/course.toml,
                                                     then regenerates what links to it
``python -m course publish``                         regenerates from binder/course.toml as it is
``python -m course publish --check``                 exits 1 when README.md or INSTRUCTOR_GUIDE.md
                                                     is not what binder/course.toml and the lessons make

What is regenerated: the README's launch block, its website line and its table of notebooks (between
``<!-- course:launch -->`` / ``<!-- course:site -->`` / ``<!-- course:notebooks -->`` markers and their
``<!-- /... -->`` ends), the website line of notebook 00 (the same ``course:site`` block in
``lessons/00_start_here.py`` and in the markdown cell of ``solutions/`` and ``notebooks/`` that holds
it: a markdown cell, so nothing is re-executed) and INSTRUCTOR_GUIDE.md (``python -m course guide``).
The website's own address (``html_baseurl``) is read from the same settings by ``course/site.py``. While the repository is the
placeholder ``OWNER/REPO`` the README says plainly that the course is not published yet and shows
no Binder badge, rather than dead links.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from course import guide

README = guide.README
SETTINGS = guide.SETTINGS
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

#: What each notebook makes happen, then fixes: the README's table. One line per lesson stem.
SUMMARIES = {
    "00_start_here": "the sample app, pytest inside a cell, the database switch, how quizzes and exercises work",
    "01_naive_tests": "shared state, order dependence, unique-constraint failures, made reproducible",
    "02_dependency_overrides": "overrides under the wrong key, overrides that become 422s or outlive their test",
    "03_lifecycle": "`ASGITransport` without and with the lifespan, `TestClient` and httpx2, respx inside the lifespan",
    "04_event_loops": "event-loop traps of pytest-asyncio 1.x and asyncpg hidden by SQLite; yield dependencies, background tasks",
    "05_rollback_fixtures": "the outer transaction and `create_savepoint`; what leaks without each piece",
    "06_sequences_and_scope": "ids a rollback does not give back, fixture scopes, one shared session judged",
    "07_savepoints": "SAVEPOINT semantics, `begin_nested()`, one savepoint per row",
    "08_when_savepoints_break": "the SQLite driver quirk and its fix, what \"savepoint does not exist\" really means",
    "09_retry_routes": "retry after `IntegrityError`, \"Can't operate on closed transaction\", both fixes",
    "10_recreate_database": "\"a session per request, a fresh database per test\" checked: a wrong diagnosis, isolation only in memory, its cost measured",
    "11_concurrency": "double bookings under parallel requests on PostgreSQL, hidden by SQLite, fixed in the database",
    "12_mocking": "respx at the transport vs a fake gateway vs `patch(autospec=True)`; when background tasks run",
    "13_scheduled_jobs": "job functions with an explicit `now`, triggers, time-machine, duplicate schedulers",
    "14_speed_and_scale": "every isolation strategy measured on both databases; one database per xdist worker",
    "15_slow_suite": "`--durations`, a profiler and `-X importtime` find what makes a suite slow; the fix measured",
    "16_capstone": "a complete `conftest.py` assembled and run with the real pytest, serially and with xdist",
    "17_your_own_project": "migrations, SQLModel, sync apps, shared data written once; the helper next to pytest-sqla",
}


class PublishError(Exception):
    pass


def _block(name: str, body: str) -> str:
    return f"<!-- course:{name} -->\n{body.rstrip()}\n<!-- /course:{name} -->"


def launch_block(settings: guide.Settings) -> str:
    if settings.is_placeholder:
        return (
            "**Not published yet:** this copy does not know where it is published, so it shows no Binder\n"
            "link. Whoever publishes it runs `python -m course publish OWNER/NAME` once; every launch link\n"
            "(here, in the notebooks table and in the instructor guide) then points at that repository.\n"
            "Until then: run it on your laptop (below)."
        )
    return (
        f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({settings.binder_url()})\n"
        f"(PostgreSQL runs inside the Binder session; sessions are temporary: [save your work](SAVING_YOUR_WORK.md).)"
    )


def notebooks_block(lessons: list[guide.Lesson], settings: guide.Settings) -> str:
    missing = [lesson.stem for lesson in lessons if lesson.stem not in SUMMARIES]
    if missing:
        raise PublishError(f"course/publish.py has no README summary for {', '.join(missing)}: add one to SUMMARIES")
    published = not settings.is_placeholder
    header = "| # | notebook | what you see happen, then fixed |" + (" |" if published else "")
    rule = "|---|---|---|" + ("---|" if published else "")
    rows = [header, rule]
    for lesson in lessons:
        row = f"| {lesson.number} | [{lesson.title}](notebooks/{lesson.stem}.ipynb) | {SUMMARIES[lesson.stem]} |"
        if published:
            row += f" [![Binder](https://mybinder.org/badge_logo.svg)]({settings.binder_url(lesson.stem)}) |"
        rows.append(row)
    return "\n".join(rows)


def render_readme(readme: str, lessons: list[guide.Lesson], settings: guide.Settings) -> str:
    for name, body in (("launch", launch_block(settings)), ("site", guide.site_sentence(settings)),
                       ("notebooks", notebooks_block(lessons, settings))):
        pattern = re.compile(rf"<!-- course:{name} -->.*?<!-- /course:{name} -->", re.S)
        if not pattern.search(readme):
            raise PublishError(f"README.md has no <!-- course:{name} --> ... <!-- /course:{name} --> block")
        readme = pattern.sub(lambda _: _block(name, body), readme)
    return readme


SITE_BLOCK = re.compile(r"<!-- course:site -->.*?<!-- /course:site -->", re.S)
LESSON_ZERO = guide.FIRST_NOTEBOOK


def _site_block(settings: guide.Settings) -> str:
    return _block("site", guide.site_sentence(settings))


def lesson_zero_files() -> list[Path]:
    root = guide.ROOT
    return [root / "lessons" / f"{LESSON_ZERO}.py", root / "solutions" / f"{LESSON_ZERO}.ipynb",
            root / "notebooks" / f"{LESSON_ZERO}.ipynb"]


def render_lesson_zero(path: Path, text: str, settings: guide.Settings) -> str:
    """The file with its ``course:site`` block current (the jupytext source: each line commented)."""
    block = _site_block(settings)
    if path.suffix == ".py":
        commented = "\n".join(f"# {line}" if line else "#" for line in block.splitlines())
        pattern = re.compile(r"^# <!-- course:site -->.*?<!-- /course:site -->$", re.S | re.M)
        if not pattern.search(text):
            raise PublishError(f"{guide._rel(path)} has no <!-- course:site --> ... <!-- /course:site --> block")
        return pattern.sub(lambda _: commented, text)
    notebook = json.loads(text)
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "markdown" or not SITE_BLOCK.search(source):
            continue
        new = SITE_BLOCK.sub(lambda _: block, source)
        if new != source:
            # the id course/build.py gives a cell (a hash of its content), so a rebuild changes nothing more
            if cell.get("id") == hashlib.sha1(f"markdown\n{source}".encode()).hexdigest()[:12]:
                cell["id"] = hashlib.sha1(f"markdown\n{new}".encode()).hexdigest()[:12]
            cell["source"] = new.splitlines(keepends=True)
        break
    else:
        raise PublishError(f"{guide._rel(path)} has no markdown cell with a <!-- course:site --> block "
                           f"(rebuild it: .venv/bin/python -m course build {LESSON_ZERO[:2]})")
    # nbformat's own layout (indent 1, sorted keys), so the file differs only where the block does
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def set_repository(repository: str, branch: str | None) -> None:
    if not REPOSITORY.match(repository) or repository == guide.PLACEHOLDER_REPOSITORY:
        raise PublishError(f"name the repository as OWNER/NAME (e.g. my-org/fastapi-db-testing), not {repository!r}")
    text = SETTINGS.read_text(encoding="utf-8")
    text = re.sub(r'^repository\s*=\s*".*"$', f'repository = "{repository}"', text, count=1, flags=re.M)
    if branch:
        text = re.sub(r'^branch\s*=\s*".*"$', f'branch = "{branch}"', text, count=1, flags=re.M)
    SETTINGS.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m course publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("repository", nargs="?", help="OWNER/NAME of the published GitHub repository")
    parser.add_argument("--branch", help="the branch Binder builds (default: as in binder/course.toml)")
    parser.add_argument("--check", action="store_true", help="only check that everything is current")
    args = parser.parse_args(argv)
    try:
        if args.repository and not args.check:
            set_repository(args.repository, args.branch)
        settings, lessons = guide.load_settings(), guide.read_lessons()
        readme = README.read_text(encoding="utf-8")
        wanted = render_readme(readme, lessons, settings)
        zero = {path: path.read_text(encoding="utf-8") for path in lesson_zero_files()}
        zero_wanted = {path: render_lesson_zero(path, text, settings) for path, text in zero.items()}
        if args.check:
            problems = [] if wanted == readme else ["README.md: its launch block, website line or notebooks table is not current"]
            problems += [f"{guide._rel(path)}: its website line (<!-- course:site -->) is not current"
                         for path in zero if zero[path] != zero_wanted[path]]
            problems += guide.readme_problems(readme, lessons, settings)
            for problem in problems:
                print(f"out of date: {problem}", file=sys.stderr)
            if problems:
                print("Regenerate with: .venv/bin/python -m course publish", file=sys.stderr)
                return 1
            print("OK: README.md's launch links, website line and notebooks table, and notebook 00's website line, are current")
            return guide.main(["--check"])
        README.write_text(wanted, encoding="utf-8")
        for path, text in zero_wanted.items():
            if text != zero[path]:
                path.write_text(text, encoding="utf-8")
        print(f"wrote README.md ({'not published yet' if settings.is_placeholder else settings.repository})")
        return guide.main([])
    except (PublishError, guide.GuideError) as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
