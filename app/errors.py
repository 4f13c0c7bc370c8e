"""The 422 answer for invalid requests, made safe to send whatever the client sent.

FastAPI's default handler echoes each invalid ``input`` back. Two inputs cannot be echoed:
a non-finite number (Python's JSON parser accepts ``NaN`` and ``Infinity``; the answer's
JSON encoder refuses them) and a lone surrogate (``"\\ud800"``: no UTF-8 form). Either made
the error handler itself crash with a 500. This handler answers the same 422 body with such
values written out as text.

It also holds the 503 answer for a database that is down or busy (``database_unavailable_handler``).
"""

import logging
import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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
    from sqlalchemy.exc import TimeoutError as PoolTimeout

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


async def database_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """503 with ``Retry-After`` when the database is down, restarting or busy; anything else re-raised (500).

    Answering (instead of letting the exception escape) also keeps the client's keep-alive
    connection usable: its next request is served normally.
    """
    if not database_unavailable(exc):
        raise exc
    logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return JSONResponse(
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        content={"detail": f"The database is unavailable right now ({_short_reason(exc)}); retry in {RETRY_AFTER_SECONDS} seconds."},
    )


def _short_reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return json_safe(reason[:200])
