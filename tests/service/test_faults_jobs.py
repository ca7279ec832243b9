"""Jobs that outlive their workers, with real processes: a cancel sent after a worker's death
leaves no files, and a job that keeps killing its workers ends `worker_lost` after
DYNGEN_MAX_ATTEMPTS of them instead of going to the next worker forever."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.chaos import RedisServer
from tests.service.conftest import upload
from tests.service.processes import Process, wait_for
from tests.service.test_faults import (
    RESUME_EVERY,
    _epoch,
    _events,
    _finished,
    _holder,
    _job,
    _stack,
    _train,
    pg_schema,
    redis_server,
)

pytestmark = pytest.mark.slow
__all__ = ["pg_schema", "redis_server"]  # fixtures this module uses


def _job_files(store: Path, job_id: str) -> list[Path]:
    """The job's resume state and scratch folders in the shared store."""
    found = list((store / "tmp").glob(f"job-{job_id}-*")) if (store / "tmp").exists() else []
    resume = store / "resume" / job_id
    return found + ([resume] if resume.exists() else [])


def _progress_of_attempt(http: TestClient, job_id: str, attempt: int) -> bool:
    events = _events(http, job_id)
    return any(e["kind"] == "progress" and e["data"]["attempt"] == attempt for e in events)


def _kill(process: Process) -> None:
    os.killpg(process.proc.pid, signal.SIGKILL)
    process.proc.wait(10)


def test_cancel_after_a_death_leaves_nothing_and_a_worker_killer_ends_worker_lost(
    tmp_path: Path, pg_schema: str, redis_server: RedisServer, clip: Path
) -> None:
    stack = _stack(tmp_path, pg_schema, redis_server)
    stack.env["DYNGEN_MAX_ATTEMPTS"] = "2"
    store = tmp_path / "shared-storage"
    with stack, stack.client() as http:
        a, b = stack.start_workers(["a", "b"])
        video_id = upload(http, clip)["id"]

        # 1. its worker dies with resume state saved; the cancel comes after
        doomed = _train(http, video_id, epochs=100_000)
        wait_for("resume state", lambda: _epoch(http, doomed) > RESUME_EVERY, 90, a, b)
        victim = _holder(http, doomed, [a, b])
        survivor = b if victim is a else a
        _kill(victim)
        assert len(_job_files(store, doomed)) == 2  # resume state and a scratch folder
        cancelled = http.post(f"/v1/jobs/{doomed}/cancel").json()
        assert cancelled["status"] == "running" and cancelled["cancel_requested"]
        assert _finished(http, doomed, 60, survivor)["status"] == "cancelled"
        wait_for("its files to go", lambda: _job_files(store, doomed) == [], 10, survivor)

        # 2. a job whose every attempt kills its worker (as the kernel's OOM killer would)
        killer = _train(http, video_id, epochs=100_000)
        wait_for("the first attempt", lambda: _epoch(http, killer) >= 2, 60, survivor)
        _kill(survivor)
        c = stack.worker("c")  # its sweeper re-sends it; c counts the loss and takes it
        wait_for("the second attempt", lambda: _job(http, killer)["attempts"] == 2, 60, c)
        wait_for("it to train", lambda: _progress_of_attempt(http, killer, 2), 60, c)
        _kill(c)
        d = stack.worker("d")  # counts the second loss: DYNGEN_MAX_ATTEMPTS, so it fails it
        job = _finished(http, killer, 60, d)
        events = _events(http, killer)
    assert job["status"] == "failed" and job["error"]["code"] == "worker_lost", job
    assert "lost 2 times" in job["error"]["message"] and job["attempts"] == 2
    started = [e["data"]["attempt"] for e in events if e["data"].get("status") == "running"]
    assert started == [1, 2]
    lost = [e["data"] for e in events if e["data"].get("reason") == "worker_lost"]
    assert lost == [{"status": "queued", "reason": "worker_lost", "attempt": 1}]
    attempts = {e["data"]["attempt"] for e in events if e["kind"] == "progress"}
    assert attempts == {1, 2}  # each progress line says which attempt wrote it
    assert _job_files(store, killer) == []
