"""pytest plugin for lesson 16's exercise: run the learner's tests against the app and broken copies.

Loaded by :func:`course.checks.l16.check_adopter_tests` with ``-p course.checks.l16_mutants``.
Every test of the run is parametrized over ``real`` and each broken version ("mutant") named
here; a fixture installs the mutant for its copy of the test only. The outcome of every copy goes
to the JSON file named by ``CAPSTONE_RESULTS``. One pytest process checks everything, so the
check costs one start-up, not one per mutant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pytest

from course.exercise import replace_route


def _routes():
    """The broken routes, imported at the first install: after the conftest chose the database (see l16_routes)."""
    from course.checks import l16_routes

    return l16_routes


@dataclass(frozen=True)
class Mutant:
    description: str
    install: Callable[[object], AbstractContextManager]


MUTANTS = {
    "no_lowercase": Mutant(
        "the route forgets to lower-case e-mails",
        lambda app: replace_route(app, "POST", "/adopters", _routes().create_adopter_without_lowercasing),
    ),
    "case_sensitive": Mutant(
        "duplicate e-mails in another case are accepted",
        lambda app: replace_route(app, "POST", "/adopters", _routes().create_adopter_case_sensitive),
    ),
    "conflict_is_400": Mutant(
        "a duplicate e-mail answers 400 instead of 409",
        lambda app: replace_route(app, "POST", "/adopters", _routes().create_adopter_conflict_is_400),
    ),
    "unknown_is_200": Mutant(
        "unknown ids answer 200",
        lambda app: replace_route(app, "GET", "/adopters/{adopter_id}", _routes().get_adopter_or_a_placeholder),
    ),
}
VARIANTS = ["real", *MUTANTS]
_outcomes: dict[str, dict[str, list]] = {v: {"passed": [], "failed": []} for v in VARIANTS}


def pytest_generate_tests(metafunc):
    metafunc.fixturenames.append("capstone_variant")
    metafunc.parametrize("capstone_variant", VARIANTS)


@pytest.fixture(autouse=True)
def _capstone_mutant(request):
    """Install the mutant of this copy of the test (autouse: set up before the test's own fixtures)."""
    variant = request.node.callspec.params.get("capstone_variant", "real")
    if variant == "real":
        yield variant
        return
    from app.main import app

    with MUTANTS[variant].install(app):
        yield variant


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    variant = getattr(item, "callspec", None) and item.callspec.params.get("capstone_variant")
    if variant in _outcomes:
        name = item.name.replace(f"-{variant}]", "]").replace(f"[{variant}]", "")
        if report.failed:
            crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)[-300:]
            _outcomes[variant]["failed"].append([name, report.when, message.splitlines()[0][:300] if message else ""])
        elif report.when == "call" and report.passed:
            _outcomes[variant]["passed"].append(name)
    return report


_databases: set[str] = set()  # every database a connection was opened on during the run (password hidden)


def _remember_database(conn) -> None:
    url = conn.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        url = url.set(database=os.path.abspath(url.database))
    _databases.add(url.render_as_string(hide_password=True))


def pytest_configure(config):
    """Watch every engine of the run (the conftest's, the app's, any the learner's tests create):
    the leak check counts rows where the tests wrote, not only where the conftest says they should."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "engine_connect", _remember_database)


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("CAPSTONE_RESULTS")
    if path:
        with open(path, "w") as out:
            json.dump({"variants": _outcomes, "descriptions": {k: m.description for k, m in MUTANTS.items()},
                       "databases": sorted(_databases)}, out)
