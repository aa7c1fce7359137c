"""The FastAPI application: routers, lifespan (migrate, open the pool), OpenAPI at /docs.

Every router under ``/api/v1`` is mounted with the authentication dependency, so a new
resource is authenticated by construction (tests/integration/test_api_auth.py walks the route
table to hold that line). ``/healthz`` and ``/metrics`` are outside it on purpose.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse

from ingest_service.api.db import make_pool
from ingest_service.api.deps import principal
from ingest_service.api.routers import alerts, audit, dead_letters, gateways, health, subjects
from ingest_service.api.routers.alert_actions import router as alert_actions_router
from ingest_service.api.routers.auth import router as auth_router
from ingest_service.api.routers.incidents import router as incidents_router
from ingest_service.api.settings import ApiSettings
from ingest_service.api.tokens import load_signing_key
from ingest_service.schema import migrate, storage_kind

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

DESCRIPTION = """\
vitalstream's read API: subjects, readings (raw or downsampled), latest values, alerts,
gateways, dead letters and the audit log. Every `/api/v1` request needs a bearer token
(`vitalstream token --role ... --user ...`); every read of patient data is written to the
tamper-evident audit log. NOT a cleared medical device.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the app; the database is touched only when it starts (lifespan)."""
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Read (or create) the key before serving, so a bad key file fails start-up, not
        # requests. Sync file and psycopg I/O here is fine: nothing is served yet.
        app.state.signing_key = load_signing_key(settings.key_file)
        with psycopg.connect(settings.database_url) as conn:
            kind = migrate(conn) if settings.api_migrate_on_start else storage_kind(conn)
        app.state.database_kind = kind
        pool = make_pool(settings)
        pool.open(wait=settings.api_pool_min_size > 0, timeout=30.0)
        app.state.pool = pool
        log.info("API ready on the %s storage path", kind)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="vitalstream API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    # Building the app touches neither the key file nor the database (tests enumerate its
    # routes at collection time); the lifespan does both.
    app.state.settings = settings

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(principal)])
    for module in (subjects, gateways, dead_letters, alerts, audit):
        api.include_router(module.router)
    api.include_router(alert_actions_router)  # POST /alerts/{id}/ack|resolve|snooze|...
    api.include_router(incidents_router)
    app.include_router(api)
    app.include_router(auth_router)  # /api/v1/auth: its token endpoint is the login
    app.include_router(health.router)
    from ingest_service.web import router as web_router  # noqa: PLC0415 (web imports api)

    app.include_router(web_router)
    app.add_exception_handler(psycopg.DataError, _data_error)
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    return app


async def _data_error(request: Request, error: Exception) -> JSONResponse:
    """A value PostgreSQL cannot take (a NUL in a string, a time out of range): the client's
    input, so 422, never a 500 (schemathesis, issue 10). The message is PostgreSQL's, which
    names the problem, not the value."""
    return JSONResponse(
        {"detail": f"invalid value: {str(error).splitlines()[0]}"},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
    """Database gone or a query over the statement timeout: 503, so clients retry later."""
    log.warning("database unavailable: %s", type(error).__name__)
    return JSONResponse(
        {"detail": "database unavailable or query too expensive; narrow the range or retry"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
