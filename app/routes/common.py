"""What the routes share: the id path parameter and the documented error answers."""

from typing import Annotated, Any

from fastapi import Path

from app.schemas import MAX_ID, ErrorOut

#: A row id in a path: 1 up to the largest id the database column can hold (else 422).
IdInPath = Annotated[int, Path(gt=0, le=MAX_ID)]

_WHY = {
    400: "The request body could not be read (e.g. it is not valid UTF-8).",
    402: "The payment provider declined the charge.",
    404: "No row with that id.",
    409: "The request conflicts with the current state (duplicate, not available, already paid).",
    502: "The payment provider failed or answered something unreadable; retry later.",
    503: "The database is unavailable right now (down, restarting or busy); retry after the `Retry-After` seconds.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error answers it gives, documented in OpenAPI."""
    return {code: {"model": ErrorOut, "description": _WHY[code]} for code in codes}
