"""/metrics: Prometheus' text format that its own parser reads, with figures that move."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core import jobs
from core.db import session_factory, session_scope
from core.progress import JobProgress
from core.settings import Settings
from tests.service.conftest import upload
from tests.service.factories import finished_training


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics by (name, labels), parsed by prometheus_client."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_parse_and_move_with_jobs_and_uploads(
    client: TestClient, settings: Settings, clip: Path, tmp_path: Path
) -> None:
    before = scrape(client)
    assert value(before, "dyngen_jobs", type="train", status="succeeded") == 0
    assert value(before, "dyngen_queue_depth") == 0

    video = upload(client, clip)
    _, model_id, _ = finished_training(settings, tmp_path)
    queued = client.post("/v1/jobs", json={"type": "synthesize", "model_id": model_id})
    assert queued.status_code == 202

    after = scrape(client)
    assert value(after, "dyngen_upload_bytes_total", kind="video") == video["bytes"]
    assert value(after, "dyngen_jobs", type="train", status="succeeded") == 1
    assert value(after, "dyngen_jobs", type="synthesize", status="queued") == 1
    assert value(after, "dyngen_queue_depth") == 1
    finished = {"type": "train", "status": "succeeded"}
    assert value(after, "dyngen_job_duration_seconds_count", **finished) == 1
    assert value(after, "dyngen_job_duration_seconds_bucket", **finished, le="+Inf") == 1
    assert value(after, "dyngen_job_duration_seconds_bucket", **finished, le="1.0") == 1
    assert 0 <= value(after, "dyngen_job_duration_seconds_sum", **finished) < 1
    posted = {"method": "POST", "route": "/v1/videos", "status": "201"}
    assert value(after, "dyngen_http_request_duration_seconds_count", **posted) == 1
    by_id = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "404"}
    client.get("/v1/jobs/job_0a")
    assert value(scrape(client), "dyngen_http_request_duration_seconds_count", **by_id) == 1


def test_a_running_trainings_epoch_rate(client: TestClient, settings: Settings, clip: Path) -> None:
    video = upload(client, clip)
    body = {"type": "train", "video_ids": [video["id"]], "config": {"image_size": 16}}
    job_id = client.post("/v1/jobs", json=body).json()["id"]
    sessions = session_factory(settings.db_url)
    with session_scope(sessions) as session:
        jobs.claim_job(session=session, job_id=job_id, worker="w1", lease_seconds=60)
    for epoch in (1, 3):
        with session_scope(sessions) as session:
            progress = JobProgress(0.1, epoch=epoch, epochs=10, loss=1.0)
            jobs.record_progress(
                session=session,
                job_id=job_id,
                worker="w1",
                progress=progress,
                lease_seconds=60,
            )
        time.sleep(0.2)
    rate = value(scrape(client), "dyngen_training_epochs_per_second", worker="w1")
    assert 0 < rate < 2 / 0.2 * 1.01  # two epochs in at least 0.2 s
