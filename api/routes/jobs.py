"""/v1/jobs: create, list, read, cancel, follow."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.deps import Caller, CallerDep, Services, ServicesDep, SessionDep
from api.errors import ApiError
from api.idempotency import IdempotencyKeyHeader, run_once
from api.quotas import Slot
from api.routes.animate import create_animate_job
from api.routes.common import Cursor, Limit, PathId
from api.schemas import (
    AnimateJobCreate,
    EventPage,
    JobCreate,
    JobEventRead,
    JobRead,
    Page,
    SynthesizeJobCreate,
    TrainJobCreate,
)
from api.webhooks import checked_webhook
from core import admission, deletion, jobs
from core.artifacts import job_artifacts
from core.db import session_scope
from core.job_states import TERMINAL, JobStatus, JobType
from core.job_view import job_json
from core.tables import Artifact, Job

log = logging.getLogger("dyngen.api")
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

SSE_POLL_SECONDS = 0.5
SSE_QUIET_POLL_SECONDS = 2.0  # a stream with nothing new for a while reads less often
# Reads of all event streams together at once, per event loop: a hundred streams then share
# a few threads instead of taking the ones requests need; under load each just ticks later.
SSE_CONCURRENT_READS = 4
_read_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
MAX_EVENT_ID = 2**63 - 1  # a BIGINT
SSE_KEEPALIVE_SECONDS = 15.0


def _digits_only(value: object) -> object:
    """An event id written "3.0" is refused, not read as 3: the spec says integer."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+", value):
        raise ValueError("must be a whole number written in digits")
    return value


EventId = Annotated[int, BeforeValidator(_digits_only)]


def job_reads(session: Session, rows: list[Job]) -> list[JobRead]:
    """The client's view of job rows, with their artifacts."""
    found = job_artifacts(session=session, job_ids=[j.id for j in rows])
    return [_job_read(job, found[job.id]) for job in rows]


def _job_read(job: Job, artifacts: list[Artifact]) -> JobRead:
    return JobRead.model_validate(job_json(job, artifacts))


