"""The README's curl flow, as written, against a real `dyngen serve` in an empty directory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from model.video_decode import probe_video
from tests.readme import sh_block, with_tiny_epochs
from tests.service.conftest import free_port
from tests.service.processes import (
    Process,
    dyngen_command,
    ready,
    running,
    service_env,
    wait_for,
)


def test_the_curl_flow_runs_as_written(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    block = sh_block("### The whole flow with curl")
    assert "../shared" not in block
    port = free_port()
    env = service_env(tmp_path)
    serve = Process([*dyngen_command(), "serve", "--port", str(port)], env, tmp_path / "serve.log")
    script = with_tiny_epochs(block, 2)
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    script = script.replace(".venv/bin/dyngen", dyngen_command()[0])
    work = tmp_path / "fresh"  # the user's directory: only what the commands make
    work.mkdir()
    with running(serve):
        wait_for("dyngen serve to be ready", ready(f"http://127.0.0.1:{port}"), 60, serve)
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{serve.tail()}"
    assert (work / "model.safetensors").stat().st_size > 0
    assert probe_video(work / "video-1.mp4").frames == 120
    # the motion ratio the flow prints: a number, not a missing key
    float(done.stdout.strip().splitlines()[-1])
