"""The service's database tables (SQLAlchemy 2); migrations/ creates them, nothing else does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from core.job_states import JobStatus

ID = String(40)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so store one zone in one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class ApiKey(Base):
    """A client's key; only its sha256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Video(Base):
    """An uploaded clip (or mask file) and what probing it found."""

    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="video")
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(255))
    frames: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """A training or synthesis run; the database, not the broker, is the truth about it."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value, index=True)
    # inputs: a train job names videos and the model it will create; a synthesize job, a model
    video_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    mask: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    model_id: Mapped[str | None] = mapped_column(ID, index=True)
    # a synthesize job from a training's intermediate checkpoint (an artifact id) instead of
    # its finished model; no foreign key: older checkpoints are pruned while jobs remain
    checkpoint_id: Mapped[str | None] = mapped_column(ID, default=None)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    # {"url", "events"}: where the outbox (core/outbox.py) posts the job on those events
    webhook: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # progress, written by the worker every epoch
    epoch: Mapped[int | None] = mapped_column(Integer)
    epochs: Mapped[int | None] = mapped_column(Integer)
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    loss: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # the lease: who runs the job and until when, unless it heartbeats
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # attempts whose worker vanished mid-job (its lease ran out): a job that keeps killing
    # its workers (out of memory, say) fails after DYNGEN_MAX_ATTEMPTS of them
    lost_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    # when its id last went to the broker: the sweeper re-sends it only so often
    enqueued_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class JobEvent(Base):
    """One line of a job's history: a status change or an epoch's progress."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """A file a job wrote: checkpoint, video, grid, curve."""

    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    # None: an imported checkpoint, or a model's checkpoint kept after its job was deleted
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    storage_key: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # the training epoch an intermediate checkpoint holds; None for every other kind
    epoch: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainedModel(Base):
    """A model a finished training job produced; synthesize jobs name it."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    # None: imported, or its training job was deleted (the model outlives it)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="training", server_default="training")
    checkpoint_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id"))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The owner column of the tables below: an API key's id, or this for open mode's anonymous
# user (a NULL would let a unique constraint hold twice).
ANONYMOUS = "-"


class WebhookSecret(Base):
    """The secret an owner's webhook deliveries are signed with (shown once, rotatable)."""

    __tablename__ = "webhook_secrets"

    owner: Mapped[str] = mapped_column(ID, primary_key=True)
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event of a job to post to its webhook: the outbox, written with the status change."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    # pending -> delivered | failed (retries ran past DYNGEN_WEBHOOK_RETRY_SECONDS)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # the body, fixed at the first attempt so that every retry sends the same bytes
    payload: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class IdempotencyKey(Base):
    """A client's Idempotency-Key: the request it came with and the response it got."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    owner: Mapped[str] = mapped_column(ID)
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # None while the first request is still being answered
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    response: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
