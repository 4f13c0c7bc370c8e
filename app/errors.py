"""The 422 answer for invalid requests, made safe to send whatever the client sent.

FastAPI's default handler echoes each invalid ``input`` back. Two inputs cannot be echoed:
a non-finite number (Python's JSON parser accepts ``NaN`` and ``Infinity``; the answer's
JSON encoder refuses them) and a lone surrogate (``"\\ud800"``: no UTF-8 form). Either made
the error handler itself crash with a 500. This handler answers the same 422 body with such
values written out as text.
"""

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


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
