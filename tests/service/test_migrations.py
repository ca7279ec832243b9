"""Alembic is the only way tables come to be, and it matches the models exactly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner

import migrations
from cli.main import cli
from core.db import engine_for
from core.tables import Base


def newest_revision() -> str | None:
    """The head of the migration scripts: every test database must be migrated to it."""
    return ScriptDirectory.from_config(migrations.alembic_config("sqlite://")).get_current_head()


def test_head_matches_the_tables(db_url: str) -> None:
    assert migrations.current(db_url) == newest_revision()
    with engine_for(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_dyngen_migrate_creates_and_is_idempotent(tmp_path: Path) -> None:
    env = {"DYNGEN_DATA_DIR": str(tmp_path / "data")}
    for _ in range(2):
        result = CliRunner().invoke(cli, ["migrate"], env=env)
        assert result.exit_code == 0, result.output
    database = f"sqlite:///{tmp_path / 'data' / 'dyngen.sqlite'}"
    assert migrations.current(database) == newest_revision()


def test_apikey_create_prints_the_key_once_and_stores_its_hash(tmp_path: Path) -> None:
    env = {"DYNGEN_DATA_DIR": str(tmp_path)}
    CliRunner().invoke(cli, ["migrate"], env=env)
    result = CliRunner().invoke(cli, ["apikey", "create", "alice"], env=env)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("dg_") and len(key) > 30
    raw = (tmp_path / "dyngen.sqlite").read_bytes()
    assert key.encode() not in raw
