"""/metrics in Prometheus' text format.

Two kinds of figures. What this API process sees (request latency by route, upload bytes)
lives in prometheus_client metrics; with PROMETHEUS_MULTIPROC_DIR set (several API processes)
they are kept in its files and summed at each scrape. What the workers do (jobs by type and
status, their durations, the queue's depth, epochs per second of running trainings) is read
from the database at each scrape: workers run on other machines, and the database is the
truth about jobs, so every API process reports the same numbers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.db import session_scope
from core.job_states import TERMINAL, JobStatus, JobType
from core.tables import Job, JobEvent

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds a job ran, from a few-epoch test to a day-long paper run
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ApiMetrics:
    """This process's metrics and the registry /metrics renders."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        own = CollectorRegistry()
        self.registry = CollectorRegistry()
        if multiprocess:  # values live in the shared files; the scrape sums them
            MultiProcessCollector(self.registry)
        metrics_registry = None if multiprocess else own
        self.request_seconds = Histogram(
            "dyngen_http_request_duration_seconds",
            "Time to the response's first byte, by method, route template and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=metrics_registry,
        )
        self.upload_bytes = Counter(
            "dyngen_upload_bytes",
            "Bytes received in accepted uploads (videos, imported models)",
            ["kind"],
            registry=metrics_registry,
        )
        if not multiprocess:
            self.registry.register(_Forward(own))
        self.registry.register(JobCollector(sessions))

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class _Forward(Collector):
    """The metrics of another registry (this process's own), collected with the rest."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.source = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect()


class JobCollector(Collector):
    """Figures read from the jobs table at every scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with session_scope(self.sessions) as session:
            yield _jobs_by_status(session)
            yield _queue_depth(session)
            yield _durations(session)
            yield _epoch_rates(session)


def _jobs_by_status(session: Session) -> Metric:
    counts: dict[tuple[str, str], int] = dict.fromkeys(
        ((t, s) for t in JobType for s in JobStatus), 0
    )
    rows = session.execute(
        select(Job.type, Job.status, func.count()).group_by(Job.type, Job.status)
    )
    for job_type, status, count in rows:
        counts[(job_type, status)] = int(count)
    family = GaugeMetricFamily("dyngen_jobs", "Jobs by type and status", labels=["type", "status"])
    for (job_type, status), count in counts.items():
        family.add_metric([job_type, status], count)
    return family


def _queue_depth(session: Session) -> Metric:
    queued = session.scalar(select(func.count()).where(Job.status == JobStatus.QUEUED)) or 0
    return GaugeMetricFamily("dyngen_queue_depth", "Jobs waiting for a worker", value=queued)


def _durations(session: Session) -> Metric:
    """Finished jobs' run time (first start to end), a histogram by type and status, counted
    by the database: one row per type and status, however many jobs there are."""
    seconds = _seconds_expression(session)
    columns = [func.sum(case((seconds <= b, 1), else_=0)) for b in DURATION_BUCKETS]
    stmt = (
        select(Job.type, Job.status, func.count(), func.sum(seconds), *columns)
        .where(Job.status.in_(TERMINAL), Job.started_at.is_not(None))
        .where(Job.finished_at.is_not(None))
        .group_by(Job.type, Job.status)
    )
    family = HistogramMetricFamily(
        "dyngen_job_duration_seconds",
        "Run time of finished jobs, first start to end (jobs still in the database)",
        labels=["type", "status"],
    )
    for job_type, status, count, total, *counts in session.execute(stmt):
        buckets = [
            (str(float(b)), int(n or 0)) for b, n in zip(DURATION_BUCKETS, counts, strict=True)
        ]
        buckets.append(("+Inf", int(count)))
        family.add_metric([job_type, status], buckets, sum_value=float(total or 0.0))
    return family


def _seconds_expression(session: Session) -> Any:
    """finished_at - started_at in seconds, in the database's own dialect."""
    if session.get_bind().dialect.name == "sqlite":
        days = func.julianday(Job.finished_at) - func.julianday(Job.started_at)
        return days * 86400.0
    return func.extract("epoch", Job.finished_at - Job.started_at)


def _epoch_rates(session: Session) -> Metric:
    """Each running training's epochs per second over its last two progress events."""
    family = GaugeMetricFamily(
        "dyngen_training_epochs_per_second",
        "Epochs per second of each running training, by the worker running it",
        labels=["worker"],
    )
    running = select(Job.id, Job.lease_owner).where(
        Job.type == JobType.TRAIN, Job.status == JobStatus.RUNNING
    )
    for job_id, worker in session.execute(running):
        rate = _epoch_rate(session, job_id)
        if rate is not None:
            family.add_metric([worker or "unknown"], rate)
    return family


def _epoch_rate(session: Session, job_id: str) -> float | None:
    stmt = (
        select(JobEvent.data, JobEvent.created_at)
        .where(JobEvent.job_id == job_id, JobEvent.kind == "progress")
        .order_by(JobEvent.id.desc())
        .limit(2)
    )
    last_two = list(session.execute(stmt))
    if len(last_two) < 2:
        return None
    (newer, at_newer), (older, at_older) = last_two
    seconds = (at_newer - at_older).total_seconds()
    epochs = (newer.get("epoch") or 0) - (older.get("epoch") or 0)
    return epochs / seconds if seconds > 0 and epochs >= 0 else None


class RequestTimer:
    """ASGI middleware: each request's time to its response's first byte, by route template
    (`/v1/jobs/{job_id}`, never the id itself, so the labels stay few)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", "unmatched")
                labels = (scope["method"], route, str(message["status"]))
                self.metrics.request_seconds.labels(*labels).observe(time.perf_counter() - began)
            await send(message)

        await self.app(scope, receive, timed)


def count_upload(request: Request, kind: str, size: int) -> None:
    """Count an accepted upload's bytes."""
    metrics: ApiMetrics = request.app.state.metrics
    metrics.upload_bytes.labels(kind).inc(size)


def install_metrics(app: FastAPI, sessions: sessionmaker[Session]) -> None:
    """Time every request and serve GET /metrics."""
    metrics = ApiMetrics(sessions)
    app.state.metrics = metrics
    app.add_middleware(RequestTimer, metrics=metrics)

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus_metrics() -> Response:
        """Prometheus metrics: jobs, queue depth, durations, epoch rates, uploads, latency."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)
