"""``python -m app``: create the tables if needed, then serve the API with uvicorn."""

import asyncio
import os

import uvicorn

from app.db import create_schema


def main() -> None:
    asyncio.run(create_schema())
    uvicorn.run("app.main:app", host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")))


if __name__ == "__main__":
    main()
