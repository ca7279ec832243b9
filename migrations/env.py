"""Alembic's entry point: run the revisions against the configured database."""

from __future__ import annotations

from alembic import context

from core.db import engine_for
from core.tables import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    """Emit SQL for the URL without connecting (`alembic upgrade --sql`)."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Apply the revisions over a real connection."""
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by migrations.alembic_config"
    engine = engine_for(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite alters tables by copying them; batch mode does that for later revisions.
            render_as_batch=engine.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
