"""API keys: unique names, `dyngen apikey list`, webhook secrets made with the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import text

import migrations
from api.app import create_app
from cli.main import cli
from core.auth import create_api_key
from core.db import engine_for, session_factory, session_scope
from core.settings import Settings
from core.webhook_secrets import current_secret
from tests.service.conftest import RecordingQueue, assert_error


def _dyngen(settings: Settings, *argv: str) -> Result:
    env = {"DYNGEN_DATABASE_URL": settings.db_url, "DYNGEN_DATA_DIR": str(settings.data_dir)}
    return CliRunner().invoke(cli, list(argv), env=env)


def test_names_are_unique_and_list_shows_no_secret(settings: Settings) -> None:
    made = _dyngen(settings, "apikey", "create", "alice")
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("dg_") and "\n" not in key  # stdout is the key alone, for scripts
    secret = made.stderr.split("shown only now: ")[-1].strip()
    assert secret.startswith("whsec_")
    again = _dyngen(settings, "apikey", "create", "alice")
    assert again.exit_code == 1
    assert (
        again.output.strip()
        == "Error: an API key named 'alice' already exists; choose another name"
    )
    assert _dyngen(settings, "apikey", "create", "bob").exit_code == 0
    listed = _dyngen(settings, "apikey", "list")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "CREATED", "REVOKED"]
    assert [row.split()[1] for row in rows] == ["alice", "bob"]
    assert key not in listed.output and secret not in listed.output
    alice_id = rows[0].split()[0]
    assert _dyngen(settings, "apikey", "revoke", alice_id).exit_code == 0
    revoked = _dyngen(settings, "apikey", "list").stdout.splitlines()[1]
    assert revoked.split()[-1] == "UTC" and revoked.count("UTC") == 2  # created and revoked


def test_a_duplicate_name_is_refused_in_core_too(settings: Settings) -> None:
    sessions = session_factory(settings.db_url)
    with session_scope(sessions) as session:
        create_api_key(session=session, name="ci")
    with pytest.raises(ValueError, match="already exists"), session_scope(sessions) as session:
        create_api_key(session=session, name=" ci ")


def test_rotating_a_webhook_secret(settings: Settings, queue: RecordingQueue) -> None:
    made = _dyngen(settings, "apikey", "create", "hooks")
    first = made.stderr.split("shown only now: ")[-1].strip()
    rotated = _dyngen(settings, "apikey", "rotate-webhook-secret", "hooks")
    assert rotated.exit_code == 0, rotated.output
    second = rotated.stdout.strip()
    assert second.startswith("whsec_") and second != first
    missing = _dyngen(settings, "apikey", "rotate-webhook-secret", "nobody")
    assert missing.exit_code == 1 and "no API key named 'nobody'" in missing.output
    secured = settings.model_copy(update={"auth": "apikey"})
    with TestClient(create_app(secured, queue=queue)) as client:
        assert_error(client.post("/v1/webhooks/secret"), 401, "unauthorized")
        answer = client.post(
            "/v1/webhooks/secret", headers={"Authorization": f"Bearer {made.stdout.strip()}"}
        )
    assert answer.status_code == 201 and answer.json()["secret"] not in (first, second)
    with session_scope(session_factory(settings.db_url)) as session:
        key_id = _dyngen(settings, "apikey", "list").stdout.splitlines()[1].split()[0]
        assert current_secret(session=session, owner_id=key_id) == answer.json()["secret"]


def test_the_migration_renames_keys_that_shared_a_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    migrations.upgrade(url, "0003")
    with engine_for(url).begin() as conn:
        for n, key_id in enumerate(["key_01", "key_02", "key_03"]):
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, key_hash, created_at) "
                    f"VALUES ('{key_id}', 'ci', 'hash{n}', '2026-01-0{n + 1} 00:00:00')"
                )
            )
    migrations.upgrade(url)
    with engine_for(url).connect() as conn:
        names = conn.execute(text("SELECT name FROM api_keys ORDER BY id")).scalars().all()
    assert names == ["ci", "ci-key_02", "ci-key_03"]
