"""The one setup every lesson runs first: ``from course.notebook import setup; nb = setup("01")``.

It makes pytest work inside cells the way the reference suite runs (lesson 00 shows why):
tests run in a thread (ipykernel already runs an event loop), a failing test fails
the cell, no ANSI colours end up in saved outputs, and the loop scopes come from the
repository's pyproject.toml like for ``tests/``. Each notebook gets its own database,
``<name>_test_nbNN``, with a fresh schema. Running it again (or the whole notebook again in
the same kernel) gives the same result.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import ipytest
import pytest

from course import database

# Plugins useless inside a cell (or a lesson's pytest process) whose imports (nbformat and
# jsonschema; schemathesis and hypothesis) cost seconds per pytest start: the same three that
# pyproject.toml's addopts turn off for the suite.
PLUGINS_OFF = ("-p", "no:nbval", "-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:sqla")
PYTEST_ARGS = ("-q", "--color=no", "-p", "no:randomly", "-p", "no:cacheprovider", *PLUGINS_OFF,
               "-p", "course.notebook",  # its pytest_runtest_makereport: "the database server went away"
               "-W", "ignore::pytest.PytestAssertRewriteWarning")


@dataclass(frozen=True)
class Lesson:
    number: str
    database_url: str

    @property
    def backend(self) -> str:
        return database.backend(self.database_url)

    def __repr__(self) -> str:  # what the setup cell shows
        return f"Lesson {self.number} on {database.describe(self.database_url)}"


def run_async(coro):
    """Run a coroutine to completion from a notebook cell (whose thread already has a loop)."""
    result: dict = {}

    def target():
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


async def reset_schema(url: str) -> None:
    """Create the app's tables, empty, in the database at ``url``."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.models import Base

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


def setup(number: str, *, traceback: str = "auto") -> Lesson:
    """Configure ipytest, select this notebook's database, give it an empty schema.

    ``traceback`` is pytest's ``--tb`` style for every test run of the notebook: ``"line"``
    reports each failure in one line, where the error text matters more than the stack.
    """
    selected = database.remember_selection()  # the learner's choice, before we repoint it
    url = database.sibling_url(selected, f"nb{number}")
    # `app` reads DATABASE_URL when first imported: point it here before any lesson imports it.
    os.environ["DATABASE_URL"] = url
    try:
        run_async(database.prepare(url, user_url=selected))
    except database.DatabaseUnavailable as exc:
        raise database.DatabaseUnavailable(f"{exc}\nThen restart the kernel and run this cell again.") from None
    run_async(reset_schema(url))
    # ipykernel exports FORCE_COLOR=1, which pytest honours over --color=no in some writers
    # (one-line tracebacks, --tb=line): ANSI codes would end up in stored outputs.
    os.environ["PY_COLORS"] = "0"
    # pytest reports differently on CI (CI or BUILD_NUMBER set: untruncated summaries, full
    # diffs); the stored outputs must not depend on where a notebook runs.
    for variable in ("CI", "BUILD_NUMBER"):
        os.environ.pop(variable, None)
    # A kernel started by a pytest-xdist worker (nbval -n 2) inherits PYTEST_XDIST_WORKER; the
    # pytest runs a lesson starts must not believe they are that worker.
    for variable in [v for v in os.environ if v.startswith("PYTEST_XDIST_")]:
        del os.environ[variable]
    ipytest.autoconfig(run_in_thread=True, raise_on_error=True, addopts=[*PYTEST_ARGS, f"--tb={traceback}"],
                       magics=True, rewrite_asserts=True, clean="[Tt]est*")
    return Lesson(number, url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed because the database server went away (killed, stopped, restarting) says
    so, and stops the run, instead of showing only the driver's error (e.g. asyncpg's
    ``InternalClientError``)."""
    report = yield
    url = os.environ.get("DATABASE_URL", "")
    if call.excinfo is not None and url and database.lost_connection(call.excinfo.value, url):
        message = database.lost_connection_message(url, in_notebook=True)
        report.sections.append(("the database server went away", message))
        item.session.shouldstop = message
    return report


def run_tests(*tests: str, expect: str = "passed", args: Sequence[str] = ()) -> None:
    """Run the named tests of this notebook (all when none is named), *expecting* an outcome.

    ``expect="failed"`` is how a lesson shows a broken test on purpose: pytest's report is
    printed in full, and the cell passes only because the tests really failed; any other
    outcome fails the cell. ``args`` are extra pytest options for this run only, e.g.
    ``["--tb=line"]`` for a one-line report or ``["-o", "ini_option=value"]``.
    """
    codes = {"passed": 0, "failed": 1}
    if expect not in codes:
        raise ValueError(f"expect must be 'passed' or 'failed', not {expect!r}")
    # pytest ends every run with several full gc.collect() passes (its unraisable-exception
    # check); in a kernel holding the app, SQLAlchemy & co. that is ~0.5 s per run. Objects that
    # exist before the run are the notebook's own: freeze them out of those passes.
    gc.freeze()
    code = int(ipytest.run(*args, *(f"{{MODULE}}::{name}" for name in tests), raise_on_error=False))
    if code != codes[expect]:
        raise AssertionError(f"expected the tests to have {expect}, but pytest exited with code {code}")
    print(f"As expected, the tests {expect} (pytest exit code {code}).")
