"""Strategy "truncate" (PostgreSQL): real commits, then one TRUNCATE of every table."""

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.schema import metadata

pytest_plugins = ["bench.harness"]

TRUNCATE = "TRUNCATE TABLE {} RESTART IDENTITY CASCADE".format(
    ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
)


@pytest.fixture
async def sessions(engine):
    yield async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(TRUNCATE)
