"""models and artifacts without a job: imported checkpoints, and models kept after their job

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.alter_column("job_id", existing_type=sa.String(40), nullable=True)
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="training")
        )
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("job_id", existing_type=sa.String(40), nullable=True)


def downgrade() -> None:
    # rows without a job can't go back under NOT NULL: an imported model has no job to name
    op.execute("DELETE FROM models WHERE job_id IS NULL")
    op.execute("DELETE FROM artifacts WHERE job_id IS NULL")
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("job_id", existing_type=sa.String(40), nullable=False)
    with op.batch_alter_table("models") as batch:
        batch.drop_column("source")
        batch.alter_column("job_id", existing_type=sa.String(40), nullable=False)
