"""The FastAPI application. Serve it with ``python -m app`` (docs at /docs)."""

from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.config import get_settings
from app.docs import add_offline_docs
from app.errors import DatabaseUnavailableMiddleware, validation_error_handler
from app.http import tls_context
from app.jobs import build_scheduler
from app.routes import adopters, adoptions, animals
from app.routes.common import errors


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    # verify=: one TLS context per process, not one per lifespan (see app/http.py: it is the cost of a test)
    app.state.http_client = httpx.AsyncClient(timeout=settings.payment_timeout_seconds, verify=tls_context())
    app.state.scheduler = None
    if settings.scheduler_enabled:
        app.state.scheduler = build_scheduler()
        app.state.scheduler.start()
    try:
        yield
    finally:
        if app.state.scheduler is not None:
            app.state.scheduler.shutdown(wait=False)
        await app.state.http_client.aclose()
        # A stopped app must not look started (GET /health answers 503 again).
        del app.state.http_client, app.state.scheduler


def create_app() -> FastAPI:
    app = FastAPI(
        title="Paws & Whiskers animal shelter",
        description="The sample app of the course *Testing FastAPI + SQLAlchemy against a real database*.",
        lifespan=lifespan,
        responses=errors(503),  # every route: the database may be down
        docs_url=None,  # served by add_offline_docs, with its own assets (no CDN)
        redoc_url=None,
    )
    add_offline_docs(app)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    # The database is down, restarting or busy: 503 with Retry-After (anything else stays a 500).
    app.add_middleware(DatabaseUnavailableMiddleware)
    app.include_router(animals.router)
    app.include_router(adopters.router)
    app.include_router(adoptions.router)

    @app.get("/health", tags=["health"])
    async def health() -> JSONResponse:
        """503 until the lifespan has run (a test client that skips the lifespan sees that)."""
        if not hasattr(app.state, "http_client"):
            return JSONResponse({"status": "lifespan not started"}, status_code=503)
        return JSONResponse({"status": "ok", "scheduler": app.state.scheduler is not None})

    return app


app = create_app()
