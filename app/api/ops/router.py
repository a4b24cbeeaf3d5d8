"""Health, readiness and metrics (SPEC §4 Operations)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "database": "ok", "migrations": "head"}]}
    )

    status: str
    database: str
    migrations: str


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database is reachable and migrated to head",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def readyz(request: Request) -> JSONResponse:
    heads: set[str] = request.app.state.migration_heads
    try:
        async with request.app.state.engine.connect() as conn:
            exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
            current: set[str] = set()
            if exists:
                rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
                current = {r[0] for r in rows}
    except Exception as exc:  # any failure means "not ready"; details go to the log only
        log.warning("readiness check failed: %s", type(exc).__name__)
        body = Readiness(status="unavailable", database="unreachable", migrations="unknown")
        return JSONResponse(body.model_dump(), 503)
    if current != heads:
        body = Readiness(status="unavailable", database="ok", migrations="behind")
        return JSONResponse(body.model_dump(), 503)
    return JSONResponse(Readiness(status="ok", database="ok", migrations="head").model_dump())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
