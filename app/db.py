"""The one engine, the one session factory and the one session dependency routes use."""

from collections.abc import AsyncIterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import get_settings


#: How long a SQLite write waits for another connection's write to finish before it answers
#: ``database is locked``. Generous: under load the wait is normal, a failure is not.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def use_real_sqlite_transactions(engine: Engine) -> None:
    """Make the stdlib SQLite driver emit BEGIN itself, so SAVEPOINTs nest properly.

    pysqlite/aiosqlite never send BEGIN for ``conn.begin()``; the first SAVEPOINT then
    opens the transaction and its RELEASE commits it. SQLAlchemy's SQLite dialect docs
    ("Enabling Non-Legacy SQLite Transactional Modes") give this fix. Foreign keys are
    off by default in SQLite; we want them on. No-op for other databases.

    The BEGIN is ``BEGIN IMMEDIATE``: SQLite has one writer at a time, and a transaction
    that starts by reading and then writes cannot wait for the lock (SQLite answers
    ``database is locked`` at once, to avoid a deadlock). Taking the write lock at BEGIN
    makes a concurrent request wait (up to the busy timeout) instead; requests serialise.
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
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS) -> AsyncEngine:
    connect_args = {"timeout": sqlite_busy_timeout} if url.startswith("sqlite") else {}
    engine = create_async_engine(url, connect_args=connect_args)
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
        await conn.run_sync(add_missing_columns, Base.metadata)


def add_missing_columns(conn, metadata) -> list[str]:
    """Add the columns a database made by an older version of the app lacks (``create_all`` never
    alters an existing table): e.g. the payment attempt's, added for exactly-once payments.
    Only columns that may be NULL or have a server default can be added this way; ours do.
    Returns ``table.column`` for each column added."""
    from sqlalchemy import inspect

    inspector, quote, added = inspect(conn), conn.dialect.identifier_preparer.quote, []
    for table in metadata.sorted_tables:
        existing = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing:
                continue
            default = f" DEFAULT {column.server_default.arg}" if column.server_default is not None else ""
            conn.exec_driver_sql(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} "
                                 f"{column.type.compile(dialect=conn.dialect)}{default}")
            added.append(f"{table.name}.{column.name}")
    return added
