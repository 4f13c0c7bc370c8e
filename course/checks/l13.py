"""Lesson 13 (scheduled jobs): broken versions of the expiry job for the exercise.

``check_expiry_test()`` runs the learner's ``test_47_hours_survive_49_hours_expire`` against the
real job (it must pass), then with each mutant installed (it must fail). When the test fails
against the real job because the job opened its own session (``jobs.SessionLocal`` was not
patched), the message says so instead of showing only ``assert [] == [...]``.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
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


REAL_UTCNOW = jobs.utcnow


def clock_controlled() -> bool:
    """True while time-machine travels (any travel) or while ``jobs.utcnow`` is replaced."""
    import time_machine

    return bool(getattr(time_machine, "traveller_stack", None)) or jobs.utcnow is not REAL_UTCNOW


@dataclass
class EntryPointCall:
    own_session: bool  # jobs.SessionLocal was still the app's own factory
    clock: bool  # the clock was under the test's control


@contextlib.contextmanager
def watching_the_session() -> Iterator[list[EntryPointCall]]:
    """Record each call of ``jobs.run_expiry_job``: whether it used the app's own SessionLocal, whether the clock was controlled."""
    calls: list[EntryPointCall] = []
    real_entry_point = jobs.run_expiry_job

    async def spy():
        calls.append(EntryPointCall(own_session=jobs.SessionLocal is db.SessionLocal, clock=clock_controlled()))
        if calls[-1].own_session:  # stop here: on SQLite the real job would wait 30 s for the test's write lock
            raise JobUsedTheAppsSession("run_expiry_job() was about to open the app's own session")
        return await real_entry_point()

    with patch.object(jobs, "run_expiry_job", spy):
        yield calls


ENTRY_POINT_NEVER_RUN = (
    "your test never called `jobs.run_expiry_job()`: it ran the job's work function (or its own query) with a "
    "`now` it chose. That is a fine test of `expire_unpaid_reservations`, but this exercise is about the entry "
    "point the scheduler calls, which reads the real clock and opens its own session: run `await "
    "jobs.run_expiry_job()` inside `with time_machine.travel(NOW, tick=False):`, after "
    "`monkeypatch.setattr(jobs, \"SessionLocal\", sessions)`."
)
CLOCK_NOT_CONTROLLED = (
    "your test ran `jobs.run_expiry_job()` on the real clock (no `time_machine.travel`, `jobs.utcnow` not replaced), "
    "with reservations dated from today: it passes, but what it checks moves with the day it runs, and a run "
    "that straddles a boundary fails once. This exercise is about controlling the clock: date the reservations "
    "from `NOW` and run the job inside `with time_machine.travel(NOW, tick=False):`."
)


def check_expiry_test() -> None:
    """Exercise 1: the learner's test must pass on the real job and fail on each mutant.

    Technique: the job's entry point run under a controlled clock and the test's session factory.
    Mutants catch weak assertions; the spy on ``run_expiry_job`` catches a test that never calls
    the entry point, that leaves the app's session factory in place, or that leaves the clock running.
    """
    __tracebackhide__ = True
    with watching_the_session() as calls:

        def how_the_job_ran(when: str) -> str | None:
            if when != "against the real app":
                return None
            if not calls:
                return ENTRY_POINT_NEVER_RUN
            if not any(call.clock for call in calls):
                return CLOCK_NOT_CONTROLLED
            return None

        try:
            check_test(
                "test_47_hours_survive_49_hours_expire",
                mutants=expiry_mutants(),
                hint="check what the job returns and, after refreshing them, both adoptions and both animals.",
                args=SUMMARY_IN_FULL,
                namespace=sys._getframe(1).f_globals,
                after_run=how_the_job_ran,
            )
        except ExerciseIncomplete as exc:
            if any(call.own_session for call in calls) and "fails against the real app" in str(exc):
                raise ExerciseIncomplete(
                    "your test fails against the real job because the job used its own session (patch "
                    "jobs.SessionLocal): a session of the app's own cannot see the reservations your test made in "
                    "its rolled-back transaction (on PostgreSQL the job finds nothing, `assert [] == [...]`; on "
                    "SQLite it waits for the test's write lock and fails with `database is locked`). Add "
                    "`monkeypatch.setattr(jobs, \"SessionLocal\", sessions)` before running the job."
                ) from None
            raise
