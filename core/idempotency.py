"""Idempotency keys: a request retried with the key it was first sent with gets the first
answer back instead of acting twice. One row per (owner, key), so of two requests racing with
the same key only one can insert it; rows older than the time to live are swept.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.tables import ANONYMOUS, IdempotencyKey, utcnow


def _owner(owner_id: str | None) -> str:
    return owner_id or ANONYMOUS


def reserve_key(*, session: Session, owner_id: str | None, key: str, fingerprint: str) -> None:
    """Take the key for a request (IntegrityError at the flush if someone holds it)."""
    session.add(IdempotencyKey(owner=_owner(owner_id), key=key, fingerprint=fingerprint))
    session.flush()


def find_key(
    *, session: Session, owner_id: str | None, key: str, ttl_seconds: float
) -> IdempotencyKey | None:
    """The live row of the owner's key; an expired one not swept yet is deleted and None."""
    where = (IdempotencyKey.owner == _owner(owner_id), IdempotencyKey.key == key)
    row = session.scalar(select(IdempotencyKey).where(*where))
    if row is not None and row.created_at < utcnow() - timedelta(seconds=ttl_seconds):
        session.delete(row)
        session.flush()
        return None
    return row


def complete_key(
    *, session: Session, owner_id: str | None, key: str, status_code: int, response: str
) -> None:
    """Keep the answer the first request got, for its retries."""
    where = (IdempotencyKey.owner == _owner(owner_id), IdempotencyKey.key == key)
    row = session.scalar(select(IdempotencyKey).where(*where))
    if row is not None:
        row.status_code, row.response = status_code, response


def release_key(*, session: Session, owner_id: str | None, key: str) -> None:
    """Give the key up (its request failed): a retry with it runs afresh."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.owner == _owner(owner_id),
            IdempotencyKey.key == key,
            IdempotencyKey.status_code.is_(None),
        )
    )


def purge_expired_keys(*, session: Session, ttl_seconds: float) -> int:
    """Delete keys older than the time to live; returns how many."""
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
