"""``python -m app``: create the tables if needed, then serve the API with uvicorn.

With ``DATABASE_URL`` unset it serves the course's default database, as the notebooks do: the
user's own PostgreSQL server (started on demand), or SQLite when that cannot start.
"""

import asyncio
import os

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


def main() -> None:
    asyncio.run(prepare_database())
    # ROOT_PATH: the prefix a proxy serves the app under (course/proxy.py), for the docs page's links.
    uvicorn.run("app.main:app", host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")),
                root_path=os.environ.get("ROOT_PATH", "").rstrip("/"))


if __name__ == "__main__":
    main()
