"""Webhooks and Idempotency-Key end to end: `dyngen serve` (API + its worker process) trains
a job and the worker's deliverer posts it to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.service.conftest import TINY_TRAIN, free_port
from tests.service.flows import ok, upload
from tests.service.processes import service_env, serving, wait_for
from tests.service.receiver import receiving, verify


def test_a_trained_job_is_posted_signed_after_two_failures(tmp_path: Path, clip: Path) -> None:
    env = service_env(
        tmp_path,
        webhook_allowed_networks="127.0.0.1",
        webhook_backoff_seconds="0.5",
        webhook_poll_seconds="0.2",
    )
    with (
        receiving(500, 500) as receiver,
        serving(tmp_path, env, free_port()) as (base, serve),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        secret = ok(http.post("/v1/webhooks/secret"), 201)["secret"]
        video_id = upload(http, clip)
        body = {
            "type": "train",
            "video_ids": [video_id],
            "config": TINY_TRAIN,
            "webhook": {"url": receiver.url},
        }
        once = {"Idempotency-Key": "e2e-train-1"}
        job = ok(http.post("/v1/jobs", json=body, headers=once), 202)
        retried = http.post("/v1/jobs", json=body, headers=once)
        assert retried.status_code == 202 and retried.json()["id"] == job["id"]
        changed = http.post("/v1/jobs", json=body | {"seed": 4}, headers=once)
        assert changed.json()["error"]["code"] == "idempotency_key_reused"
        private = body | {"webhook": {"url": "http://169.254.169.254/latest/meta-data/"}}
        refused = http.post("/v1/jobs", json=private)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == (
            "webhook_url_forbidden"
        )
        assert [j["id"] for j in ok(http.get("/v1/jobs"))["items"]] == [job["id"]]

        wait_for("the webhook to be delivered", receiver.delivered, 180, serve)
        final = ok(http.get(f"/v1/jobs/{job['id']}"))
        deliveries = ok(http.get(f"/v1/jobs/{job['id']}/webhooks"))["items"]
    assert final["status"] == "succeeded"
    assert [r.answered for r in receiver.received] == [500, 500, 200]
    for got in receiver.received:
        verify(secret, got)
        assert json.loads(got.body) == final
    [delivery] = deliveries
    assert delivery["status"] == "delivered" and delivery["event"] == "completed"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
