"""Webhooks: a job's deliveries, and the caller's signing secret."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CallerDep, SessionDep
from api.routes.common import PathId
from api.webhook_schemas import WebhookDeliveryList, WebhookDeliveryRead, WebhookSecretRead
from core import jobs
from core.outbox import job_deliveries
from core.tables import WebhookDelivery, WebhookSecret
from core.webhook_secrets import owner_key, rotate_secret

router = APIRouter(prefix="/v1", tags=["webhooks"])


def _delivery_read(row: WebhookDelivery) -> WebhookDeliveryRead:
    return WebhookDeliveryRead.model_validate(
        {
            "id": row.id,
            "event": row.event,
            "url": row.url,
            "status": row.status,
            "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            "created_at": row.created_at,
            "delivered_at": row.delivered_at,
        }
    )


@router.get("/jobs/{job_id}/webhooks")
def job_webhooks(job_id: PathId, caller: CallerDep, session: SessionDep) -> WebhookDeliveryList:
    """The job's webhook deliveries, each with every attempt made."""
    jobs.get_job(session=session, owner_id=caller.owner_id, job_id=job_id)
    rows = job_deliveries(session=session, job_id=job_id)
    return WebhookDeliveryList(items=[_delivery_read(r) for r in rows])


@router.post("/webhooks/secret", status_code=201)
def rotate_webhook_secret(caller: CallerDep, session: SessionDep) -> WebhookSecretRead:
    """A new secret to verify the caller's webhooks with, shown only now; the old one stops
    signing at once."""
    secret = rotate_secret(session=session, owner_id=caller.owner_id)
    row = session.get_one(WebhookSecret, owner_key(caller.owner_id))
    session.commit()
    return WebhookSecretRead(secret=secret, created_at=row.created_at)
