"""One settings class, from DYNGEN_* variables, failing fast on unsafe values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DYNGEN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DYNGEN_MAX_EPOCHS", "7")
    settings = Settings()
    assert settings.db_url == f"sqlite:///{tmp_path / 'dyngen.sqlite'}"
    assert settings.celery_broker_url == f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    assert settings.store_dir == tmp_path / "storage"
    assert settings.max_epochs == 7


def test_open_mode_only_on_loopback() -> None:
    Settings(auth="open").check_bind("127.0.0.1")
    Settings(auth="apikey").check_bind("0.0.0.0")
    with pytest.raises(ValueError, match=r"only allowed on 127\.0\.0\.1"):
        Settings(auth="open").check_bind("0.0.0.0")


def test_bad_values_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNGEN_AUTH", "none")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("DYNGEN_AUTH")
    with pytest.raises(ValidationError, match="twice"):
        Settings(lease_seconds=10, heartbeat_seconds=8)
