"""Lesson 17's exercise check: options that make pytest-sqla's sessions behave like the app's.

The learner's dict becomes the project's ``sqla_session_options`` and the sample app's
``test_animals.py`` runs under pytest-sqla's fixtures, by the real pytest. It must pass with no row
left in the test database; a failure is named by what the run printed (``MissingGreenlet``: the
sessions still expire on commit; a refused option: pytest-sqla's own message).

Technique: the test sessions are made like the application's own sessionmaker
(``expire_on_commit=False``), so a route may read what it committed without lazy I/O.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from course import capstone
from course.database import count_rows
from course.exercise import ExerciseIncomplete, not_attempted


async def check_session_options(options, plugin_project: Path, database_url: str, test_database_url: str) -> None:
    __tracebackhide__ = True
    if options is ...:
        not_attempted("`SESSION_OPTIONS` is still `...`: give the dict `sqla_session_options` should return.")
        return
    if not isinstance(options, dict):
        raise ExerciseIncomplete(f"`SESSION_OPTIONS` is a {type(options).__name__}; the fixture must return a dict of sessionmaker keyword arguments.")
    try:
        encoded = json.dumps(options)
    except TypeError:
        raise ExerciseIncomplete("Keep to plain values (True, False, numbers, strings): the check passes the dict to pytest as JSON.") from None
    if json.loads(encoded) != options:
        raise ExerciseIncomplete("Keep to plain values with string keys: the check passes the dict to pytest as JSON.")
    completed, summary = capstone.pytest_run(
        plugin_project, database_url, "-p", "sqla", "-o", "sqla_schema=none",
        env={"PYTEST_SQLA_URL": test_database_url, "SESSION_OPTIONS": encoded})
    left = {table: n for table, n in (await count_rows(test_database_url)).items() if n}
    output = completed.stdout + completed.stderr
    if left:
        raise ExerciseIncomplete(f"The run left rows behind: {left}.")
    if completed.returncode != 0:
        if "MissingGreenlet" in output:
            value = options.get("expire_on_commit", "missing")
            why = ("your dict has no `expire_on_commit`, so SQLAlchemy's default, True, stays" if value == "missing"
                   else f"`expire_on_commit` is {value!r}, and a non-empty string counts as true" if isinstance(value, str)
                   else f"`expire_on_commit` is {value!r}")
            raise ExerciseIncomplete(
                f"pytest said `{summary}`: the routes still hit `MissingGreenlet` reading what they committed, because "
                f"the sessions still expire every attribute on commit: {why}. The app's own sessionmaker does not expire them.")
        refused = re.search(r"^E?\s*(.*(?:refused|not allowed|cannot).*)$", output, re.M | re.I)
        reason = refused.group(1).strip() if refused else output.strip().splitlines()[-1]
        raise ExerciseIncomplete(f"pytest said `{summary}`: {reason[:300]}")
    if options.get("expire_on_commit") is not False:
        raise ExerciseIncomplete(f"pytest said `{summary}`, but `expire_on_commit` is not False in {options!r}.")
    print(f"Well done: the sample app's tests pass under pytest-sqla's fixtures ({summary}), no row left.")
