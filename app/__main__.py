"""``python -m app``: create the tables if needed, then serve the API with uvicorn.

With ``DATABASE_URL`` unset it serves the course's default database, as the notebooks do: the
user's own PostgreSQL server (started on demand), or SQLite when that cannot start.

``python -m app reconcile``: settle the payments a crash left unfinished (``app.checkout``), once.

``python -m app`` listens on HOST:PORT (default 127.0.0.1:8000), where any local user can reach
it; ``python -m app --uds PATH`` on a Unix socket instead, which only those who may enter its
directory can reach (the Jupyter proxy's entry, course/proxy.py, puts it in a private one).
"""

import argparse
import asyncio
import os
import sys

import uvicorn

if not os.environ.get("DATABASE_URL"):  # before app.db builds its engine from the setting
    from course.database import selected_url

    os.environ["DATABASE_URL"] = selected_url()

from app.db import create_schema, engine  # noqa: E402


async def prepare_database() -> None:
    """Create the schema, then close the connections that did it.

    ``asyncio.run`` runs this on a loop of its own, and uvicorn then serves on another
    one. asyncpg connections belong to the loop that opened them: one left in the pool
    would be handed to a request on uvicorn's loop and fail there ("attached to a
    different loop", then "another operation is in progress"), so every request would
    answer 500. ``dispose()`` empties the pool; uvicorn's loop opens its own connections.
    """
    try:
        await create_schema()
    finally:
        await engine.dispose()


async def reconcile() -> None:
    from app.jobs import run_reconcile_job

    try:
        outcomes = await run_reconcile_job()
    finally:
        await engine.dispose()
    print(f"reconciled {len(outcomes)} payment(s): " + (", ".join(f"adoption {i} {o}" for i, o in outcomes.items()) or "none pending"))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["reconcile"]:
        asyncio.run(reconcile())
        return
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve the shelter API with uvicorn.")
    parser.add_argument("--uds", metavar="PATH", help="listen on this Unix socket instead of HOST:PORT")
    args = parser.parse_args(argv)
    asyncio.run(prepare_database())
    # ROOT_PATH: the prefix a proxy serves the app under (course/proxy.py), for the docs page's links.
    where = {"uds": args.uds} if args.uds else {
        "host": os.environ.get("HOST", "127.0.0.1"), "port": int(os.environ.get("PORT", "8000"))}
    uvicorn.run("app.main:app", root_path=os.environ.get("ROOT_PATH", "").rstrip("/"), **where)


if __name__ == "__main__":
    main()
