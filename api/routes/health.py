"""/healthz (the process answers) and /readyz (database, broker and storage reachable)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ServicesDep
from api.schemas import Health
from core.db import session_scope

log = logging.getLogger("dyngen.api")
router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """Alive."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Health}})
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the database, the broker and the store all answer."""
    checks = {
        "database": _check(lambda: _ping_db(services)),
        "broker": _check(services.queue.ping),
        "storage": _check(services.store.check),
    }
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _ping_db(services: ServicesDep) -> None:
    with session_scope(services.sessions) as session:
        session.execute(text("SELECT 1"))


def _check(probe: object) -> str:
    try:
        probe()  # type: ignore[operator]
    except Exception as err:
        log.warning("readiness check failed: %s", err)
        return f"error: {type(err).__name__}"
    return "ok"
