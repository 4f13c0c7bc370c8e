"""Lesson 14's exercise check: a DELETE-everything cleanup, run against the app's tables."""

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


def metadata_with_one_more_table(metadata=Base.metadata):
    """A copy of ``metadata`` plus ``vet_visits`` (it points at ``animals``): the table list a
    hard-coded answer does not know."""
    from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table

    bigger = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(bigger)
    Table("vet_visits", bigger,
          Column("id", Integer, primary_key=True),
          Column("animal_id", ForeignKey("animals.id"), nullable=False),
          Column("reason", String(100), nullable=False))
    return bigger


async def _fill_vet_visits(conn, metadata) -> None:
    visits = metadata.tables["vet_visits"]
    await conn.run_sync(lambda sync: visits.create(sync))  # inside the check's transaction: rolled back with it
    animal_id = await conn.scalar(select(Animal.id).limit(1))
    await conn.execute(insert(visits).values(animal_id=animal_id, reason="vaccination"))


async def _delete_all_once(delete_all, engine, metadata) -> list[str]:
    """Fill the tables, call ``delete_all(conn, metadata)`` in one transaction, list what is wrong, roll back."""
    problems: list[str] = []
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await fill_tables(conn)
            if "vet_visits" in metadata.tables:
                await _fill_vet_visits(conn, metadata)
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
    return problems


async def check_delete_all(delete_all, database_url: str, metadata=Base.metadata) -> None:
    """Run ``delete_all`` on the app's tables, then on a metadata with one more table; roll back both.

    Technique: the order (children first) and the table list both derived from the ``metadata``
    given. The first run catches a wrong order and forgotten awaits; the second, with a fourth
    table ``vet_visits`` pointing at ``animals``, catches a hard-coded list of names (or the app's
    ``Base.metadata`` used instead of the argument).
    """
    __tracebackhide__ = True
    if not attempted(delete_all):
        not_attempted("`delete_all` still holds the placeholder.")
        return
    engine = make_engine(database_url)
    try:
        problems = await _delete_all_once(delete_all, engine, metadata)
        if not problems:
            bigger = metadata_with_one_more_table(metadata)
            again = await _delete_all_once(delete_all, engine, bigger)
            if again:
                problems.append(
                    f"delete_all empties the app's {len(metadata.tables)} tables, but given a metadata with one more "
                    "table (`vet_visits`, whose rows point at `animals`) it went wrong: " + "; ".join(again) + ". "
                    "It used a list of tables of its own, not the `metadata` it was given: derive the tables and "
                    "their order from it, `reversed(metadata.sorted_tables)`, so that a table added to the app "
                    "next month is emptied too."
                )
    finally:
        await engine.dispose()
    report(problems, f"all {len(metadata.tables)} tables emptied, children first, and no foreign key complained; "
                     "with a fourth table in the metadata, it emptied that one too.")
