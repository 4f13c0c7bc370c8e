"""Strategy "none": no isolation at all; the floor every other strategy is compared with.

The app commits for real and nothing is cleaned up. The suite still passes because every
test uses unique data (and the isolation checks here assert the opposite of everywhere
else: every row of every earlier test is still there).
"""

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

pytest_plugins = ["bench.harness"]


@pytest.fixture
async def sessions(engine):
    yield async_sessionmaker(engine, expire_on_commit=False)
