"""The S3 backend against a real S3 server (moto's): uploads stream into the bucket, downloads
are presigned URLs that curl fetches, a store that is down is a coded error, and the sweeps
clean the bucket. Nothing is shared between processes but the bucket."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core import jobs
from core.artifacts import Publication
from core.db import session_factory, session_scope
from core.objectstore import S3Store
from core.orphans import sweep_orphans
from core.settings import Settings
from core.storage import StorageUnavailable
from core.stores import open_store
from core.tables import Artifact
from tests.service.chaos import TcpProxy
from tests.service.conftest import TINY_TRAIN, assert_error, free_port, make_settings, upload
from tests.service.factories import finished_training
from tests.service.s3server import Bucket, bucket, moto_server, point_at

__all__ = ["bucket", "moto_server"]  # fixtures this module uses


def s3_settings(db_url: str, root: Path, bucket: Bucket, **overrides: Any) -> Settings:
    """A deployment's settings with its files in `bucket` and scratch under `root`."""
    values = {"storage_url": bucket.url, "scratch_dir": root / "scratch", "storage_retries": 1}
    return make_settings(db_url, root, **(values | overrides))


def curl(url: str) -> tuple[bytes, dict[str, str]]:
    """GET `url` with curl (a client that knows nothing of the API): body and headers."""
    done = subprocess.run(
        ["curl", "-sS", "--fail", "-D", "-", url], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return body, headers


def test_an_upload_streams_into_the_bucket_and_downloads_by_presigned_url(
    db_url: str, tmp_path: Path, bucket: Bucket, clip: Path
) -> None:
    settings = s3_settings(db_url, tmp_path, bucket)
    with TestClient(create_app(settings)) as http:
        video = upload(http, clip)
        assert bucket.keys() == [f"videos/{video['id']}.mp4"]
        assert bucket.unfinished_uploads() == []
        # the API kept nothing: its staged copy went once the upload was published
        assert list((tmp_path / "scratch" / "uploads").iterdir()) == []
        assert not (tmp_path / "storage").exists()

        response = http.get(video["content_url"], follow_redirects=False)
        assert response.status_code == 307, response.text
        assert response.headers["etag"] == f'"{video["sha256"]}"'
        body, headers = curl(response.headers["location"])
        assert body == clip.read_bytes()
        assert headers["content-disposition"] == 'attachment; filename="clip.mp4"'
        assert headers["content-type"] == "video/mp4"

        again = {"If-None-Match": response.headers["etag"]}
        assert http.get(video["content_url"], headers=again).status_code == 304
        inline = http.get(f"{video['content_url']}?inline=true", follow_redirects=False)
        assert curl(inline.headers["location"])[1]["content-disposition"].startswith("inline;")


def test_artifacts_download_by_a_presigned_url_or_its_json(
    db_url: str, tmp_path: Path, bucket: Bucket
) -> None:
    settings = s3_settings(db_url, tmp_path, bucket, presign_downloads="url")
    _, _, artifact = finished_training(settings, tmp_path)
    assert bucket.keys("artifacts/") == [artifact.storage_key]
    with TestClient(create_app(settings)) as http:
        response = http.get(f"/v1/artifacts/{artifact.id}")
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{artifact.sha256}"'
        named = response.json()
        assert named["expires_in"] == settings.presign_seconds
        body, headers = curl(named["url"])
        assert hashlib.sha256(body).hexdigest() == artifact.sha256
        assert headers["content-disposition"] == 'attachment; filename="model.safetensors"'

        bucket.client.delete_object(Bucket=bucket.name, Key=f"dyngen/{artifact.storage_key}")
        assert_error(http.get(f"/v1/artifacts/{artifact.id}"), 410, "content_gone")


def test_a_store_that_is_down_answers_503_storage_unavailable(
    db_url: str, tmp_path: Path, bucket: Bucket, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    settings = s3_settings(db_url, tmp_path, bucket, storage_timeout_seconds=1)
    with TestClient(create_app(settings)) as http:
        with clip.open("rb") as f:
            response = http.post("/v1/videos", files={"file": (clip.name, f)})
        assert_error(response, 503, "storage_unavailable")
        assert http.get("/v1/videos").json()["items"] == []
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["storage"].startswith("error")
    assert list((tmp_path / "scratch" / "uploads").iterdir()) == []


def test_an_upload_refused_midway_aborts_its_multipart_upload(
    db_url: str, tmp_path: Path, bucket: Bucket
) -> None:
    limit = 12 * 1024 * 1024  # past one 8 MiB part: a part is in the store when it stops
    settings = s3_settings(db_url, tmp_path, bucket, max_upload_bytes=limit)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (limit + 1))
    with TestClient(create_app(settings)) as http, big.open("rb") as f:
        response = http.post("/v1/videos", files={"file": (big.name, f)})
    assert_error(response, 413, "upload_too_large")
    assert bucket.unfinished_uploads() == []
    assert bucket.keys() == []


def test_the_sweeps_clean_the_bucket_of_what_no_row_names(
    db_url: str, tmp_path: Path, bucket: Bucket, clip: Path
) -> None:
    settings = s3_settings(db_url, tmp_path, bucket, orphan_grace_seconds=0)
    with TestClient(create_app(settings)) as http:
        kept = upload(http, clip)
    store = open_store(settings)
    put = bucket.client.put_object
    for key in ("videos/vid_gone.mp4", "artifacts/art_gone/x.bin", "resume/job_gone/resume.state"):
        put(Bucket=bucket.name, Key=f"dyngen/{key}", Body=b"left behind")
    bucket.client.create_multipart_upload(Bucket=bucket.name, Key="dyngen/tmp/upload-x.part")
    assert store.sweep_staging() == 1
    assert bucket.unfinished_uploads() == []
    with session_scope(session_factory(settings.db_url)) as session:
        assert sweep_orphans(session=session, store=store, grace_seconds=0) == 3
    assert bucket.keys() == [f"videos/{kept['id']}.mp4"]


def test_a_publication_cut_off_by_the_store_leaves_no_artifact(
    db_url: str,
    tmp_path: Path,
    bucket: Bucket,
    moto_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = TcpProxy("127.0.0.1", moto_server.port)
    point_at(monkeypatch, f"http://127.0.0.1:{proxy.port}")
    settings = s3_settings(db_url, tmp_path, bucket, storage_timeout_seconds=2)
    store = open_store(settings)
    assert isinstance(store, S3Store)
    sessions = session_factory(settings.db_url)
    with session_scope(sessions) as s:
        job_id = jobs.create_job(session=s, owner_id=None, type="train", config={}, seed=0).id
    first, second = tmp_path / "first.json", tmp_path / "second.bin"
    first.write_text("{}")
    second.write_bytes(b"\1" * (20 * 1024 * 1024))  # a multipart upload
    try:
        with (
            pytest.raises(StorageUnavailable),
            Publication(store) as publication,
            session_scope(sessions) as s,
        ):
            publication.add(
                session=s,
                job_id=job_id,
                owner_id=None,
                kind="metrics",
                source=first,
                media_type="application/json",
            )
            proxy.cut()
            publication.add(
                session=s,
                job_id=job_id,
                owner_id=None,
                kind="checkpoint",
                source=second,
                media_type="application/octet-stream",
            )
    finally:
        proxy.restore()
        proxy.close()
    with session_scope(sessions) as s:
        assert s.query(Artifact).count() == 0  # no row without its file
    # the first file's undo could not reach the store either: the orphan check removes it
    direct = s3_settings(db_url, tmp_path, bucket, orphan_grace_seconds=0)
    point_at(monkeypatch, bucket.endpoint)
    swept = open_store(direct)
    with session_scope(sessions) as s:
        sweep_orphans(session=s, store=swept, grace_seconds=0)
    swept.sweep_staging()
    assert bucket.keys("artifacts/") == []
    assert bucket.unfinished_uploads() == []


def test_an_upload_staged_without_its_key_is_copied_there_at_publication(
    tmp_path: Path, bucket: Bucket
) -> None:
    store = open_store(Settings(storage_url=bucket.url, data_dir=tmp_path))
    named, unnamed = store.stage(), store.stage()
    named.name("videos/a.mp4")
    for staged in (named, unnamed):
        staged.write(b"x" * (9 * 1024 * 1024))  # one part sent while streaming
        staged.write(b"tail")
        staged.sync()
    begun = sorted(bucket.unfinished_uploads())
    assert begun[1] == "dyngen/videos/a.mp4" and begun[0].startswith("dyngen/tmp/upload-")
    store.publish(named, "videos/a.mp4")
    store.publish(unnamed, "videos/b.mp4")
    assert bucket.keys() == ["videos/a.mp4", "videos/b.mp4"]
    assert bucket.unfinished_uploads() == []
    body = bucket.client.get_object(Bucket=bucket.name, Key="dyngen/videos/b.mp4")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == unnamed.sha256
    assert list((tmp_path / "scratch" / "uploads").iterdir()) == []


def test_a_job_whose_stored_video_vanished_fails_missing_input(
    db_url: str, tmp_path: Path, bucket: Bucket, clip: Path, queue: Any
) -> None:
    from worker.runner import run_job

    settings = s3_settings(db_url, tmp_path, bucket, device="cpu")
    with TestClient(create_app(settings, queue=queue)) as http:
        video = upload(http, clip)
        body = {"type": "train", "video_ids": [video["id"]], "config": TINY_TRAIN}
        job_id = http.post("/v1/jobs", json=body).json()["id"]
        bucket.client.delete_object(Bucket=bucket.name, Key=f"dyngen/videos/{video['id']}.mp4")
        assert run_job(job_id, settings).outcome is jobs.ClaimOutcome.CLAIMED
        job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["code"] == "missing_input", job
    assert video["id"] in job["error"]["message"] and "dyngen/" not in job["error"]["message"]


def test_intermediate_checkpoints_live_in_the_bucket_and_synthesize(
    db_url: str, tmp_path: Path, bucket: Bucket, clip: Path, queue: Any
) -> None:
    from worker.runner import run_job

    settings = s3_settings(db_url, tmp_path, bucket, device="cpu", keep_checkpoints=2)
    with TestClient(create_app(settings, queue=queue)) as http:
        video_id = upload(http, clip)["id"]
        config = TINY_TRAIN | {"epochs": 5, "checkpoint_every": 2}
        body = {"type": "train", "video_ids": [video_id], "config": config}
        job_id = http.post("/v1/jobs", json=body).json()["id"]
        run_job(job_id, settings)
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded", job
        kept = [a for a in job["artifacts"] if a["kind"] == "intermediate_checkpoint"]
        assert sorted(a["epoch"] for a in kept) == [2, 4]
        stored = [k for k in bucket.keys("artifacts/") if "model-epoch-" in k]
        assert sorted(k.rsplit("/", 1)[1] for k in stored) == [
            "model-epoch-2.safetensors",
            "model-epoch-4.safetensors",
        ]
        newest = next(a for a in kept if a["epoch"] == 4)
        synth = {"type": "synthesize", "config": {"num_videos": 1, "frames": 6}}
        created = http.post("/v1/jobs", json=synth | {"checkpoint_id": newest["id"]}).json()
        run_job(created["id"], settings)
        done = http.get(f"/v1/jobs/{created['id']}").json()
    assert done["status"] == "succeeded", done
    assert bucket.keys("resume/") == [] and bucket.unfinished_uploads() == []
