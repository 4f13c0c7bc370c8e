"""Strategy "rollback": the course's helper, exactly as tests/conftest.py uses it."""

import pytest

from tests.isolation import isolated_async_sessions

pytest_plugins = ["bench.harness"]


@pytest.fixture
async def sessions(engine):
    async with isolated_async_sessions(engine) as factory:
        yield factory
