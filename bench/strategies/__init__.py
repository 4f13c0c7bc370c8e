"""The isolation strategies. Each ``<name>.py`` here is a complete ``conftest.py``.

The runner copies ``<name>.py`` as ``conftest.py`` next to the generated test module. A
strategy only defines the ``sessions`` fixture: the session factory the app's requests use
(``client`` in :mod:`bench.harness` installs it) and the cleanup after each test. Read them
side by side: that difference is all that is measured.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    name: str
    label: str
    description: str
    backends: tuple[str, ...] = ("sqlite", "postgresql")


STRATEGIES: dict[str, Strategy] = {s.name: s for s in [
    Strategy("none", "no isolation",
             "plain sessions, every commit is real, nothing cleaned: tests rely on unique data (the floor)"),
    Strategy("rollback", "rollback (course helper)",
             "tests.isolation.isolated_async_sessions: one outer transaction per test, app commits "
             "become SAVEPOINT releases, rolled back at teardown"),
    Strategy("delete", "DELETE all tables",
             "plain sessions; after each test DELETE FROM every table (children first), one transaction"),
    Strategy("truncate", "TRUNCATE",
             "plain sessions; after each test one TRUNCATE of all tables RESTART IDENTITY CASCADE",
             backends=("postgresql",)),
    Strategy("dropcreate", "drop/create schema",
             "plain sessions; after each test metadata.drop_all + metadata.create_all, one transaction"),
    Strategy("freshdb", "fresh database per test",
             "PostgreSQL: CREATE DATABASE ... TEMPLATE <schema-only database> per test, DROP DATABASE after; "
             "SQLite: copy of a schema-only file per test, deleted after; a new engine per test"),
]}
