"""The README's offline commands run as written in an empty directory (no ../shared)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from model.video_decode import probe_video
from tests.readme import sh_block, with_tiny_epochs


def test_the_offline_commands_run_in_an_empty_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = sh_block("## Offline commands")
    assert "../shared" not in block
    monkeypatch.chdir(tmp_path)  # a fresh place: nothing but what the commands make
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for line in with_tiny_epochs(block).splitlines():
        program, *args = shlex.split(line)
        assert program == ".venv/bin/dyngen", line
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, f"{line}\n{result.output}"
    assert probe_video(tmp_path / "sample.mp4").frames == 300
    assert (tmp_path / "runs/sample/model.safetensors").is_file()
    for name in ("video-1.mp4", "video-2.mp4"):
        assert probe_video(tmp_path / "runs/sample/new" / name).frames == 240
    assert (tmp_path / "runs/sample/new/video-1.gif").is_file()
    assert probe_video(tmp_path / "runs/recovered/recovered.mp4").frames == 60
