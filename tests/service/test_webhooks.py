"""Webhooks: the outbox, signed deliveries to a real HTTP receiver, retries, refused addresses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core import jobs
from core.db import session_factory, session_scope
from core.progress import JobProgress
from core.settings import Settings
from core.tables import WebhookDelivery
from tests.service.conftest import RecordingQueue, assert_error
from tests.service.factories import finished_training
from tests.service.receiver import Receiver, receiving, verify
from worker.webhooks import Deliverer

FORBIDDEN = [
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.168.1.20:8080/",
    "http://127.0.0.2/",  # loopback, though not the allowed 127.0.0.1
    "http://[::1]/hook",
    "http://[::ffff:10.0.0.1]/hook",  # an IPv4 address written as IPv6
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "https://100.64.0.1/",  # carrier-grade NAT
]


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    """Settings under which webhooks may reach 127.0.0.1 only, with quick retries."""
    return settings.model_copy(
        update={
            "webhook_allowed_networks": "127.0.0.1",
            "webhook_backoff_seconds": 0.2,
            "webhook_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
def api(hooked: Settings, queue: RecordingQueue) -> Iterator[TestClient]:
    with TestClient(create_app(hooked, queue=queue)) as client:
        yield client


def _secret(client: TestClient) -> str:
    response = client.post("/v1/webhooks/secret")
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


def _synthesis(client: TestClient, model_id: str, webhook: dict[str, Any]) -> dict[str, Any]:
    body = {"type": "synthesize", "model_id": model_id, "webhook": webhook}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def _finish(settings: Settings, job_id: str, status: str = "succeeded") -> None:
    """What a worker does: claim the job, then end it (the outbox row is written then)."""
    with session_scope(session_factory(settings.db_url)) as session:
        jobs.claim_job(session=session, job_id=job_id, worker="w", lease_seconds=60)
    with session_scope(session_factory(settings.db_url)) as session:
        metrics = {"note": "done"} if status == "succeeded" else None
        jobs.finish_job(session=session, job_id=job_id, worker="w", status=status, metrics=metrics)


def _deliver_until(deliverer: Deliverer, receiver: Receiver, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.delivered()) < count:
        assert time.monotonic() < deadline, f"not delivered: {receiver.received}"
        deliverer.deliver_due()
        time.sleep(0.05)


def test_a_finished_job_is_posted_signed_with_its_json(
    api: TestClient, hooked: Settings, tmp_path: Path
) -> None:
    secret = _secret(api)
    _, model_id, _ = finished_training(hooked, tmp_path)
    with receiving() as receiver:
        job = _synthesis(api, model_id, {"url": receiver.url})
        assert job["webhook"] == {
            "url": receiver.url,
            "events": ["completed", "failed", "cancelled"],
        }
        deliverer = Deliverer(hooked)
        assert deliverer.deliver_due() == 0  # queued and running raise no default event
        _finish(hooked, job["id"])
        assert deliverer.deliver_due() == 1
        assert deliverer.deliver_due() == 0  # delivered once, not again
    [got] = receiver.received
    verify(secret, got)
    assert got.path == "/hooks/dyngen?source=test"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["dyngen-event"] == "completed"
    assert json.loads(got.body) == api.get(f"/v1/jobs/{job['id']}").json()
    assert json.loads(got.body)["status"] == "succeeded"
    [delivery] = api.get(f"/v1/jobs/{job['id']}/webhooks").json()["items"]
    assert delivery["status"] == "delivered" and delivery["event"] == "completed"
    assert [(a["attempt"], a["status_code"], a["ok"]) for a in delivery["attempts"]] == [
        (1, 200, True)
    ]


def test_a_receiver_failing_twice_gets_it_the_third_time_with_backoff(
    api: TestClient, hooked: Settings, tmp_path: Path
) -> None:
    secret = _secret(api)
    _, model_id, _ = finished_training(hooked, tmp_path)
    with receiving(500, 500) as receiver:
        job = _synthesis(api, model_id, {"url": receiver.url})
        assert api.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
        _deliver_until(Deliverer(hooked), receiver, 1, timeout=20)
    assert [r.answered for r in receiver.received] == [500, 500, 200]
    bodies = {r.body for r in receiver.received}
    assert len(bodies) == 1, "every retry sends the same body"
    for got in receiver.received:
        verify(secret, got)
        assert got.headers["dyngen-event"] == "cancelled"
    [delivery] = api.get(f"/v1/jobs/{job['id']}/webhooks").json()["items"]
    attempts = delivery["attempts"]
    assert [(a["status_code"], a["ok"]) for a in attempts] == [
        (500, False),
        (500, False),
        (200, True),
    ]
    assert attempts[0]["error"] == "the receiver answered 500"
    first_gap, second_gap = _gaps(attempts)
    assert first_gap >= 0.2 and second_gap >= 0.4, (first_gap, second_gap)  # doubling


def _gaps(attempts: list[dict[str, Any]]) -> tuple[float, float]:
    at = [datetime.fromisoformat(a["at"]) for a in attempts]
    return (at[1] - at[0]).total_seconds(), (at[2] - at[1]).total_seconds()


def test_retries_stop_after_the_retry_window(
    api: TestClient, hooked: Settings, tmp_path: Path
) -> None:
    _secret(api)
    _, model_id, _ = finished_training(hooked, tmp_path)
    brief = hooked.model_copy(update={"webhook_retry_seconds": 4.0, "webhook_backoff_seconds": 0.1})
    with receiving(*[503] * 100) as receiver:
        job = _synthesis(api, model_id, {"url": receiver.url})
        _finish(brief, job["id"], "failed")
        deliverer = Deliverer(brief)
        deadline = time.monotonic() + 20
        while _deliveries(api, job["id"])[0]["status"] == "pending":
            assert time.monotonic() < deadline
            deliverer.deliver_due()
            time.sleep(0.05)
        sent = len(receiver.received)
        time.sleep(0.3)
        assert deliverer.deliver_due() == 0 and len(receiver.received) == sent
    [delivery] = _deliveries(api, job["id"])
    assert delivery["status"] == "failed" and delivery["next_attempt_at"] is None
    # 0.1 s doubling within 4 s: several tries, however slow the first one came (shared CPU)
    assert len(delivery["attempts"]) == sent >= 2
    assert not any(a["ok"] for a in delivery["attempts"])


def _deliveries(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"/v1/jobs/{job_id}/webhooks").json()["items"]
    return items


def test_private_loopback_and_link_local_addresses_are_refused(
    client: TestClient, api: TestClient, settings: Settings, tmp_path: Path
) -> None:
    _secret(client)
    _, model_id, _ = finished_training(settings, tmp_path)
    body = {"type": "synthesize", "model_id": model_id}
    for url in [*FORBIDDEN, "http://127.0.0.1:9/hook", "http://localhost/hook"]:
        response = client.post("/v1/jobs", json=body | {"webhook": {"url": url}})
        error = assert_error(response, 422, "webhook_url_forbidden")
        assert error["details"][0]["field"] == "webhook.url", error
    # the allow-list lets exactly 127.0.0.1 through, nothing else private
    for url in FORBIDDEN:
        response = api.post("/v1/jobs", json=body | {"webhook": {"url": url}})
        assert_error(response, 422, "webhook_url_forbidden")
    for url in ["ftp://example.com/x", "http://user:pw@127.0.0.1/", "127.0.0.1/hook", "http://"]:
        response = api.post("/v1/jobs", json=body | {"webhook": {"url": url}})
        error = assert_error(response, 422, "validation_error")
        assert error["details"][0]["field"] == "webhook.url", error
    events = {"url": "http://127.0.0.1:9/", "events": ["finished"]}
    assert_error(api.post("/v1/jobs", json=body | {"webhook": events}), 422, "validation_error")
    assert client.get("/v1/jobs?type=synthesize").json()["items"] == []


def test_a_setting_lets_webhooks_reach_private_addresses(
    settings: Settings, queue: RecordingQueue, tmp_path: Path
) -> None:
    lenient = settings.model_copy(update={"webhook_allow_private": True})
    _, model_id, _ = finished_training(lenient, tmp_path)
    with TestClient(create_app(lenient, queue=queue)) as client:
        _secret(client)
        for url in ["http://10.0.0.1/hook", "http://169.254.169.254/"]:
            assert _synthesis(client, model_id, {"url": url})["webhook"]["url"] == url


def test_a_webhook_needs_a_secret_to_sign_with(
    api: TestClient, hooked: Settings, tmp_path: Path
) -> None:
    _, model_id, _ = finished_training(hooked, tmp_path)
    body = {"type": "synthesize", "model_id": model_id, "webhook": {"url": "http://127.0.0.1:9/"}}
    error = assert_error(api.post("/v1/jobs", json=body), 409, "webhook_secret_missing")
    assert "POST /v1/webhooks/secret" in error["message"]


def test_the_address_is_checked_again_at_delivery(
    api: TestClient, hooked: Settings, tmp_path: Path
) -> None:
    """A host that resolved to an allowed address at creation and to a forbidden one at
    delivery (DNS rebinding; here the allow-list is gone) gets nothing."""
    _secret(api)
    _, model_id, _ = finished_training(hooked, tmp_path)
    with receiving() as receiver:
        job = _synthesis(api, model_id, {"url": receiver.url})
        _finish(hooked, job["id"])
        strict = hooked.model_copy(update={"webhook_allowed_networks": ""})
        assert Deliverer(strict).deliver_due() == 1
    assert receiver.received == []
    [delivery] = _deliveries(api, job["id"])
    [attempt] = delivery["attempts"]
    assert not attempt["ok"] and "loopback, private or link-local" in attempt["error"]
    assert delivery["status"] == "pending"  # retried later, like any failure


def test_progress_events_are_coalesced_and_rotation_re_signs(
    api: TestClient, hooked: Settings, tmp_path: Path
) -> None:
    _secret(api)
    _, model_id, _ = finished_training(hooked, tmp_path)
    sessions = session_factory(hooked.db_url)
    with receiving() as receiver:
        job = _synthesis(api, model_id, {"url": receiver.url, "events": ["progress"]})
        with session_scope(sessions) as session:
            jobs.claim_job(session=session, job_id=job["id"], worker="w", lease_seconds=60)
        for epoch in (1, 2, 3):
            _progress(hooked, job["id"], epoch)
        with session_scope(sessions) as session:
            pending = session.query(WebhookDelivery).filter_by(job_id=job["id"]).count()
        assert pending == 1  # one waiting delivery carries the latest progress
        new_secret = _secret(api)
        deliverer = Deliverer(hooked)
        assert deliverer.deliver_due() == 1
        _progress(hooked, job["id"], 4)
        assert deliverer.deliver_due() == 1
        _finish_running(hooked, job["id"])
        assert deliverer.deliver_due() == 0  # only progress was asked for
    first, second = receiver.received
    assert json.loads(first.body)["progress"]["epoch"] == 3
    assert json.loads(second.body)["progress"]["epoch"] == 4
    verify(new_secret, first)  # signed with the secret current at delivery
    assert {r.headers["dyngen-event"] for r in receiver.received} == {"progress"}


def _progress(settings: Settings, job_id: str, epoch: int) -> None:
    progress = JobProgress(epoch / 10, epoch=epoch, epochs=10, loss=1.0, eta_seconds=1)
    with session_scope(session_factory(settings.db_url)) as session:
        jobs.record_progress(
            session=session, job_id=job_id, worker="w", progress=progress, lease_seconds=60
        )


def _finish_running(settings: Settings, job_id: str) -> None:
    with session_scope(session_factory(settings.db_url)) as session:
        jobs.finish_job(session=session, job_id=job_id, worker="w", status="succeeded")


def test_deleting_a_job_drops_its_deliveries(
    api: TestClient, hooked: Settings, tmp_path: Path
) -> None:
    _secret(api)
    _, model_id, _ = finished_training(hooked, tmp_path)
    with receiving() as receiver:
        job = _synthesis(api, model_id, {"url": receiver.url})
        api.post(f"/v1/jobs/{job['id']}/cancel")
        assert len(_deliveries(api, job["id"])) == 1
        assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
        assert Deliverer(hooked).deliver_due() == 0
    assert receiver.received == []
    with session_scope(session_factory(hooked.db_url)) as session:
        assert session.query(WebhookDelivery).count() == 0
