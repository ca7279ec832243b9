"""webhooks, idempotency keys, unique API key names

Adds jobs.webhook, the webhook_secrets and webhook_deliveries (outbox) tables, the
idempotency_keys table, and makes api_keys.name unique (duplicates get their id appended).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)


def _when(name: str, nullable: bool = True, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def _serial() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _rename_duplicate_key_names() -> None:
    """Keys sharing a name (allowed before) keep the oldest's; the others get their id added."""
    keys = sa.table("api_keys", sa.column("id"), sa.column("name"), sa.column("created_at"))
    conn = op.get_bind()
    seen: set[str] = set()
    rows = conn.execute(sa.select(keys.c.id, keys.c.name).order_by(keys.c.created_at, keys.c.id))
    for key_id, name in list(rows):
        if name in seen:
            new_name = f"{name[: 200 - len(key_id) - 1]}-{key_id}"
            conn.execute(keys.update().where(keys.c.id == key_id).values(name=new_name))
        seen.add(name)


def upgrade() -> None:
    _rename_duplicate_key_names()
    with op.batch_alter_table("api_keys") as batch:
        batch.create_unique_constraint("uq_api_keys_name", ["name"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("webhook", sa.JSON(), nullable=True))
    op.create_table(
        "webhook_secrets",
        sa.Column("owner", ID, primary_key=True),
        sa.Column("secret", sa.String(100), nullable=False),
        _when("created_at", nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        _serial(),
        sa.Column(
            "job_id", ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("next_attempt_at", nullable=False, index=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("attempts", sa.JSON(), nullable=False),
        _when("created_at", nullable=False),
        _when("delivered_at"),
    )
    op.create_table(
        "idempotency_keys",
        _serial(),
        sa.Column("owner", ID, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        _when("created_at", nullable=False, index=True),
        sa.UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_secrets")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("webhook")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("uq_api_keys_name", type_="unique")
