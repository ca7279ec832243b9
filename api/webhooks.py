"""What job creation checks of a `webhook`: an allowed address and a secret to sign with."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.deps import Services
from api.webhook_schemas import WebhookSpec
from core.errors import Conflict
from core.webhook_secrets import current_secret
from core.webhook_urls import WebhookPolicy


def policy(services: Services) -> WebhookPolicy:
    """The settings' rule on which addresses webhooks may reach."""
    settings = services.settings
    return WebhookPolicy(settings.webhook_allow_private, settings.webhook_allowed_networks)


def checked_webhook(
    spec: WebhookSpec | None, owner_id: str | None, services: Services, session: Session
) -> dict[str, Any] | None:
    """The webhook as the job stores it, once its URL and the caller's secret check out."""
    if spec is None:
        return None
    policy(services).addresses(spec.url)  # 422 webhook_url_forbidden / _unresolvable
    if current_secret(session=session, owner_id=owner_id) is None:
        raise Conflict(
            "webhook: this API key has no webhook secret to sign deliveries with; make one "
            "with POST /v1/webhooks/secret or `dyngen apikey rotate-webhook-secret NAME`",
            code="webhook_secret_missing",
        )
    return spec.model_dump(mode="json")
