"""The instructor guide, generated from the lessons themselves: never maintained twice.

``python -m course guide``          writes INSTRUCTOR_GUIDE.md
``python -m course guide --check``  exits 1 when INSTRUCTOR_GUIDE.md (or a Binder link in README.md)
                                    is not what the lessons and the settings make
``python -m course guide --links``  prints the README's Binder badge and per-notebook links
``python -m course guide --memory [NN]``  measures what a kernel holds after running learner
                                    notebook NN (default 00: the number the guide's memory advice quotes)

Sources, each edited in one place only:

* ``lessons/NN_*.py`` (the jupytext sources of ``solutions/`` and ``notebooks/``): the title cell
  ``# NN · Title``; the markdown cell tagged ``overview`` (``**Teaching:** 15 min · **Exercises:**
  10 min``, ``**Prerequisites:** ...``, ``**You will be able to**`` and a bullet list); every cell
  tagged ``instructor``; the cell tagged ``key-points``; exercise and claim-check headings, verdicts
  and quiz questions (see CONTRIBUTING.md, "Anatomy"); deep-dive sections and the core / deep-dive
  minutes, measured by ``course/pacing.py`` (CONTRIBUTING.md, "Pacing").
* ``course/quizzes/NN_*.toml``: each quiz's right letter is the option whose ``course.quiz.digest``
  matches the bank's salted hash (never an ``answer(...)`` call in a lesson: those may be demos of a
  wrong answer).
* ``course/guide_template.md``: the prose (workshops on Binder and JupyterHub, troubleshooting).
* ``binder/course.toml``: where the course is published (repository, branch, BinderHub).
* ``SAVING_YOUR_WORK.md``: the learners' note, included as it is.

A lesson without a title, an overview with minutes and objectives, or key points is an error that
names the lesson and the missing cell; every problem in every lesson is reported at once.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
GUIDE = ROOT / "INSTRUCTOR_GUIDE.md"
TEMPLATE = Path(__file__).with_name("guide_template.md")
SETTINGS = ROOT / "binder" / "course.toml"
SAVING_NOTE = ROOT / "SAVING_YOUR_WORK.md"
README = ROOT / "README.md"
PLACEHOLDER_REPOSITORY = "OWNER/REPO"
FIRST_NOTEBOOK = "00_start_here"

TITLE = re.compile(r"^#\s+(\d\d)\s*·\s*(.+?)\s*$")
MINUTES = {"teaching": re.compile(r"\*\*Teaching:\*\*\s*(\d+)\s*min", re.I),
           "exercises": re.compile(r"\*\*Exercises?:\*\*\s*(\d+)\s*min", re.I)}
PREREQUISITES = re.compile(r"\*\*Prerequisites:\*\*\s*(.+?)\s*(?:\n\s*\n|\Z)", re.S)
OBJECTIVES_HEAD = re.compile(r"^\*\*You will be able to:?\*\*:?\s*$", re.M)
EXERCISE = re.compile(r"^###\s+(Exercise\s+\d+:.*?)\s*$", re.M)
CLAIM = re.compile(r"^###\s+Claim check:\s*(.+?)\s*$", re.M)
VERDICT = re.compile(r"\*\*Verdict:\*\*\s*(.+?)(?:\.\s|\.$|\n\s*\n|\Z)", re.S)
QUIZ = re.compile(r"\*\*Quiz\s+(\d\d\.\d+)\.\*\*\s*(.+?)(?:\n\s*-\s+\*\*[a-z]\)\*\*|\n\s*\n|\Z)", re.S)
OPTION = re.compile(r"^\s*-\s+\*\*([a-z])\)\*\*", re.M)
BANK_DIR = Path(__file__).with_name("quizzes")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
BINDER_LINK = re.compile(r"https://[^\s)\"'>\]]*/v2/gh/[^\s)\"'>\]]+")


class GuideError(Exception):
    """The lessons or the settings cannot make a guide; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Lesson:
    stem: str  # 00_start_here
    number: str
    title: str
    teaching: int
    exercises: int
    prerequisites: str
    objectives: list[str]
    key_points: list[str]
    instructor_notes: list[str] = field(default_factory=list)
    exercise_titles: list[str] = field(default_factory=list)
    claim_checks: list[tuple[str, str]] = field(default_factory=list)
    quizzes: list[tuple[str, str, str]] = field(default_factory=list)  # id, question, answer
    core_minutes: float = 0.0  # computed by course/pacing.py
    deep_minutes: float = 0.0
    deep_dives: list[str] = field(default_factory=list)

    @property
    def minutes(self) -> int:
        return self.teaching + self.exercises


