"""DELETE /v1/jobs/{id} and /v1/models/{id}: rows and files go, never while a job needs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from core import deletion, jobs
from core.artifacts import add_artifact
from core.auth import authenticate
from core.db import session_factory, session_scope
from core.orphans import sweep_orphans
from core.settings import Settings
from core.storage import ArtifactStore
from core.tables import Artifact, JobEvent
from tests.service.conftest import RecordingQueue, assert_error, new_key
from tests.service.factories import finished_training

CHECKPOINT_BYTES = bytes(range(256)) * 40  # what finished_training stores


def stored_files(settings: Settings) -> dict[str, int]:
    """Every file under the store's artifacts/ with its size."""
    root = settings.store_dir / "artifacts"
    files = root.rglob("*") if root.exists() else iter(())
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in files if p.is_file()}


def add_output(settings: Settings, tmp_path: Path, job_id: str, name: str) -> str:
    """Store one more artifact of the job (as a worker publishes a video); its id."""
    source = tmp_path / name
    source.write_bytes(b"\x00\x01" * 5000)
    with session_scope(session_factory(settings.db_url)) as session:
        artifact = add_artifact(
            session=session,
            store=ArtifactStore(settings.store_dir),
            job_id=job_id,
            owner_id=None,
            kind="video",
            source=source,
            media_type="video/mp4",
        )
        return artifact.id


def count(settings: Settings, table: type, **where: str) -> int:
    with session_scope(session_factory(settings.db_url)) as session:
        stmt = select(func.count()).select_from(table).filter_by(**where)
        return int(session.scalar(stmt) or 0)


def test_a_finished_job_and_then_its_model_are_deleted_with_their_bytes(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    job_id, model_id, checkpoint = finished_training(settings, tmp_path)
    video_id = add_output(settings, tmp_path, job_id, "video-1.mp4")
    assert len(stored_files(settings)) == 2
    assert count(settings, JobEvent, job_id=job_id) > 0

    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert_error(client.get(f"/v1/jobs/{job_id}"), 404, "not_found")
    assert_error(client.get(f"/v1/artifacts/{video_id}"), 404, "not_found")
    assert count(settings, JobEvent, job_id=job_id) == 0
    # the model outlives its training job: it and its checkpoint stay until deleted
    model = client.get(f"/v1/models/{model_id}").json()
    assert model["job_id"] is None and model["source"] == "training"
    assert client.get(f"/v1/artifacts/{checkpoint.id}").content == CHECKPOINT_BYTES
    assert list(stored_files(settings)) == [f"{checkpoint.id}/model.safetensors"]

    assert client.delete(f"/v1/models/{model_id}").status_code == 204
    assert_error(client.get(f"/v1/models/{model_id}"), 404, "not_found")
    assert_error(client.get(f"/v1/artifacts/{checkpoint.id}"), 404, "not_found")
    assert stored_files(settings) == {}
    assert not any((settings.store_dir / "artifacts").iterdir())  # no empty folders either
    assert count(settings, Artifact) == 0
    assert_error(client.delete(f"/v1/models/{model_id}"), 404, "not_found")


def test_deleting_a_model_first_leaves_its_job_and_its_other_files(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    job_id, model_id, _ = finished_training(settings, tmp_path)
    video_id = add_output(settings, tmp_path, job_id, "video-1.mp4")
    assert client.delete(f"/v1/models/{model_id}").status_code == 204
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert [a["id"] for a in job["artifacts"]] == [video_id]
    assert list(stored_files(settings)) == [f"{video_id}/video-1.mp4"]
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert stored_files(settings) == {}


def test_a_model_a_queued_synthesis_uses_and_an_unfinished_job_are_409(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    train_id, model_id, _ = finished_training(settings, tmp_path)
    synth = client.post("/v1/jobs", json={"type": "synthesize", "model_id": model_id})
    assert synth.status_code == 202, synth.text
    synth_id = synth.json()["id"]

    error = assert_error(client.delete(f"/v1/models/{model_id}"), 409, "model_in_use")
    assert error["details"] == {"job_id": synth_id}
    error = assert_error(client.delete(f"/v1/jobs/{synth_id}"), 409, "job_not_finished")
    assert error["details"] == {"status": "queued"}
    assert len(stored_files(settings)) == 1

    assert client.post(f"/v1/jobs/{synth_id}/cancel").status_code == 202
    assert client.delete(f"/v1/jobs/{synth_id}").status_code == 204
    assert client.delete(f"/v1/models/{model_id}").status_code == 204
    assert client.delete(f"/v1/jobs/{train_id}").status_code == 204
    assert client.get("/v1/jobs").json()["items"] == []
    assert stored_files(settings) == {}


def test_a_running_job_is_409(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    _, model_id, _ = finished_training(settings, tmp_path)
    synth_id = client.post("/v1/jobs", json={"type": "synthesize", "model_id": model_id}).json()
    with session_scope(session_factory(settings.db_url)) as session:
        jobs.claim_job(session=session, job_id=synth_id["id"], worker="w", lease_seconds=60)
    error = assert_error(client.delete(f"/v1/jobs/{synth_id['id']}"), 409, "job_not_finished")
    assert error["details"] == {"status": "running"}
    assert_error(client.delete(f"/v1/models/{model_id}"), 409, "model_in_use")


@pytest.fixture
def keyed(settings: Settings, queue: RecordingQueue) -> Iterator[tuple[TestClient, Settings]]:
    secured = settings.model_copy(update={"auth": "apikey"})
    with TestClient(create_app(secured, queue=queue)) as client:
        yield client, secured


def test_another_keys_job_and_model_are_404_and_stay(
    keyed: tuple[TestClient, Settings], tmp_path: Path
) -> None:
    client, settings = keyed
    alice, bob = new_key(settings, "alice"), new_key(settings, "bob")
    with session_scope(session_factory(settings.db_url)) as session:
        row = authenticate(session=session, key=alice)
        assert row is not None
        owner = row.id
    job_id, model_id, _ = finished_training(settings, tmp_path, owner_id=owner)
    as_bob = {"Authorization": f"Bearer {bob}"}
    assert_error(client.delete(f"/v1/jobs/{job_id}", headers=as_bob), 404, "not_found")
    assert_error(client.delete(f"/v1/models/{model_id}", headers=as_bob), 404, "not_found")
    assert len(stored_files(settings)) == 1
    as_alice = {"Authorization": f"Bearer {alice}"}
    assert client.delete(f"/v1/models/{model_id}", headers=as_alice).status_code == 204
    assert stored_files(settings) == {}


def test_files_left_by_a_crash_after_the_commit_go_with_the_orphan_check(
    settings: Settings, tmp_path: Path
) -> None:
    job_id, model_id, _ = finished_training(settings, tmp_path)
    add_output(settings, tmp_path, job_id, "video-1.mp4")
    sessions = session_factory(settings.db_url)
    store = ArtifactStore(settings.store_dir)
    with session_scope(sessions) as session:  # the rows go; the process "dies" before the files
        deletion.delete_model(session=session, owner_id=None, model_id=model_id)
        deletion.delete_job(session=session, owner_id=None, job_id=job_id)
    assert len(stored_files(settings)) == 2
    with session_scope(sessions) as session:
        assert sweep_orphans(session=session, store=store, grace_seconds=0) == 2
    assert stored_files(settings) == {}
