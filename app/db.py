"""The one engine, the one session factory and the one session dependency routes use."""

from collections.abc import AsyncIterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import get_settings


def use_real_sqlite_transactions(engine: Engine) -> None:
    """Make the stdlib SQLite driver emit BEGIN itself, so SAVEPOINTs nest properly.

    pysqlite/aiosqlite never send BEGIN for ``conn.begin()``; the first SAVEPOINT then
    opens the transaction and its RELEASE commits it. SQLAlchemy's SQLite dialect docs
    ("Enabling Non-Legacy SQLite Transactional Modes") give this fix. Foreign keys are
    off by default in SQLite; we want them on. No-op for other databases.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # the driver stops managing transactions
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)
    use_real_sqlite_transactions(engine.sync_engine)
    return engine


engine = make_engine(get_settings().database_url)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request, closed after the response."""
    async with SessionLocal() as session:
        yield session


async def create_schema(target: AsyncEngine = engine) -> None:
    from app.models import Base

    if target.dialect.name == "sqlite":
        from pathlib import Path

        database = target.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    async with target.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
