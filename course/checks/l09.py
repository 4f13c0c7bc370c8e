"""Lesson 09 (scheduled jobs): broken versions of the expiry job for the exercise.

``check_expiry_test()`` runs the learner's ``test_47_hours_survive_49_hours_expire`` against the
real job (it must pass), then with each mutant installed (it must fail). When the test fails
against the real job because the job opened its own session (``jobs.SessionLocal`` was not
patched), the message says so instead of showing only ``assert [] == [...]``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import timedelta
from unittest.mock import patch

from app import db, jobs
from app.models import Adoption, AnimalStatus
from course.exercise import ExerciseIncomplete, Mutant, check_test

#: -vvv (with the -q of the notebook runs: verbosity 2): pytest prints the failed assertion of the summary line in full, not cut to the terminal width
SUMMARY_IN_FULL = ("-vvv",)

REAL_WORK = jobs.expire_unpaid_reservations


async def expire_younger_ones_too(session, *, now, ttl):
    """The job with a time-to-live two hours short: 46 h instead of 48 h."""
    return await REAL_WORK(session, now=now, ttl=ttl - timedelta(hours=2))


async def expire_but_keep_the_animal_reserved(session, *, now, ttl):
    """Expires the reservations but never makes their animals available again."""
    expired = await REAL_WORK(session, now=now, ttl=ttl)
    for adoption_id in expired:
        adoption = await session.get(Adoption, adoption_id)
        adoption.animal.status = AnimalStatus.RESERVED
    return expired


async def expire_every_reservation(session, *, now, ttl):
    """Ignores the age of the reservations: every unpaid one expires."""
    return await REAL_WORK(session, now=now + timedelta(days=365), ttl=ttl)


def expiry_mutants() -> list[Mutant]:
    return [
        Mutant("the job expires reservations younger than 48 h (46 h are enough for it)",
               lambda: patch.object(jobs, "expire_unpaid_reservations", expire_younger_ones_too),
               hint="the 47-hour reservation must stay reserved"),
        Mutant("the job forgets to make the animal available",
               lambda: patch.object(jobs, "expire_unpaid_reservations", expire_but_keep_the_animal_reserved),
               hint="refresh the expired adoption's animal and check its status"),
        Mutant("the job expires every unpaid reservation, whatever its age",
               lambda: patch.object(jobs, "expire_unpaid_reservations", expire_every_reservation)),
    ]


class JobUsedTheAppsSession(Exception):
    """The learner's test ran the job with the app's own session factory."""


@contextlib.contextmanager
def watching_the_session() -> Iterator[list[bool]]:
    """Record, for each call of ``jobs.run_expiry_job``, whether it used the app's own SessionLocal."""
    own_session: list[bool] = []
    real_entry_point = jobs.run_expiry_job

    async def spy():
        own_session.append(jobs.SessionLocal is db.SessionLocal)
        if own_session[-1]:  # stop here: on SQLite the real job would wait 30 s for the test's write lock
            raise JobUsedTheAppsSession("run_expiry_job() was about to open the app's own session")
        return await real_entry_point()

    with patch.object(jobs, "run_expiry_job", spy):
        yield own_session


def check_expiry_test() -> None:
    """Exercise 1: the learner's test must pass on the real job and fail on each mutant."""
    __tracebackhide__ = True
    with watching_the_session() as own_session:
        try:
            check_test(
                "test_47_hours_survive_49_hours_expire",
                mutants=expiry_mutants(),
                hint="check what the job returns and, after refreshing them, both adoptions and both animals.",
                args=SUMMARY_IN_FULL,
                namespace=sys._getframe(1).f_globals,
            )
        except ExerciseIncomplete as exc:
            if any(own_session) and "fails against the real app" in str(exc):
                raise ExerciseIncomplete(
                    "your test fails against the real job because the job used its own session (patch "
                    "jobs.SessionLocal): a session of the app's own cannot see the reservations your test made in "
                    "its rolled-back transaction (on PostgreSQL the job finds nothing, `assert [] == [...]`; on "
                    "SQLite it waits for the test's write lock and fails with `database is locked`). Add "
                    "`monkeypatch.setattr(jobs, \"SessionLocal\", sessions)` before running the job."
                ) from None
            raise
