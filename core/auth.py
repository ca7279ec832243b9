"""API keys: shown to their owner once, stored as sha256 only."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
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
    name = name.strip()
    if find_api_key(session=session, name=name) is not None:
        raise ValueError(f"an API key named {name!r} already exists; choose another name")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(id=new_id("key"), name=name, key_hash=hash_key(plain))
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # the same name, created at the same moment
        raise ValueError(f"an API key named {name!r} already exists; choose another name") from None
    return row, plain


def find_api_key(*, session: Session, name: str) -> ApiKey | None:
    """The key named `name` (names are unique), revoked or not."""
    return session.scalar(select(ApiKey).where(ApiKey.name == name))


def list_api_keys(*, session: Session) -> list[ApiKey]:
    """Every key, oldest first (rows only: the keys themselves are not stored)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


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
