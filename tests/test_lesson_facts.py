"""Every option value the course names is one the pinned libraries accept: the library is asked.

Scanned: lesson sources (prose, code, comments), quiz banks (feedback), exercise checks (hints),
README.md, CONTRIBUTING.md, the guide template, the error registry and tests/isolation.py. Named
values found there:

* SQLAlchemy join modes: ``join_transaction_mode="..."`` and any quoted ``"..._savepoint"``,
  ``"rollback_only"``, ``"control_fully"`` (except the names of SQLAlchemy's connection events,
  ``"release_savepoint"`` and co.): a ``Session`` is built with the value;
* ``isolation_level="..."``: a SQLite engine connects with it, or the PostgreSQL dialect lists it;
* ``expire_on_commit=...``: True or False;
* pytest-asyncio: ``loop_scope="..."``, ``asyncio_default_(fixture|test)_loop_scope = ...`` (ini,
  ``-o``) go through pytest-asyncio's own scope validation; ``asyncio_mode`` through its ``Mode``;
  every ``asyncio_*`` ini name must be one pytest-asyncio registers;
* FastAPI ``Depends(..., scope="...")``: the values of the ``scope`` parameter's ``Literal``.

A failure names the file and line, the value, and what the library accepts.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import MagicMock

import fastapi.params
import pytest
import pytest_asyncio.plugin
import sqlalchemy
import sqlalchemy.events
from sqlalchemy import create_engine
from sqlalchemy.dialects.postgresql.asyncpg import dialect as postgresql_dialect
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "lessons").glob("*.py")), *sorted((ROOT / "course" / "quizzes").glob("*.toml")),
           *sorted((ROOT / "course" / "checks").glob("*.py")),
           ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "course" / "guide_template.md",
           ROOT / "course" / "errors.toml", ROOT / "tests" / "isolation.py"]

Q = r"""\\?["'`]"""  # an opening quote, escaped or not (TOML strings hold \")
PATTERNS = {
    "join_transaction_mode": [re.compile(rf"join_transaction_mode\s*=\s*{Q}(\w+)"),
                              re.compile(r"""["'`](\w+_savepoint|rollback_only|control_fully)\\?["'`]""")],
    "isolation_level": [re.compile(rf"isolation_level\s*=\s*{Q}([\w ]+?)\\?[\"'`]")],
    "expire_on_commit": [re.compile(r"expire_on_commit\s*=\s*(\w+)")],
    "loop_scope": [re.compile(rf"\bloop_scope\s*=\s*{Q}(\w+)")],
    "asyncio_default_loop_scope": [re.compile(rf"asyncio_default_(?:fixture|test)_loop_scope\s*=\s*(?:{Q})?(\w+)")],
    "asyncio_mode": [re.compile(rf"asyncio_mode\s*=\s*(?:{Q})?(\w+)")],
    "asyncio_ini_name": [re.compile(r"\b(asyncio_[a-z_]+)\s*=")],
    "Depends_scope": [re.compile(rf"Depends\([^()]*?\bscope\s*=\s*{Q}(\w+)")],
}


# Quoted names ending in _savepoint that are SQLAlchemy connection events, not join modes.
CONNECTION_EVENTS = {name for name in dir(sqlalchemy.events.ConnectionEvents) if not name.startswith("_")}


@dataclass(frozen=True)
class Mention:
    file: str
    line: int
    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind} {self.value!r}"


def mentions(paths=SOURCES) -> list[Mention]:
    found = []
    for path in paths:
        if not path.exists():
            continue
        rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for kind, patterns in PATTERNS.items():
                values = {m.group(1) for rx in patterns for m in rx.finditer(line)}
                if kind == "join_transaction_mode":  # "release_savepoint" and co. are event names
                    values -= CONNECTION_EVENTS
                found += [Mention(rel, number, kind, value) for value in sorted(values)]
    return found


# --- what the pinned libraries accept (asked, not typed in) ------------------------------------------

def join_mode_problem(value: str) -> str | None:
    try:
        Session(join_transaction_mode=value)
    except ArgumentError as exc:
        accepted = ", ".join(typing.get_args(sqlalchemy.orm.session.JoinTransactionMode))
        return f"SQLAlchemy {sqlalchemy.__version__} refuses it ({exc}); accepted: {accepted}"
    return None


def isolation_level_problem(value: str) -> str | None:
    postgresql = postgresql_dialect().get_isolation_level_values(None)
    if value in postgresql:
        return None
    engine = create_engine("sqlite://", isolation_level=value)
    try:
        with engine.connect():
            return None
    except ArgumentError as exc:
        return f"neither SQLite nor PostgreSQL accept it ({exc}; PostgreSQL: {', '.join(postgresql)})"
    finally:
        engine.dispose()


def scope_problem(value: str) -> str | None:
    try:
        pytest_asyncio.plugin._validate_scope(value, "loop scope")
    except pytest.UsageError as exc:
        return f"pytest-asyncio refuses it: {exc}"
    return None


