"""Lesson 10's exercise check: a DELETE-everything cleanup, run against the app's tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Delete

from app.models import Adopter, Adoption, Animal, Base
from bench.databases import make_engine
from course.exercise import attempted, not_attempted, report


async def fill_tables(conn) -> None:
    """One row in each of the app's three tables: an adoption points at an animal and an adopter."""
    animal_id = await conn.scalar(insert(Animal).values(name="Max", species="dog").returning(Animal.id))
    adopter_id = await conn.scalar(insert(Adopter).values(name="Ada", email="ada@example.org").returning(Adopter.id))
    await conn.execute(insert(Adoption).values(animal_id=animal_id, adopter_id=adopter_id, fee_cents=5000))


async def row_counts(conn, metadata=Base.metadata) -> dict[str, int]:
    return {t.name: await conn.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


class _RecordingConnection:
    """Passes everything to the real connection and remembers the table of the last DELETE."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self.last_delete: str | None = None

    async def execute(self, statement, *args: Any, **kwargs: Any):
        if isinstance(statement, Delete):
            self.last_delete = statement.table.name
        elif isinstance(statement, str) or hasattr(statement, "text"):
            words = str(getattr(statement, "text", statement)).split()
            if len(words) >= 3 and [w.upper() for w in words[:2]] == ["DELETE", "FROM"]:
                self.last_delete = words[2].strip('"')
        return await self._conn.execute(statement, *args, **kwargs)

    async def exec_driver_sql(self, statement: str, *args: Any, **kwargs: Any):
        words = statement.split()
        if len(words) >= 3 and [w.upper() for w in words[:2]] == ["DELETE", "FROM"]:
            self.last_delete = words[2].strip('"')
        return await self._conn.exec_driver_sql(statement, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _children_of(table_name: str, metadata) -> list[str]:
    parent = metadata.tables[table_name]
    return sorted(t.name for t in metadata.tables.values() if any(fk.column.table is parent for fk in t.foreign_keys))


async def check_delete_all(delete_all, database_url: str, metadata=Base.metadata) -> None:
    """Fill the tables, call ``delete_all(conn, metadata)`` in one transaction, check 0 rows, roll back."""
    __tracebackhide__ = True
    if not attempted(delete_all):
        not_attempted("`delete_all` still holds the placeholder.")
        return
    problems: list[str] = []
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            try:
                await fill_tables(conn)
                before = await row_counts(conn, metadata)
                recording = _RecordingConnection(conn)
                try:
                    await delete_all(recording, metadata)
                except IntegrityError:
                    blocked = recording.last_delete or "a table"
                    children = _children_of(blocked, metadata) if blocked in metadata.tables else []
                    pointing = f" while rows of {', '.join(f'`{c}`' for c in children)} still pointed at it" if children else ""
                    problems.append(
                        f"the database refused to delete from `{blocked}`{pointing} (foreign key): "
                        "delete children before their parents"
                    )
                else:
                    after = await row_counts(conn, metadata)
                    left = {name: n for name, n in after.items() if n}
                    if left:
                        problems.append(
                            "rows are still there after delete_all: "
                            + ", ".join(f"{n} in `{name}`" for name, n in left.items())
                            + " (every table of `metadata`, each statement awaited)"
                        )
                    elif not any(before.values()):
                        problems.append("the check could not fill the tables (nothing to delete)")
            finally:
                if transaction.is_active:
                    await transaction.rollback()  # leave the database as we found it, whatever happened
    finally:
        await engine.dispose()
    report(problems, f"all {len(metadata.tables)} tables emptied, children first, and no foreign key complained.")