@router.post("", status_code=202, response_model=JobRead)
def create_job(
    body: Annotated[JobCreate, Body()],
    caller: CallerDep,
    services: ServicesDep,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JobRead | Response:
    """Queue a training, synthesis or animation job; the worker picks it up after the commit."""
    return run_once(
        services,
        caller.owner_id,
        idempotency_key,
        route="POST /v1/jobs",
        request=body.model_dump(mode="json"),
        status_code=202,
        answer=lambda: _create_job(body, caller, services, session),
    )


def _create_job(
    body: TrainJobCreate | SynthesizeJobCreate | AnimateJobCreate,
    caller: Caller,
    services: Services,
    session: Session,
) -> JobRead:
    if isinstance(body, TrainJobCreate):
        job = _create_train(body, caller.owner_id, services, session)
    elif isinstance(body, AnimateJobCreate):
        job = create_animate_job(body, caller.owner_id, services, session)
    else:
        job = _create_synthesis(body, caller.owner_id, services, session)
    session.commit()
    _enqueue(job, services, session)
    return job_reads(session, [job])[0]


def _create_train(
    body: TrainJobCreate, owner_id: str | None, services: Services, session: Session
) -> Job:
    """A queued training, planned as it will run (frames fitted to the videos)."""
    mask = None if body.mask is None else body.mask.model_dump(mode="json")
    config = admission.plan_train_request(
        session=session,
        owner_id=owner_id,
        config=body.config,
        video_ids=list(body.video_ids),
        mask=mask,
        settings=services.settings,
        purpose=body.purpose,
    )
    return jobs.create_job(
        session=session,
        owner_id=owner_id,
        type=JobType.TRAIN,
        config=config.model_dump(mode="json"),
        seed=body.seed,
        video_ids=list(body.video_ids),
        mask=mask,
        webhook=checked_webhook(body.webhook, owner_id, services, session),
    )


def _create_synthesis(
    body: SynthesizeJobCreate, owner_id: str | None, services: Services, session: Session
) -> Job:
    """A queued synthesis from a model or a training's intermediate checkpoint."""
    model_id = admission.plan_synthesis_request(
        session=session,
        owner_id=owner_id,
        model_id=body.model_id,
        checkpoint_id=body.checkpoint_id,
        config=body.config,
        settings=services.settings,
    )
    job = jobs.create_job(
        session=session,
        owner_id=owner_id,
        type=JobType.SYNTHESIZE,
        config=body.config.model_dump(mode="json"),
        seed=body.seed,
        model_id=model_id,
        webhook=checked_webhook(body.webhook, owner_id, services, session),
    )
    job.checkpoint_id = body.checkpoint_id
    return job


def _enqueue(job: Job, services: Services, session: Session) -> None:
    """Send the id only once the row is committed, so no worker looks for a missing job."""
    try:
        services.queue.enqueue(job.id, job.type)
    except Exception as err:
        log.exception("could not enqueue job %s", job.id)
        jobs.fail_unstarted(
            session=session,
            job_id=job.id,
            error={"code": "queue_unavailable", "message": "the job queue could not be reached"},
        )
        session.commit()
        raise ApiError(
            503, "queue_unavailable", "the job queue is unreachable; try again shortly"
        ) from err


@router.get("")
def list_jobs(
    caller: CallerDep,
    session: SessionDep,
    status: Annotated[JobStatus | None, Query()] = None,
    type: Annotated[JobType | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[JobRead]:
    """The caller's jobs, newest first."""
    rows, next_cursor = jobs.list_jobs(
        session=session,
        owner_id=caller.owner_id,
        status=status,
        type=type,
        limit=limit,
        cursor=cursor,
    )
    return Page[JobRead](items=job_reads(session, rows), next_cursor=next_cursor)


@router.get("/{job_id}")
def get_job(job_id: PathId, caller: CallerDep, session: SessionDep) -> JobRead:
    """One job: status, progress, error, artifacts."""
    job = jobs.get_job(session=session, owner_id=caller.owner_id, job_id=job_id)
    return job_reads(session, [job])[0]


@router.delete("/{job_id}", status_code=204, response_class=Response)
def delete_job(
    job_id: PathId, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> Response:
    """Delete a finished job, its history and artifacts (409 `job_not_finished` before it
    ends); a training job's model stays until it is deleted itself."""
    keys = deletion.delete_job(session=session, owner_id=caller.owner_id, job_id=job_id)
    session.commit()
    deletion.delete_files(services.store, keys)
    services.store.drop_job_files(job_id)
    return Response(status_code=204)


@router.post("/{job_id}/cancel", status_code=202)
def cancel_job(
    job_id: PathId, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> JobRead:
    """Cancel a queued job at once, or ask a running one to stop after its current epoch (it
    ends `cancelled` unless it had already published its outputs: then 409 `job_finished`)."""
    job = jobs.request_cancel(session=session, owner_id=caller.owner_id, job_id=job_id)
    session.commit()
    if job.status == JobStatus.CANCELLED:
        # a job given back by a stopping worker (or whose worker died) may have left resume
        # state and scratch: nothing needs them now
        services.store.drop_job_files(job.id)
    return job_reads(session, [job])[0]


@router.get(
    "/{job_id}/events",
    response_model=EventPage,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def job_events(
    job_id: PathId,
    caller: CallerDep,
    services: ServicesDep,
    session: SessionDep,
    after: Annotated[EventId, Query(ge=0, le=MAX_EVENT_ID, description="last event id seen")] = 0,
    accept: Annotated[str, Header()] = "application/json",
    last_event_id: Annotated[EventId | None, Header(ge=0, le=MAX_EVENT_ID)] = None,
) -> EventPage | StreamingResponse:
    """Progress history after `after`; with `Accept: text/event-stream`, a live stream."""
    jobs.get_job(session=session, owner_id=caller.owner_id, job_id=job_id)
    if "text/event-stream" in accept:
        # The route's session closes when it returns; each tick reads in a short one of its own.
        slot = services.streams.take(caller.owner_id)
        start = max(after, last_event_id or 0)
        return StreamingResponse(
            _holding(slot, _stream(services.sessions, job_id, start)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            # the stream's own `finally` covers its end; this covers a stream never started
            background=BackgroundTask(slot.release),
        )
    rows = jobs.list_events(session=session, job_id=job_id, after=after)
    items = [JobEventRead.model_validate(e, from_attributes=True) for e in rows]
    return EventPage(items=items, last_id=items[-1].id if items else after)


async def _holding(slot: Slot, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream, giving its key's stream slot back however it ends."""
    try:
        async for event in events:
            yield event
    finally:
        slot.release()


def _poll(
    sessions: sessionmaker[Session], job_id: str, after: int
) -> tuple[str, list[JobEventRead]] | None:
    """The job's status and its events after `after`; None when the database is busy or down."""
    # Status first, then events: a terminal status read here has its event in this batch.
    try:
        with session_scope(sessions) as session:
            status = session.get_one(Job, job_id).status
            rows = jobs.list_events(session=session, job_id=job_id, after=after)
            return status, [JobEventRead.model_validate(e, from_attributes=True) for e in rows]
    except (PoolTimeout, OperationalError, InterfaceError) as err:
        # The stream already answered 200: skip this tick, try again at the next one.
        log.info("event stream of job %s: skipped a tick (%s)", job_id, type(err).__name__)
        return None


def _read_gate() -> asyncio.Semaphore:
    """The running loop's cap on concurrent stream reads."""
    loop = asyncio.get_running_loop()
    gate = _read_gates.get(loop)
    if gate is None:
        gate = _read_gates[loop] = asyncio.Semaphore(SSE_CONCURRENT_READS)
    return gate


def _tick(quiet_for: float) -> float:
    """Seconds to the next read: 0.5 while events flow, 2 once a stream was quiet for 10 s."""
    # A hundred streams of queued jobs then cost 50 short reads a second, not 200.
    return SSE_POLL_SECONDS if quiet_for < 10 else SSE_QUIET_POLL_SECONDS


def _sse(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


async def _stream(sessions: sessionmaker[Session], job_id: str, after: int) -> AsyncIterator[str]:
    """Server-sent events until the job ends; each carries its id for Last-Event-ID resumes."""
    yield "retry: 2000\n\n"
    quiet_since = last_event = time.monotonic()
    while True:
        async with _read_gate():
            polled = await run_in_threadpool(_poll, sessions, job_id, after)
        status, events = polled or (None, [])  # None: a skipped tick, nothing learned
        for event in events:
            after = event.id
            yield _sse(event.kind, json.dumps(event.model_dump(mode="json")), event.id)
        if events:
            quiet_since = last_event = time.monotonic()
        elif status in TERMINAL:
            yield _sse("end", json.dumps({"status": status}))
            return
        elif time.monotonic() - quiet_since > SSE_KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(_tick(time.monotonic() - last_event))
