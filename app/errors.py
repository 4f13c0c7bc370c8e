"""The 422 answer for invalid requests, made safe to send whatever the client sent.

FastAPI's default handler echoes each invalid ``input`` back. Two inputs cannot be echoed:
a non-finite number (Python's JSON parser accepts ``NaN`` and ``Infinity``; the answer's
JSON encoder refuses them) and a lone surrogate (``"\\ud800"``: no UTF-8 form). Either made
the error handler itself crash with a 500. This handler answers the same 422 body with such
values written out as text.

It also holds the 503 answer for a database that is down or busy (``DatabaseUnavailableMiddleware``).
"""

import logging
import math
import os
import traceback
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

logger = logging.getLogger("app")


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats and unencodable strings replaced by readable text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'nan', 'inf', '-inf'
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))})


#: How long a client should wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 5
#: PostgreSQL's "the server is going away / not there yet" codes (class 08 is "connection exception").
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
#: What the drivers say when the server or the file cannot be used right now.
_UNAVAILABLE_TEXTS = (
    "connection was closed", "connection is closed", "database is locked", "unable to open database file",
)


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database cannot be reached or used right now (not a bug in a query)."""
    seen, visited = error, set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, (ConnectionError, TimeoutError, PoolTimeout)) or getattr(seen, "connection_invalidated", False):
            return True
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES):
            return True
        if type(seen).__name__ in {"ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError"}:
            return True
        if any(text in str(seen) for text in _UNAVAILABLE_TEXTS):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


def database_outage(exc: BaseException) -> bool:
    """``exc`` came out of the database layer and says the database cannot be used right now."""
    from_the_database = isinstance(exc, (DBAPIError, PoolTimeout)) or _raised_by_the_database(exc)
    return from_the_database and database_unavailable(exc)


class DatabaseUnavailableMiddleware:
    """503 with ``Retry-After`` when the database is down, restarting or busy (anything else: 500).

    Answering, instead of letting the exception escape to uvicorn, also keeps the client's
    keep-alive connection usable: its next request is served. A middleware and not an exception
    handler: a handler for ``OSError`` (asyncpg's refused connection is a bare
    ``ConnectionRefusedError``) would also catch other services' errors, such as a background
    task's, which must reach the caller unchanged.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or not database_outage(exc):
                raise
            logger.warning("database unavailable for %s %s: %s", scope["method"], scope["path"], type(exc).__name__)
            answer = JSONResponse(
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                content={"detail": f"The database is unavailable right now ({_short_reason(exc)}); retry in {RETRY_AFTER_SECONDS} seconds."},
            )
            await answer(scope, receive, send)


def _raised_by_the_database(exc: BaseException) -> bool:
    """An ``OSError`` (asyncpg's refused connection is a bare ``ConnectionRefusedError``) counts only
    when it came out of the database layer, not out of another client the app uses."""
    frames = traceback.extract_tb(exc.__traceback__)
    return any(f"{os.sep}{package}{os.sep}" in frame.filename
               for frame in frames for package in ("sqlalchemy", "asyncpg", "aiosqlite"))


def _short_reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return json_safe(reason[:200])
