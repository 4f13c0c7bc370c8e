"""Naming, creating, dropping and describing the benchmark's databases (no app imports here).

Every pytest process of a benchmark run (each xdist worker too) gets its own database,
derived from a *base URL* and recreated empty when the process starts:

* PostgreSQL ``.../shelter`` -> ``shelter_bench_<strategy>_<worker>``; the fresh-database
  strategy adds ``..._t<n>`` per test. The names never match the reference suite's
  ``<db>_test_*`` pattern, so ``python -m course.database check-empty`` never sees them.
* SQLite ``.../bench.sqlite`` -> ``bench_<strategy>_<worker>.sqlite`` in the same directory
  (the runner puts it in its work directory, on the same disk as everything else).
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.isolation import fix_sqlite_savepoints


def backend(url: str) -> str:
    return make_url(url).get_backend_name()


def _render(url) -> str:
    return url.render_as_string(hide_password=False)


def process_url(base_url: str, strategy: str, worker: str) -> str:
    """The database of one pytest process running ``strategy``."""
    parsed = make_url(base_url)
    if backend(base_url) == "sqlite":
        path = Path(parsed.database)
        return _render(parsed.set(database=str(path.with_name(f"{path.stem}_{strategy}_{worker}{path.suffix}"))))
    return _render(parsed.set(database=f"{parsed.database}_bench_{strategy}_{worker}"))


def child_url(url: str, n: int) -> str:
    """The ``n``-th throwaway database next to ``url`` (fresh-database strategy)."""
    parsed = make_url(url)
    if backend(url) == "sqlite":
        path = Path(parsed.database)
        return _render(parsed.set(database=str(path.with_name(f"{path.stem}_t{n:05d}{path.suffix}"))))
    return _render(parsed.set(database=f"{parsed.database}_t{n:05d}"))


def _enable_sqlite_foreign_keys(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite; the app turns it on too
    cursor.close()


def make_engine(url: str, **kwargs) -> AsyncEngine:
    """An engine configured like the course's test engine (tests/conftest.py).

    SQLite gets the course's ``fix_sqlite_savepoints`` (real BEGIN, nestable SAVEPOINTs) for
    every strategy, so the only difference between strategies is the cleanup, plus foreign
    keys switched on as the app does.
    """
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        fix_sqlite_savepoints(engine)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def admin_engine(url: str) -> AsyncEngine:
    """PostgreSQL: an AUTOCOMMIT engine on the server's ``postgres`` database."""
    return create_async_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def quote(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"unexpected database name {name!r}")
    return f'"{name}"'


async def pg_drop(admin: AsyncEngine, name: str) -> None:
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")


async def drop_with_children(url: str) -> None:
    """Drop the database in ``url`` and its ``_t<n>`` children (files for SQLite)."""
    parsed = make_url(url)
    if backend(url) == "sqlite":
        path = Path(parsed.database)
        for p in [path, *path.parent.glob(f"{path.stem}_t*{path.suffix}")]:
            for f in (p, p.with_name(p.name + "-journal"), p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
                f.unlink(missing_ok=True)
        return
    admin = admin_engine(url)
    try:
        async with admin.connect() as conn:
            pattern = parsed.database.replace("_", r"\_") + r"\_t%"
            names = list(await conn.scalars(
                text(r"SELECT datname FROM pg_database WHERE datname = :n OR datname LIKE :p ESCAPE '\'"),
                {"n": parsed.database, "p": pattern},
            ))
        for name in names:
            await pg_drop(admin, name)
    finally:
        await admin.dispose()


async def recreate(url: str, metadata) -> None:
    """An empty database at ``url`` holding ``metadata``'s schema (leftovers dropped first)."""
    await drop_with_children(url)
    parsed = make_url(url)
    if backend(url) == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        admin = admin_engine(url)
        try:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f"CREATE DATABASE {quote(parsed.database)}")
        finally:
            await admin.dispose()
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


async def reachable(url: str, timeout: float = 3.0) -> str | None:
    """``None`` if the PostgreSQL server in ``url`` answers, else the error as text."""
    admin = admin_engine(url)
    try:
        async with asyncio.timeout(timeout):
            async with admin.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable", reported verbatim
        return f"{exc.__class__.__name__}: {exc}"
    finally:
        await admin.dispose()


def _filesystem(path: Path) -> str:
    """Filesystem type holding ``path`` (from /proc/mounts; '?' elsewhere)."""
    try:
        best, kind = "", "?"
        real = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mount, fstype, *_ = line.split()
            if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
                best, kind = mount, fstype
        return kind
    except OSError:
        return "?"


async def server_info(url: str) -> dict:
    """What the results must state about the database: version and durability settings."""
    parsed = make_url(url)
    if backend(url) == "sqlite":
        import sqlite3

        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name("probe.sqlite")
        con = sqlite3.connect(probe)
        try:
            info = {
                "version": sqlite3.sqlite_version,
                "driver": "aiosqlite",
                "journal_mode": con.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[con.execute("PRAGMA synchronous").fetchone()[0]],
                "directory": str(path.parent),
                "filesystem": _filesystem(path.parent),
            }
        finally:
            con.close()
            probe.unlink(missing_ok=True)
        return info
    admin = admin_engine(url)
    try:
        async with admin.connect() as conn:
            info = {"version": await conn.scalar(text("SELECT version()")), "driver": "asyncpg"}
            for setting in ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "wal_sync_method",
                            "shared_buffers", "data_directory"):
                try:
                    info[setting] = await conn.scalar(text(f"SHOW {setting}"))
                except Exception:  # noqa: BLE001 - data_directory needs superuser
                    info[setting] = None
        info["host"] = f"{parsed.host}:{parsed.port or 5432}"
        if info.get("data_directory") and parsed.host in ("127.0.0.1", "localhost"):
            info["filesystem"] = _filesystem(Path(info["data_directory"]))
        return info
    finally:
        await admin.dispose()


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
