"""nested_async_sessions and nested_sessions on their own: the errors they give, how layers stack.

These tests open their own outer transaction each, so they live apart from
test_isolation_layered.py: on SQLite a module-scoped layer holds the database's one write
lock, and any other connection that writes meanwhile gets "database is locked".
"""

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import sessionmaker

from app.models import Animal, Base
from tests.isolation import (
    fix_sqlite_savepoints,
    isolated_async_sessions,
    isolated_sessions,
    nested_async_sessions,
    nested_sessions,
)
from tests.test_isolation_sync import sync_url

TABLES = [table.name for table in Base.metadata.sorted_tables]


async def rows_per_table(engine: AsyncEngine) -> dict[str, int]:
    """Counted on a brand-new connection: only what was really committed."""
    async with engine.connect() as conn:
        return {name: await conn.scalar(text(f'SELECT count(*) FROM "{name}"')) for name in TABLES}


async def animal_names(factory: async_sessionmaker[AsyncSession]) -> list[str]:
    async with factory() as session:
        return sorted(await session.scalars(select(Animal.name)))


@pytest.mark.negative_control
async def test_a_session_of_the_outer_factory_left_open_stops_the_next_layer_with_a_clear_error(engine):
    async with isolated_async_sessions(engine) as outer:
        left_open = outer()  # a fixture that yields its session instead of closing it
        left_open.add(Animal(name="Shared", species="cat"))
        await left_open.commit()
        await left_open.execute(select(1))  # the session's next transaction: a SAVEPOINT below any layer
        with pytest.raises(RuntimeError, match="a session of the outer factory was left open"):
            async with nested_async_sessions(outer):
                pass
        await left_open.close()
        async with nested_async_sessions(outer) as layer:  # closed: layering works again
            assert await animal_names(layer) == ["Shared"]
    assert await rows_per_table(engine) == dict.fromkeys(TABLES, 0)


@pytest.mark.negative_control
async def test_a_layer_whose_savepoint_was_released_behind_its_back_says_so_at_exit(engine):
    async with isolated_async_sessions(engine) as outer:
        with pytest.raises(RuntimeError, match="this test's SAVEPOINT is gone"):
            async with nested_async_sessions(outer) as layer:
                async with layer() as session:
                    session.add(Animal(name="Stray", species="dog"))
                    await session.commit()
                connection = outer.kw["bind"]
                savepoint_name = connection.sync_connection.get_nested_transaction()._savepoint
                await connection.exec_driver_sql(f"RELEASE SAVEPOINT {savepoint_name}")  # raw SQL did it
    assert await rows_per_table(engine) == dict.fromkeys(TABLES, 0)  # the outer rollback still removed Stray


async def test_nested_async_sessions_refuses_a_factory_that_is_not_joined_to_a_connection(engine):
    with pytest.raises(TypeError, match=r"needs the factory yielded by isolated_async_sessions\(\)"):
        async with nested_async_sessions(async_sessionmaker(engine)):
            pass


async def test_nested_async_sessions_refuses_a_factory_whose_outer_transaction_has_ended(engine):
    async with isolated_async_sessions(engine) as outer:
        pass
    with pytest.raises(RuntimeError, match="the outer transaction of this factory has ended"):
        async with nested_async_sessions(outer):
            pass


async def test_layers_stack_each_rolls_back_only_its_own_writes(engine):
    async with isolated_async_sessions(engine) as outer:
        async with outer() as session:
            session.add(Animal(name="Session-wide", species="cat"))
            await session.commit()
        async with nested_async_sessions(outer) as module_layer:
            async with module_layer() as session:
                session.add(Animal(name="Module-wide", species="cat"))
                await session.commit()
            for _ in range(2):
                async with nested_async_sessions(module_layer) as test_layer:
                    assert await animal_names(test_layer) == ["Module-wide", "Session-wide"]
                    async with test_layer() as session:
                        session.add(Animal(name="Per-test", species="dog"))
                        await session.commit()
            assert await animal_names(module_layer) == ["Module-wide", "Session-wide"]
        assert await animal_names(outer) == ["Session-wide"]
    assert await rows_per_table(engine) == dict.fromkeys(TABLES, 0)


# --- the sync twin ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sync_engine(engine, database_url):
    sync = create_engine(sync_url(database_url))
    fix_sqlite_savepoints(sync)
    yield sync
    sync.dispose()


def test_sync_layers_stack_and_roll_back_only_their_own_writes(sync_engine, engine):
    with isolated_sessions(sync_engine) as outer:
        with outer() as session:
            session.add(Animal(name="Shared", species="cat"))
            session.commit()
        for _ in range(2):
            with nested_sessions(outer) as layer:
                with layer() as session:
                    assert sorted(session.scalars(select(Animal.name))) == ["Shared"]
                    session.add(Animal(name="Per-test", species="dog"))
                    session.commit()
        with outer() as session:
            assert sorted(session.scalars(select(Animal.name))) == ["Shared"]
    with sync_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Animal)) == 0


@pytest.mark.negative_control
def test_sync_layer_refuses_an_open_session_below_it_and_a_plain_factory(sync_engine):
    with pytest.raises(TypeError, match=r"needs the factory yielded by isolated_sessions\(\)"):
        with nested_sessions(sessionmaker(sync_engine)):
            pass
    with isolated_sessions(sync_engine) as outer:
        left_open = outer()
        left_open.execute(select(1))
        with pytest.raises(RuntimeError, match="a session of the outer factory was left open"):
            with nested_sessions(outer):
                pass
        left_open.close()


@pytest.mark.negative_control
def test_sync_layer_whose_savepoint_was_released_says_so_at_exit(sync_engine):
    with isolated_sessions(sync_engine) as outer:
        with pytest.raises(RuntimeError, match="this test's SAVEPOINT is gone"):
            with nested_sessions(outer):
                connection = outer.kw["bind"]
                connection.exec_driver_sql(f"RELEASE SAVEPOINT {connection.get_nested_transaction()._savepoint}")
