"""Webhook signing secrets, one per owner: shown once when made, rotatable, never listed."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.orm import Session

from core.tables import ANONYMOUS, WebhookSecret, utcnow

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Dyngen-Signature"


def owner_key(owner_id: str | None) -> str:
    """The owner column's value for an API key's id (or open mode's anonymous user)."""
    return owner_id or ANONYMOUS


def rotate_secret(*, session: Session, owner_id: str | None) -> str:
    """A new secret for the owner, replacing any old one; the only time it is shown."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = session.get(WebhookSecret, owner_key(owner_id))
    if row is None:
        session.add(WebhookSecret(owner=owner_key(owner_id), secret=secret))
    else:
        row.secret, row.created_at = secret, utcnow()
    session.flush()
    return secret


def current_secret(*, session: Session, owner_id: str | None) -> str | None:
    """The owner's secret, or None if none was made yet."""
    row = session.get(WebhookSecret, owner_key(owner_id))
    return None if row is None else row.secret


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of `timestamp.body` under the secret, in hex."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The `Dyngen-Signature` value: `t=<unix seconds>,v1=<hex HMAC>`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
