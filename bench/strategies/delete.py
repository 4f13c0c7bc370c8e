"""Strategy "delete": real commits, then DELETE FROM every table after each test."""

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.schema import metadata

pytest_plugins = ["bench.harness"]

CHILDREN_FIRST = list(reversed(metadata.sorted_tables))  # foreign keys are enforced


@pytest.fixture
async def sessions(engine):
    yield async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as conn:
        for table in CHILDREN_FIRST:
            await conn.execute(table.delete())
