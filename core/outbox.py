"""The webhook outbox: a row per event to post, written in the transaction of the status
change, so an event is never lost between the commit and the send (worker/webhooks.py sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.job_states import JobStatus
from core.tables import Job, WebhookDelivery, utcnow

EVENTS = ("completed", "failed", "cancelled", "progress")
DEFAULT_EVENTS = ("completed", "failed", "cancelled")
# a job's terminal status -> the webhook event it raises
STATUS_EVENTS: dict[str, str] = {
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class Backoff:
    """Retry schedule: `first` seconds, doubling up to `longest`, for `give_up_after` in all."""

    first: float
    longest: float
    give_up_after: float

    def next_try(self, created_at: datetime, failures: int, now: datetime) -> datetime | None:
        """When to try again after `failures` failed attempts; None once past the limit."""
        wait = min(self.first * 2 ** (failures - 1), self.longest)
        when = now + timedelta(seconds=wait)
        return None if when > created_at + timedelta(seconds=self.give_up_after) else when


def _wants(webhook: dict[str, Any] | None, event: str) -> bool:
    return webhook is not None and event in webhook.get("events", DEFAULT_EVENTS)


def _add(session: Session, job_id: str, webhook: dict[str, Any], event: str) -> None:
    session.add(WebhookDelivery(job_id=job_id, event=event, url=webhook["url"], attempts=[]))


def on_status(*, session: Session, job: Job) -> None:
    """Queue the event of the job's new status, if its webhook asked for it."""
    event = STATUS_EVENTS.get(job.status)
    if event is not None and job.webhook is not None and _wants(job.webhook, event):
        _add(session, job.id, job.webhook, event)


def on_progress(*, session: Session, job_id: str, webhook: dict[str, Any] | None) -> None:
    """Queue a progress event, unless one not yet sent is waiting: it will carry this epoch."""
    if webhook is None or not _wants(webhook, "progress"):
        return
    waiting = select(WebhookDelivery.id).where(
        WebhookDelivery.job_id == job_id,
        WebhookDelivery.event == "progress",
        WebhookDelivery.status == "pending",
        WebhookDelivery.payload.is_(None),
    )
    if session.scalar(waiting.limit(1)) is None:
        _add(session, job_id, webhook, "progress")


def due_deliveries(*, session: Session, limit: int = 50) -> list[int]:
    """Ids of pending deliveries whose time has come, oldest first."""
    stmt = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def claim_delivery(*, session: Session, delivery_id: int, hold_seconds: float) -> bool:
    """Take the delivery for one attempt; False if another deliverer took it first. If this
    one dies mid-attempt, the delivery is due again after `hold_seconds` (at least once)."""
    now = utcnow()
    # One conditional UPDATE: of several workers' deliverers, only one sends it.
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + timedelta(seconds=hold_seconds))
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def record_attempt(
    *, session: Session, delivery: WebhookDelivery, attempt: dict[str, Any], backoff: Backoff
) -> None:
    """Note one attempt; a 2xx delivers it, else it is retried later or given up."""
    delivery.attempts = [*delivery.attempts, attempt]  # a new list: the JSON column is saved
    now = utcnow()
    if attempt.get("ok"):
        delivery.status, delivery.delivered_at = "delivered", now
        return
    failures = sum(not a.get("ok") for a in delivery.attempts)
    when = backoff.next_try(delivery.created_at, failures, now)
    if when is None:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = when


def job_deliveries(*, session: Session, job_id: str) -> list[WebhookDelivery]:
    """The job's deliveries, oldest first."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)
    return list(session.scalars(stmt.order_by(WebhookDelivery.id)))
