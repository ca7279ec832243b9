"""API keys: shown to their owner once, stored as sha256 only."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.ids import new_id
from core.tables import ApiKey, utcnow

KEY_PREFIX = "dg_"


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(*, session: Session, name: str) -> tuple[ApiKey, str]:
    """A new key row and the plain key, which is never stored or shown again."""
    if not name.strip() or len(name) > 200:
        raise ValueError("an API key needs a name of 1 to 200 characters")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(id=new_id("key"), name=name.strip(), key_hash=hash_key(plain))
    session.add(row)
    session.flush()
    return row, plain


def authenticate(*, session: Session, key: str) -> ApiKey | None:
    """The live key row matching `key`, or None."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def revoke_api_key(*, session: Session, key_id: str) -> bool:
    """Mark a key revoked from now on; False when there is no such key."""
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return True