@dataclass(frozen=True)
class Settings:
    repository: str
    branch: str
    binderhub: str

    @property
    def is_placeholder(self) -> bool:
        return self.repository == PLACEHOLDER_REPOSITORY

    @property
    def repo_name(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    @property
    def git_url(self) -> str:
        return f"https://github.com/{self.repository}"

    @property
    def site_url(self) -> str | None:
        """The course website's address on GitHub Pages (None while the repository is the placeholder)."""
        if self.is_placeholder:
            return None
        owner, name = self.repository.split("/", 1)
        if name.lower() == f"{owner.lower()}.github.io":
            return f"https://{owner.lower()}.github.io/"
        return f"https://{owner.lower()}.github.io/{name}/"

    def binder_url(self, stem: str = FIRST_NOTEBOOK) -> str:
        return f"{self.binderhub.rstrip('/')}/v2/gh/{self.repository}/{self.branch}?urlpath=lab/tree/notebooks/{stem}.ipynb"

    def nbgitpuller_url(self, hub: str = "https://hub.example.org", stem: str = FIRST_NOTEBOOK) -> str:
        """nbgitpuller clones into ~/<repo name>, then opens ``urlpath`` (all values URL-encoded)."""
        urlpath = f"lab/tree/{self.repo_name}/notebooks/{stem}.ipynb"
        return (f"{hub.rstrip('/')}/hub/user-redirect/git-pull?repo={quote(self.git_url, safe='')}"
                f"&branch={quote(self.branch, safe='')}&urlpath={quote(urlpath, safe='')}")


# --- reading ---------------------------------------------------------------------------------------

def load_settings(path: Path | None = None) -> Settings:
    path = path or SETTINGS
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return Settings(repository=raw["repository"], branch=raw.get("branch", "main"),
                        binderhub=raw.get("binderhub", "https://mybinder.org"))
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise GuideError([f"{_rel(path)}: cannot read the publishing settings ({exc!r})"]) from None


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _bullets(markdown: str) -> list[str]:
    """Top-level ``-``/``*`` items of a markdown list, continuation lines joined."""
    items: list[str] = []
    for line in markdown.splitlines():
        if re.match(r"^[-*]\s+", line):
            items.append(re.sub(r"^[-*]\s+", "", line).strip())
        elif items and line.startswith((" ", "\t")) and line.strip():
            items[-1] += " " + line.strip()
        elif items and not line.strip():
            continue
        elif items:
            break
    return items


def _demote_headings(markdown: str, top: int = 4) -> str:
    """Shift the headings of an instructor cell so they nest under the guide's own headings."""
    lines, fenced = markdown.splitlines(), False
    levels = []
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^(#{1,6})\s", line)):
            levels.append(len(m.group(1)))
    if not levels:
        return markdown
    shift, out, fenced = max(0, top - min(levels)), [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6}\s", line):
            line = "#" * shift + line
        out.append(line)
    return "\n".join(out)


def _one_line(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _how_many(cells: list) -> str:
    return "no markdown cell" if not cells else f"{len(cells)} markdown cells"


def bank_answers(stem: str, bank_dir: Path | None = None) -> tuple[dict[str, str | None], list[str]]:
    """Each quiz's right letter (``{"05.1": "b"}``, None where no option matches), and the problems.

    The letters tried are the keys of the quiz's feedback table (one per option).
    """
    from course.quiz import digest

    path = (bank_dir or BANK_DIR) / f"{stem}.toml"
    number = stem[:2]
    if not path.exists():
        return {}, []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"{_rel(path)}: not valid TOML ({exc})"]
    answers, problems = {}, []
    for key, entry in raw.items():
        qid = f"{number}.{key}"
        letters = sorted(k.lower() for k in (entry.get("feedback") or {}))
        right = [letter for letter in letters if digest(qid, letter) == entry.get("answer")]
        answers[qid] = right[0] if len(right) == 1 else None
        if answers[qid] is None:
            problems.append(f"{_rel(path)}: quiz {qid}'s answer hash matches none of its options "
                            f"({', '.join(letters) or 'no feedback table'}); set it with "
                            f".venv/bin/python -m course quiz-hash {qid} <letter>")
    return answers, problems


def read_lesson(path: Path, bank_dir: Path | None = None) -> tuple[Lesson | None, list[str]]:
    """The guide's view of one lesson, or the problems that prevent it."""
    import jupytext

    from course import pacing

    name = _rel(path)
    nb = jupytext.read(path)
    problems: list[str] = []

    def tagged(tag: str):
        return [c for c in nb.cells if tag in c.metadata.get("tags", [])]

    first = nb.cells[0] if nb.cells else None
    title = TITLE.match(first.source.splitlines()[0]) if first and first.cell_type == "markdown" and first.source else None
    if not title:
        problems.append(f"{name}: the first cell must be the markdown title '# NN · Title'")
    elif title.group(1) != path.name[:2]:
        problems.append(f"{name}: the title says {title.group(1)}, the file name {path.name[:2]}")

    overview = tagged("overview")
    teaching = exercises = 0
    prerequisites, objectives = "", []
    if len(overview) != 1:
        problems.append(f"{name}: {_how_many(overview)} tagged 'overview' "
                        "(expected one: '**Teaching:** 15 min · **Exercises:** 10 min', '**Prerequisites:** ...', "
                        "'**You will be able to**' and a bullet list; CONTRIBUTING.md, Anatomy)")
    else:
        text = overview[0].source
        found = {k: rx.search(text) for k, rx in MINUTES.items()}
        for key, match in found.items():
            if not match:
                problems.append(f"{name}: the 'overview' cell has no '**{key.capitalize()}:** N min'")
        teaching = int(found["teaching"].group(1)) if found["teaching"] else 0
        exercises = int(found["exercises"].group(1)) if found["exercises"] else 0
        if m := PREREQUISITES.search(text):
            prerequisites = _one_line(m.group(1), 400)
        head = OBJECTIVES_HEAD.search(text)
        objectives = _bullets(text[head.end():]) if head else []
        if not objectives:
            problems.append(f"{name}: the 'overview' cell has no objectives ('**You will be able to**' then a bullet list)")

    key_cells = tagged("key-points")
    key_points = _bullets(key_cells[0].source) if len(key_cells) == 1 else []
    if len(key_cells) != 1:
        problems.append(f"{name}: {_how_many(key_cells)} tagged 'key-points' "
                        "(expected one: '## Key points', bullets, '**Next:** ...')")
    elif not key_points:
        problems.append(f"{name}: the 'key-points' cell has no bullet list")

    if problems:
        return None, problems

    markdown = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    notes = []
    for cell in tagged("instructor"):
        source = cell.source.strip()
        notes.append(_demote_headings(source) if cell.cell_type == "markdown" else f"```python\n{source}\n```")
    claims = []
    for match in CLAIM.finditer(markdown):
        following = markdown[match.end():]
        next_claim = CLAIM.search(following)
        verdict = VERDICT.search(following[: next_claim.start()] if next_claim else following)
        claims.append((match.group(1), _one_line(verdict.group(1)) if verdict else "(no verdict found)"))
    answers, bank_problems = bank_answers(path.stem, bank_dir)
    quizzes = []
    for qid, question in QUIZ.findall(markdown):
        if qid not in answers:
            bank_problems.append(f"{name}: quiz {qid} has no entry in course/quizzes/{path.stem}.toml")
        if not answers.get(qid):
            continue
        quizzes.append((qid, _one_line(question, 160), answers[qid]))
    if bank_problems:
        return None, bank_problems
    pace = pacing.measure(path)
    return Lesson(stem=path.stem, number=title.group(1), title=title.group(2), teaching=teaching,
                  exercises=exercises, prerequisites=prerequisites, objectives=objectives,
                  key_points=key_points, instructor_notes=notes,
                  exercise_titles=EXERCISE.findall(markdown), claim_checks=claims, quizzes=quizzes,
                  core_minutes=pace.core.total, deep_minutes=pace.deep.total, deep_dives=pace.deep_dives), []


def read_lessons(lessons_dir: Path | None = None, bank_dir: Path | None = None) -> list[Lesson]:
    lessons_dir = lessons_dir or LESSONS
    paths = sorted(lessons_dir.glob("[0-9][0-9]_*.py"))
    if not paths:
        raise GuideError([f"{_rel(lessons_dir)}: no lessons (NN_*.py)"])
    lessons, problems = [], []
    for path in paths:
        lesson, found = read_lesson(path, bank_dir)
        problems += found
        if lesson:
            lessons.append(lesson)
    if problems:
        raise GuideError(problems)
    return lessons


# --- writing ---------------------------------------------------------------------------------------

def _clock(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _whole(minutes: float) -> int:
    return int(minutes + 0.5)


@dataclass(frozen=True)
class Day:
    """A workshop day: where it starts, how long it lasts, its breaks."""

    name: str
    start: int  # minutes after midnight
    length: int  # minutes, breaks included
    break_every: int = 90  # at most this long between two breaks
    break_minutes: int = 10
    lunch_minutes: int = 0  # taken at the first break after half the day


ONE_DAY = Day("One day (6 h with breaks)", start=9 * 60, length=360, lunch_minutes=45)
HALF_DAY = Day("Half a day (3 h 30 with one break)", start=9 * 60, length=210, break_every=120, break_minutes=15)


def _time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _round_up(minutes: float, step: int = 5) -> int:
    return max(step, -(-int(minutes + 0.999) // step) * step)


def day_path(lessons: list[Lesson], day: Day) -> str:
    """A timetable through the core sections of the lessons, in order, until the day is full.

    Each lesson gets its core minutes (course/pacing.py) rounded up to 5; a break goes in between two
    lessons whenever the next one would run past ``break_every`` minutes without one.
    """
    end = day.start + day.length
    rows = ["| time | | minutes | skip (deep dives) |", "|---|---|--:|---|"]
    clock, since_break, lunch_taken, taught = day.start, 0, day.lunch_minutes == 0, []
    for lesson in lessons:
        minutes = _round_up(lesson.core_minutes)
        if since_break and since_break + minutes > day.break_every:
            is_lunch = not lunch_taken and clock >= day.start + day.length // 2 - 60
            pause = day.lunch_minutes if is_lunch else day.break_minutes
            if clock + pause + minutes > end:
                break
            rows.append(f"| {_time(clock)} | *{'lunch' if is_lunch else 'break'}* | {pause} | |")
            clock, since_break, lunch_taken = clock + pause, 0, lunch_taken or is_lunch
        if clock + minutes > end:
            break
        skip = "; ".join(lesson.deep_dives) or "—"
        rows.append(f"| {_time(clock)} | {lesson.number} · {lesson.title} (core) | {minutes} | {skip} |")
        clock, since_break = clock + minutes, since_break + minutes
        taught.append(lesson)
    rows.append(f"| {_time(clock)} | *end* | | |")
    left = [f"{x.number} · {x.title}" for x in lessons if x not in taught]
    after = (f"\n\nNot in this path (learners take them on their own, from the notebooks): {', '.join(left)}."
             if left else "\n\nEvery notebook fits, core sections only.")
    return f"**{day.name}**, {_time(day.start)} to {_time(end)}:\n\n" + "\n".join(rows) + after


def schedule_table(lessons: list[Lesson], settings: Settings) -> str:
    rows = ["| # | Notebook | Teaching | Exercises | Total | Running total (h:mm) | Core / deep dives (computed) | Binder |",
            "|---|---|--:|--:|--:|--:|--:|---|"]
    running = 0
    for lesson in lessons:
        running += lesson.minutes
        rows.append(f"| {lesson.number} | [{lesson.title}](notebooks/{lesson.stem}.ipynb) | {lesson.teaching} min "
                    f"| {lesson.exercises} min | {lesson.minutes} min | {_clock(running)} "
                    f"| {_whole(lesson.core_minutes)} / {_whole(lesson.deep_minutes)} min "
                    f"| [launch]({settings.binder_url(lesson.stem)}) |")
    teaching = sum(lesson.teaching for lesson in lessons)
    exercises = sum(lesson.exercises for lesson in lessons)
    rows.append(f"| | **All {len(lessons)} notebooks** | **{teaching} min** | **{exercises} min** "
                f"| **{teaching + exercises} min** | **{_clock(teaching + exercises)}** "
                f"| **{_whole(sum(x.core_minutes for x in lessons))} / {_whole(sum(x.deep_minutes for x in lessons))} min** | |")
    return "\n".join(rows)


EXERCISES = Path(__file__).with_name("exercises.toml")
ANSWERS = ROOT / "tests" / "exercise_answers"


def exercise_checks() -> dict[str, list[tuple[str, str, list[str]]]]:
    """Per lesson: each exercise's name, the technique its check proves, and the messages its wrong answers get."""
    if not EXERCISES.exists():
        return {}
    out: dict[str, list[tuple[str, str, list[str]]]] = {}
    for entry in tomllib.loads(EXERCISES.read_text(encoding="utf-8"))["exercise"]:
        answers = ANSWERS / f"{entry['lesson']}.toml"
        wrong = tomllib.loads(answers.read_text(encoding="utf-8")).get("wrong", []) if answers.exists() else []
        rejects = [w["expect"] for w in wrong if w["exercise"] == entry["name"]]
        out.setdefault(entry["lesson"], []).append((entry["name"], entry["technique"], rejects))
    return out


def lesson_section(lesson: Lesson, settings: Settings) -> str:
    out = [f"### {lesson.number} · {lesson.title}", "",
           f"**Teaching:** {lesson.teaching} min · **Exercises:** {lesson.exercises} min · "
           f"[learner notebook](notebooks/{lesson.stem}.ipynb) · [solution](solutions/{lesson.stem}.ipynb) · "
           f"[source](lessons/{lesson.stem}.py) · [on Binder]({settings.binder_url(lesson.stem)})", ""]
    if lesson.prerequisites:
        out += [f"**Prerequisites:** {lesson.prerequisites}", ""]
    out += [f"**Core:** {_whole(lesson.core_minutes)} min · **deep dives:** {_whole(lesson.deep_minutes)} min "
            "(computed by the pacing rule)" + (": skip " + "; ".join(f"*{d}*" for d in lesson.deep_dives)
                                              + " in a short workshop" if lesson.deep_dives else ""), ""]
    out += ["**Learners will be able to**", "", *[f"- {o}" for o in lesson.objectives], ""]
    if lesson.instructor_notes:
        # No label of our own when the notes already open with one ("**Instructor notes (...)**").
        if not all(note.lstrip("*# ").lower().startswith("instructor note") for note in lesson.instructor_notes):
            out += ["**Instructor notes**", ""]
        for note in lesson.instructor_notes:
            out += [note, ""]
    if lesson.exercise_titles:
        out += ["**Exercises** (worked answers in the solution notebook)", "",
                *[f"- {e}" for e in lesson.exercise_titles], ""]
    if checks := exercise_checks().get(lesson.number):
        out += ["**What each exercise check proves** (`course/exercises.toml`; the wrong answers are in "
                f"`tests/exercise_answers/{lesson.number}.toml`, the learner path proves each rejected with a message containing the text quoted)", ""]
        for name, technique, rejects in checks:
            out += [f"- `{name}`: {technique}. Rejects: " + "; ".join(f"“{r}”" for r in rejects) + "."]
        out += [""]
    if lesson.claim_checks:
        out += ["**Claim checks**", "", *[f"- {claim} — *verdict:* {verdict}" for claim, verdict in lesson.claim_checks], ""]
    if lesson.quizzes:
        out += ["**Quizzes** (the right option; the feedback for each option is in "
                f"`course/quizzes/{lesson.stem}.toml`)", "",
                *[f"- **{qid}** {question} → **{ans}**" for qid, question, ans in lesson.quizzes], ""]
    out += ["**Key points**", "", *[f"- {k}" for k in lesson.key_points], ""]
    return "\n".join(out).rstrip() + "\n"


def links_markdown(lessons: list[Lesson], settings: Settings) -> str:
    """The README's Binder badge and one launch link per notebook."""
    rows = [f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({settings.binder_url()})", "",
            "| # | notebook | launch on Binder |", "|---|---|---|"]
    rows += [f"| {lesson.number} | [{lesson.title}](notebooks/{lesson.stem}.ipynb) "
             f"| [![Binder](https://mybinder.org/badge_logo.svg)]({settings.binder_url(lesson.stem)}) |"
             for lesson in lessons]
    return "\n".join(rows) + "\n"


def site_sentence(settings: Settings) -> str:
    """Where to read the course as a website: the same words in README.md, notebook 00 and this guide."""
    if settings.site_url:
        return (f"**The course as a website:** <{settings.site_url}>: every lesson with its outputs, the error "
                "index, setup, glossary; nothing to install.")
    return ("**The course as a website:** not published yet. `.venv/bin/python -m course site` builds it into "
            "`_build/site/` (open `index.html`); `python -m course publish OWNER/NAME` gives it its address, "
            "https://OWNER.github.io/NAME/.")
def _workshop_path(name: str) -> str:
    """The workshop cut of course/workshop.toml (the same one its run sheet shows)."""
    from course import workshop

    try:
        return workshop.guide_path(name)
    except workshop.WorkshopError as exc:
        raise GuideError(exc.problems) from None


def render(lessons: list[Lesson], settings: Settings, template: str, saving_note: str) -> str:
    placeholder_note = (
        f"> **Not published yet:** `binder/course.toml` still names the placeholder repository "
        f"`{PLACEHOLDER_REPOSITORY}`, so the Binder and nbgitpuller links below do not work. Set it, then "
        "run `python -m course guide`.\n" if settings.is_placeholder else "")
    total = sum(lesson.minutes for lesson in lessons)
    values = {
        "placeholder_note": placeholder_note,
        "site": site_sentence(settings),
        "repository": settings.repository,
        "repo_name": settings.repo_name,
        "branch": settings.branch,
        "git_url": settings.git_url,
        "binderhub": settings.binderhub.rstrip("/"),
        "binder_url": settings.binder_url(),
        "nbgitpuller_url": settings.nbgitpuller_url(),
        "lesson_count": str(len(lessons)),
        "total_minutes": str(total),
        "total_clock": _clock(total),
        "schedule": schedule_table(lessons, settings),
        "one_day_path": _workshop_path("one-day"),
        "half_day_path": _workshop_path("half-day"),
        "lessons": "\n".join(lesson_section(lesson, settings) for lesson in lessons).rstrip(),
        # The note's own title ("# Saving your work") is the template's heading already.
        "saving_your_work": _demote_headings(re.sub(r"\A#\s[^\n]*\n+", "", saving_note.strip()), top=3),
    }
    unknown = sorted({m.group(1) for m in PLACEHOLDER.finditer(template)} - values.keys())
    if unknown:
        raise GuideError([f"{_rel(TEMPLATE)}: unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(sorted(values))}"])
    body = PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    header = ("<!-- Generated by `python -m course guide` from lessons/*.py, course/guide_template.md, "
              "binder/course.toml and SAVING_YOUR_WORK.md. Do not edit: edit those, then regenerate. -->\n\n")
    return header + re.sub(r"\n{3,}", "\n\n", body).rstrip() + "\n"


def build_guide() -> str:
    settings = load_settings()
    lessons = read_lessons()
    return render(lessons, settings, TEMPLATE.read_text(encoding="utf-8"), SAVING_NOTE.read_text(encoding="utf-8"))


def readme_problems(readme: str, lessons: list[Lesson], settings: Settings) -> list[str]:
    """Binder links in the README that the settings and the lessons do not make (stale or mistyped)."""
    wanted = {settings.binder_url()} | {settings.binder_url(lesson.stem) for lesson in lessons}
    return [f"README.md: Binder link {url} is not current (see: python -m course guide --links)"
            for url in sorted(set(BINDER_LINK.findall(readme))) if url not in wanted]


def measure_kernel_memory(stem: str = FIRST_NOTEBOOK) -> dict[str, float]:
    """Memory (MiB) of a fresh kernel and of the same kernel after running a learner notebook.

    RSS counts shared libraries in full; PSS shares them out between the processes that map
    them, which is closer to what a Binder session's limit sees. Kernel and its children.
    """
    import nbformat
    import psutil
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / f"{stem}.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})

    def sample(process) -> tuple[float, float]:
        processes = [process, *process.children(recursive=True)]
        infos = [p.memory_full_info() for p in processes]
        return sum(i.rss for i in infos) / 2**20, sum(getattr(i, "pss", i.rss) for i in infos) / 2**20

    with client.setup_kernel():
        kernel = psutil.Process(client.km.provisioner.process.pid)
        fresh = sample(kernel)
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        after = sample(kernel)
    errors = sum(1 for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error")
    return {"fresh_rss": fresh[0], "fresh_pss": fresh[1], "rss": after[0], "pss": after[1], "errors": errors}


def main(args: list[str]) -> int:
    mode = args[0] if args else ""
    if mode not in {"", "--check", "--links", "--memory"} or len(args) > (2 if mode == "--memory" else 1):
        print("usage: python -m course guide [--check | --links | --memory [NN]]", file=sys.stderr)
        return 2
    if mode == "--memory":
        from course.database import describe, selected_url

        wanted = args[1] if len(args) > 1 else FIRST_NOTEBOOK[:2]
        stems = sorted(p.stem for p in (ROOT / "notebooks").glob(f"{wanted[:2]}_*.ipynb"))
        if len(stems) != 1:
            print(f"no single learner notebook notebooks/{wanted[:2]}_*.ipynb", file=sys.stderr)
            return 2
        m = measure_kernel_memory(stems[0])
        print(f"kernel after running notebooks/{stems[0]}.ipynb on {describe(selected_url())}: {m['rss']:.0f} MiB resident "
              f"(RSS), {m['pss']:.0f} MiB proportional (PSS); fresh kernel {m['fresh_rss']:.0f} / {m['fresh_pss']:.0f} MiB; "
              f"{m['errors']} cell error(s)")
        return 0 if not m["errors"] else 1
    try:
        if mode == "--links":
            settings = load_settings()
            if settings.is_placeholder:
                print(f"warning: binder/course.toml still names the placeholder {PLACEHOLDER_REPOSITORY}", file=sys.stderr)
            print(links_markdown(read_lessons(), settings), end="")
            return 0
        guide = build_guide()
    except GuideError as exc:
        print("The instructor guide cannot be generated:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if mode == "--check":
        problems = []
        if not GUIDE.exists() or GUIDE.read_text(encoding="utf-8") != guide:
            problems.append(f"{_rel(GUIDE)} is not current")
        if README.exists():
            problems += readme_problems(README.read_text(encoding="utf-8"), read_lessons(), load_settings())
        for problem in problems:
            print(f"out of date: {problem}", file=sys.stderr)
        if problems:
            print("Regenerate with: .venv/bin/python -m course guide", file=sys.stderr)
            return 1
        print(f"OK: {_rel(GUIDE)} is current")
        return 0
    GUIDE.write_text(guide, encoding="utf-8")
    print(f"wrote {_rel(GUIDE)}")
    return 0
