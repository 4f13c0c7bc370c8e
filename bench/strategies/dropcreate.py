"""Strategy "dropcreate": real commits, then drop and recreate the whole schema after each test."""

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.schema import metadata

pytest_plugins = ["bench.harness"]


@pytest.fixture
async def sessions(engine):
    yield async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
