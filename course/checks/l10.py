"""Lesson 10 (recreate the database for every test?): a throwaway database per test.

``fresh_database(url)`` is the measurement's "new database per test": ``CREATE DATABASE`` /
``DROP DATABASE ... WITH (FORCE)`` on PostgreSQL (13 or later, which the setup cell requires), a new
file next to the lesson's own on SQLite. The database name is quoted as an identifier.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Base


@asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[str]:
    """A brand-new database next to ``url``, with the app's tables; dropped (deleted) at exit."""
    parsed = make_url(url)
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database).with_name(f"{name}.sqlite")
        fresh = parsed.set(database=str(path)).render_as_string(hide_password=False)
        await _create_tables(fresh)
        try:
            yield fresh
        finally:
            path.unlink(missing_ok=True)
        return
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    fresh = parsed.set(database=name).render_as_string(hide_password=False)
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"CREATE DATABASE {conn.dialect.identifier_preparer.quote_identifier(name)}")
        await _create_tables(fresh)
        yield fresh
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {conn.dialect.identifier_preparer.quote_identifier(name)} WITH (FORCE)")
        await admin.dispose()


async def _create_tables(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()
