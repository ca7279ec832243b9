"""The README's Python client flow and its `dyngen remote` commands, as written, against a
real `dyngen serve`, in an empty directory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from model.video_decode import probe_video
from tests.conftest import ROOT
from tests.readme import with_tiny_epochs
from tests.service.conftest import TINY_TRAIN, free_port
from tests.service.offline_model import offline_checkpoint
from tests.service.processes import dyngen_command, run_cli, service_env, serving

__all__ = ["offline_checkpoint"]  # the fixture, imported for these tests
HEADING = "### The same flow in Python"


def blocks(language: str) -> str:
    """The first block of `language` under the README's Python client heading."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(f"\n{HEADING}\n") :]
    match = re.search(rf"```{language}\n(.*?)```", after, re.DOTALL)
    assert match is not None, f"no {language} block under {HEADING!r}"
    return match.group(1)


def test_the_readme_client_flow_and_remote_commands_run(
    tmp_path: Path, offline_checkpoint: Path
) -> None:
    env = service_env(tmp_path)
    work = tmp_path / "fresh"
    work.mkdir()
    run_cli(["sample-clip", str(work / "sample.mp4")], env)
    port = free_port()
    script = with_tiny_epochs(blocks("python"), 2)
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    commands = blocks("sh").replace(".venv/bin/dyngen", dyngen_command()[0])
    # what the shell block names: its configs, and a model trained offline
    (work / "train.json").write_text(json.dumps(TINY_TRAIN))
    (work / "synth.json").write_text(json.dumps({"num_videos": 1, "frames": 8}))
    (work / "runs" / "sample").mkdir(parents=True)
    shutil.copy(offline_checkpoint, work / "runs" / "sample" / "model.safetensors")
    env["DYNGEN_URL"] = f"http://127.0.0.1:{port}"
    with serving(tmp_path, env, port) as (_base, serve):
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{serve.tail()}"
        assert probe_video(work / "video-1.mp4").frames == 120
        assert not list(work.glob(".*.part"))
        shell = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", commands],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert shell.returncode == 0, f"{shell.stdout}\n{shell.stderr}\n{serve.tail()}"
    assert probe_video(work / "new" / "video-1.mp4").frames == 8
    assert re.fullmatch(r"mdl_[0-9a-f]+", shell.stdout.strip().splitlines()[-1])
