"""initial tables: api_keys, videos, jobs, job_events, artifacts, models

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)


def _id(name: str = "id", **kw: Any) -> sa.Column:
    return sa.Column(name, ID, **kw)


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _owner() -> sa.Column:
    return sa.Column("owner_id", ID, sa.ForeignKey("api_keys.id"), nullable=True, index=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        _id(primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        _when("created_at", nullable=False),
        _when("revoked_at"),
    )
    op.create_table(
        "videos",
        _id(primary_key=True),
        _owner(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _when("created_at", nullable=False),
    )
    op.create_table(
        "jobs",
        _id(primary_key=True),
        _owner(),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("video_ids", sa.JSON(), nullable=False),
        sa.Column("mask", sa.JSON(), nullable=True),
        _id("model_id", nullable=True, index=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("epochs", sa.Integer(), nullable=True),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("eta_seconds", sa.Float(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        _when("lease_expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("created_at", nullable=False),
        _when("started_at"),
        _when("heartbeat_at"),
        _when("finished_at"),
    )
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "job_id", ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _when("created_at", nullable=False),
    )
    op.create_table(
        "artifacts",
        _id(primary_key=True),
        _owner(),
        sa.Column(
            "job_id", ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _when("created_at", nullable=False),
    )
    op.create_table(
        "models",
        _id(primary_key=True),
        _owner(),
        sa.Column("job_id", ID, sa.ForeignKey("jobs.id"), nullable=False, unique=True),
        sa.Column("checkpoint_id", ID, sa.ForeignKey("artifacts.id"), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        _when("created_at", nullable=False),
    )


def downgrade() -> None:
    for table in ("models", "artifacts", "job_events", "jobs", "videos", "api_keys"):
        op.drop_table(table)