def asyncio_mode_problem(value: str) -> str | None:
    modes = [mode.value for mode in pytest_asyncio.plugin.Mode]
    return None if value in modes else f"pytest-asyncio's modes are {', '.join(modes)}"


class _IniNames:
    """Collects the ini names a plugin registers, through pytest's own hook."""

    def __init__(self):
        self.names: set[str] = set()

    def addini(self, name, *args, **kwargs):
        self.names.add(name)

    def getgroup(self, *args, **kwargs):
        return self

    def addoption(self, *args, **kwargs):
        pass


def asyncio_ini_name_problem(value: str) -> str | None:
    parser = _IniNames()
    pytest_asyncio.plugin.pytest_addoption(parser, pluginmanager=MagicMock())  # it registers hook specs there
    known = sorted(n for n in parser.names if n.startswith("asyncio_"))
    return None if value in parser.names else f"pytest-asyncio has no such ini option; it has {', '.join(known)}"


def depends_scope_problem(value: str) -> str | None:
    hint = typing.get_type_hints(fastapi.params.Depends.__init__)["scope"]
    accepted = [v for arg in typing.get_args(hint) for v in typing.get_args(arg)]
    return None if value in accepted else f"FastAPI's Depends(scope=...) accepts {', '.join(map(repr, accepted))}"


def expire_on_commit_problem(value: str) -> str | None:
    return None if value in {"True", "False"} else "it is a bool: True or False"


CHECKS = {
    "join_transaction_mode": join_mode_problem,
    "isolation_level": isolation_level_problem,
    "expire_on_commit": expire_on_commit_problem,
    "loop_scope": scope_problem,
    "asyncio_default_loop_scope": scope_problem,
    "asyncio_mode": asyncio_mode_problem,
    "asyncio_ini_name": asyncio_ini_name_problem,
    "Depends_scope": depends_scope_problem,
}


def problems(found: list[Mention]) -> list[str]:
    out = []
    for mention in found:
        if why := CHECKS[mention.kind](mention.value):
            out.append(f"{mention} is not accepted: {why}")
    return out


# --- the guard -----------------------------------------------------------------------------------------

def test_every_option_value_the_course_names_is_accepted_by_the_pinned_libraries():
    found = mentions()

    assert not (wrong := problems(found)), "\n" + "\n".join(wrong)


def test_the_scan_finds_the_option_values_the_lessons_rely_on():
    """A guard that finds nothing guards nothing: the course names these values today."""
    kinds = {(m.kind, m.value) for m in mentions()}

    assert ("join_transaction_mode", "create_savepoint") in kinds
    assert ("loop_scope", "session") in kinds
    assert {kind for kind, _ in kinds} >= {"join_transaction_mode", "loop_scope", "asyncio_default_loop_scope"}


# --- negative controls: each check refuses a wrong value, and names file and line --------------------

@pytest.mark.parametrize(("kind", "right", "wrong"), [
    ("join_transaction_mode", "conditional_savepoint", "conservative_savepoint"),
    ("isolation_level", "REPEATABLE READ", "REPEATABLE_READS"),
    ("expire_on_commit", "False", "no"),
    ("loop_scope", "session", "test"),
    ("asyncio_mode", "auto", "automatic"),
    ("asyncio_ini_name", "asyncio_default_fixture_loop_scope", "asyncio_default_loop_scope"),
    ("Depends_scope", "request", "response"),
])
def test_each_check_accepts_the_real_value_and_refuses_a_wrong_one(kind, right, wrong):
    assert CHECKS[kind](right) is None
    assert CHECKS[kind](wrong)


def test_a_wrong_join_mode_in_prose_or_feedback_is_reported_with_file_and_line(tmp_path):
    lesson = tmp_path / "lesson.py"
    lesson.write_text('# fine: `join_transaction_mode="create_savepoint"`, events ("savepoint", "rollback_savepoint")\n'
                      '# In the default join mode (`"conservative_savepoint"`) a session ...\n', encoding="utf-8")
    bank = tmp_path / "bank.toml"
    bank.write_text('b = "In the default mode (\\"conservative_savepoint\\") the session ..."\n'
                    'c = "Depends(get_session, scope=\\"response\\") and loop_scope=\'test\'"\n', encoding="utf-8")

    report = problems(mentions([lesson, bank]))

    assert len(report) == 4, report
    assert report[0].startswith(f"{lesson}:2: join_transaction_mode 'conservative_savepoint' is not accepted: "
                                "SQLAlchemy") and "conditional_savepoint" in report[0]
    assert report[1].startswith(f"{bank}:1: join_transaction_mode 'conservative_savepoint'")
    assert any(r.startswith(f"{bank}:2: Depends_scope 'response'") for r in report)
    assert any(r.startswith(f"{bank}:2: loop_scope 'test'") for r in report)
