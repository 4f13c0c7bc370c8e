"""Lesson 10's "new database per test" (``course.checks.l10.fresh_database``), on the selected database.

It must hand out a database that is not the one it was given, with the app's tables and no rows, and
remove it at exit: a file deleted on SQLite, a database dropped on PostgreSQL (``WITH (FORCE)``, even
while a connection to it is still open).
"""

import os
from pathlib import Path

from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Animal, Base
from course.checks.l10 import fresh_database


async def _tables_and_animals(url: str) -> tuple[set[str], int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            animals = await conn.scalar(select(func.count()).select_from(Animal)) if "animals" in tables else -1
            return tables, animals
    finally:
        await engine.dispose()


async def _exists(url: str, fresh: str) -> bool:
    parsed = make_url(fresh)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database).exists()
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                                      {"name": parsed.database})
            return found == 1
    finally:
        await engine.dispose()


async def test_a_fresh_database_has_the_tables_no_rows_and_is_gone_afterwards():
    url = os.environ["DATABASE_URL"]  # this process's test database (tests/conftest.py)

    async with fresh_database(url) as fresh:
        assert make_url(fresh).database != make_url(url).database
        assert await _exists(url, fresh)
        tables, animals = await _tables_and_animals(fresh)
        assert tables == set(Base.metadata.tables) and animals == 0
        engine = create_async_engine(fresh)  # a connection still open at exit must not stop the drop
        connection = await engine.connect()
        await connection.execute(Animal.__table__.insert().values(name="Max", species="dog"))
        await connection.commit()
        assert (await _tables_and_animals(fresh))[1] == 1

    try:
        assert not await _exists(url, fresh)
    finally:
        await connection.close()
        await engine.dispose()


async def test_two_fresh_databases_are_two_databases():
    """Negative control for the test above: a row in one fresh database is not in the next."""
    url = os.environ["DATABASE_URL"]

    async with fresh_database(url) as first:
        engine = create_async_engine(first)
        try:
            async with engine.begin() as conn:
                await conn.execute(Animal.__table__.insert().values(name="Max", species="dog"))
        finally:
            await engine.dispose()
        async with fresh_database(url) as second:
            assert second != first
            assert (await _tables_and_animals(first))[1] == 1
            assert (await _tables_and_animals(second))[1] == 0
