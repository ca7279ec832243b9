"""Request and response bodies of webhooks: a job's `webhook`, its deliveries, the secret."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.outbox import DEFAULT_EVENTS
from core.webhook_urls import split_url

WebhookEvent = Literal["completed", "failed", "cancelled", "progress"]
DEFAULT_WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("completed", "failed", "cancelled")
assert set(DEFAULT_WEBHOOK_EVENTS) == set(DEFAULT_EVENTS)


class WebhookSpec(BaseModel):
    """Where to POST the job (its JSON, as GET /v1/jobs/{id} returns it) and on which events;
    each POST is signed: `Dyngen-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">`."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="http(s) URL on a public address")
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS), min_length=1, max_length=4
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        split_url(url)  # its ValueError says what is wrong
        return url

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))


class WebhookAttemptRead(BaseModel):
    """One POST of a delivery."""

    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None = None
    seconds: float


class WebhookDeliveryRead(BaseModel):
    """An event of the job and how posting it went."""

    id: int
    event: WebhookEvent
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[WebhookAttemptRead]
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryList(BaseModel):
    """A job's deliveries, oldest first."""

    items: list[WebhookDeliveryRead]


class WebhookSecretRead(BaseModel):
    """The caller's new signing secret: shown only in this answer."""

    secret: str
    created_at: datetime
