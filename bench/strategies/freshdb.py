"""Strategy "freshdb": every test gets a database of its own, made from a schema-only template.

PostgreSQL: ``CREATE DATABASE <db>_t<n> TEMPLATE <db>`` (this process's database, which holds
the empty schema and to which nothing else is connected), ``DROP DATABASE`` after the test.
SQLite: a copy of this process's (schema-only) file, deleted after the test.
Either way the test's engine is new, so its connections are new too: that is part of the cost.
"""

import itertools
import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.databases import admin_engine, backend, child_url, make_engine, pg_drop, quote

pytest_plugins = ["bench.harness"]

_numbers = itertools.count()


@pytest.fixture(scope="session")
async def admin(database_url):
    if backend(database_url) == "sqlite":
        yield None
        return
    engine = admin_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(database_url, admin):
    url = child_url(database_url, next(_numbers))
    template, name = make_url(database_url).database, make_url(url).database
    if admin is None:
        shutil.copyfile(template, name)
    else:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(template)}")
    engine = make_engine(url)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()
        if admin is None:
            Path(name).unlink()
        else:
            await pg_drop(admin, name)
