"""The FastAPI app factory."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api.deps import Services
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.metrics import install_metrics
from api.quotas import KeySlots, ProbeGate, RequestQuota
from api.routes import artifacts, health, jobs, models, videos, webhooks
from api.routes.pages import install_pages
from api.schemas import ErrorBody
from core.db import PoolLimits, session_factory
from core.queue import CeleryQueue, JobQueue
from core.settings import Settings, get_settings
from core.storage import StorageUnavailable
from core.stores import open_store

log = logging.getLogger("dyngen.api")

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 408, 409, 413, 415, 422, 429, 503)
}


def _pool(settings: Settings) -> PoolLimits:
    # A short wait: past it the request is answered 503 + Retry-After, not left hanging.
    return PoolLimits(settings.db_pool_size, settings.db_max_overflow, settings.api_pool_timeout)


def create_app(settings: Settings | None = None, *, queue: JobQueue | None = None) -> FastAPI:
    """An app wired to the settings' database, store and broker (or the queue given)."""
    settings = settings or get_settings()
    store = open_store(settings)
    store.ensure()
    # An API killed mid-upload leaves a staged file nobody will finish: delete those now.
    try:
        if removed := store.sweep_staging():
            log.info("deleted %d staged upload(s) left by a stopped API", removed)
    except StorageUnavailable as err:  # the workers' sweepers try again
        log.warning("could not clean the staging area: %s", err)
    services = Services(
        settings=settings,
        sessions=session_factory(settings.db_url, settings.connect_timeout, _pool(settings)),
        store=store,
        queue=queue or CeleryQueue(settings),
        uploads=KeySlots("uploads", "too_many_uploads", settings.max_uploads_per_key),
        streams=KeySlots("event streams", "too_many_streams", settings.max_streams_per_key),
        probes=ProbeGate(settings.max_concurrent_probes),
    )
    app = FastAPI(
        title="dyngen",
        version="1",
        summary="Learn dynamic generator video models from uploads; synthesize new videos.",
        responses=ERROR_RESPONSES,
        docs_url=None,  # served by install_pages from local assets (the default loads a CDN)
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(
        RequestQuota,
        limit=settings.max_requests_per_key,
        wait_seconds=settings.request_wait_seconds,
    )
    install_metrics(app, services.sessions)
    for module in (videos, jobs, models, artifacts, health, webhooks):
        app.include_router(module.router)
    install_pages(app)
    if settings.auth == "open":
        log.warning(
            "DYNGEN_AUTH=open: the API accepts requests without an API key; "
            "this is only safe on 127.0.0.1"
        )
    return app
