"""Several API processes with PROMETHEUS_MULTIPROC_DIR: each scrape sums what all of them saw."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import free_port
from tests.service.processes import (
    Process,
    dyngen_command,
    ready,
    run_cli,
    running,
    service_env,
    wait_for,
)


def samples(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_two_api_processes_report_the_sum(tmp_path: Path, clip: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = service_env(tmp_path) | {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    run_cli(["migrate"], env)
    ports = [free_port(), free_port()]
    apis = [
        Process([*dyngen_command(), "api", "--port", str(p)], env, tmp_path / f"api-{p}.log")
        for p in ports
    ]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    with running(*apis):
        for base, api in zip(bases, apis, strict=True):
            wait_for("the API to be ready", ready(base), 60, api)
        for base in bases:
            with clip.open("rb") as f:
                sent = httpx.post(f"{base}/v1/videos", files={"file": (clip.name, f)}, timeout=30)
            assert sent.status_code == 201, sent.text
        uploaded = ("dyngen_upload_bytes_total", frozenset({("kind", "video")}))
        posted = frozenset({("method", "POST"), ("route", "/v1/videos"), ("status", "201")})
        for base in bases:  # either process answers with both processes' figures
            found = samples(base)
            assert found[uploaded] == 2 * clip.stat().st_size
            assert found[("dyngen_http_request_duration_seconds_count", posted)] == 2
    assert any(shared.iterdir())  # the values lived in the shared folder
