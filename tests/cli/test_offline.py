"""The offline commands: real runs, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import cli
from model.procedural import waves
from model.video_decode import probe_video
from model.video_writers import write_video
from tests.conftest import ROOT

TINY = [
    "--image-size",
    "16",
    "--frames",
    "16",
    "--chunk-length",
    "8",
    "--base-channels",
    "4",
    "--state-dim",
    "4",
    "--noise-dim",
    "4",
    "--langevin-steps",
    "2",
    "--device",
    "cpu",
    "--method",  # the dynamic generator: the default auto keeps the LDS over most tiny models
    "abptt",
]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 24-frame 16x16 procedural clip."""
    path = tmp_path / "clip.mp4"
    write_video(path, iter(waves(24, 16)), 25)
    return path


def run(*args: str) -> tuple[int, str]:
    """Invoke `dyngen` in-process; returns the exit code and stderr + stdout."""
    result = CliRunner().invoke(cli, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


def error_line(output: str) -> str:
    """The single 'Error: ...' line the CLI printed."""
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_train_then_synthesize_through_the_console_script(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "train",
            str(clip),
            "--out",
            str(out),
            "--epochs",
            "3",
            *TINY,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and "psnr" in metrics
    syn = tmp_path / "syn"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "synthesize",
            str(out / "model.safetensors"),
            "--out",
            str(syn),
            "--frames",
            "64",
            "--num-videos",
            "2",
            "--format",
            "mp4,gif",
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "video-2.gif" in done.stdout
    assert probe_video(syn / "video-1.mp4").frames == 64
    # the gif encoder merges identical consecutive frames (keeping their duration)
    assert 56 <= probe_video(syn / "video-2.gif").frames <= 64


def test_recover_writes_the_recovered_video(tmp_path: Path, clip: Path) -> None:
    code, output = run(
        "recover",
        str(clip),
        "--missing-frames",
        "1-3,9",
        "--out",
        str(tmp_path / "r"),
        "--epochs",
        "2",
        *TINY,
    )
    assert code == 0, output
    assert probe_video(tmp_path / "r" / "recovered.mp4").frames == 16
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["recovery_error"] > 0 and "recovery_error_temporal_mean" in metrics
    assert metrics["recovery_method"] == "blend" and "recovery_error_model" in output


def test_single_chunk_warns(tmp_path: Path, clip: Path) -> None:
    code, output = run(
        "train",
        str(clip),
        "--out",
        str(tmp_path / "o"),
        "--epochs",
        "1",
        *TINY,
        "--chunk-length",
        "30",
    )
    assert code == 0 and "warning: the clip gives one chunk" in output


def test_config_file_and_flags_share_the_apis_config(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 2, "frames": 8}))
    code, output = run(
        "train",
        str(clip),
        "--out",
        str(tmp_path / "o"),
        "--config",
        str(tmp_path / "c.json"),
        "--image-size",
        "16",
        "--base-channels",
        "4",
        "--state-dim",
        "4",
        "--noise-dim",
        "4",
        "--langevin-steps",
        "1",
        "--chunk-length",
        "4",
    )
    assert code == 0, output
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: ((d / "e.mp4").write_bytes(b"") and d / "e.mp4") or d / "e.mp4", "empty"),
        (
            lambda d: (
                (d / "n.mp4").write_bytes(np.random.default_rng(1).bytes(5000)) and d / "n.mp4"
            ),
            "not a readable video",
        ),
    ],
)
def test_files_that_are_not_videos(tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    code, output = run("train", str(make(tmp_path)), "--out", str(tmp_path / "o"), *TINY)
    assert code == 1 and expected in error_line(output)
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_fewer_frames_than_asked(tmp_path: Path, clip: Path) -> None:
    code, output = run("train", str(clip), "--out", str(tmp_path / "o"), *TINY, "--frames", "40")
    assert code == 1 and "has 24 frames" in error_line(output)


def test_frames_too_small(tmp_path: Path, clip: Path) -> None:
    code, output = run(
        "train", str(clip), "--out", str(tmp_path / "o"), *TINY, "--image-size", "32"
    )
    assert code == 1 and "smaller than the image size 32" in error_line(output)


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--epochs", "0"], "epochs"),
        (["--delta", "-1"], "langevin-delta"),
        (["--frames", "1"], "frames"),
    ],
)
def test_config_values_out_of_range(
    tmp_path: Path, clip: Path, flags: list[str], field: str
) -> None:
    code, output = run("train", str(clip), "--out", str(tmp_path / "o"), *TINY, *flags)
    assert code == 1 and f"invalid config: {field}" in error_line(output)


def test_bad_config_file(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "c.json").write_text('{"epochs": 2, "colour": "blue"}')
    code, output = run(
        "train", str(clip), "--out", str(tmp_path / "o"), "--config", str(tmp_path / "c.json")
    )
    assert code == 1 and "colour: Extra inputs are not permitted" in error_line(output)


def test_mask_that_does_not_fit(tmp_path: Path, clip: Path) -> None:
    np.save(tmp_path / "m.npy", np.zeros((5, 16, 16)))
    code, output = run(
        "recover", str(clip), "--mask", str(tmp_path / "m.npy"), "--out", str(tmp_path / "o"), *TINY
    )
    assert code == 1 and "the mask has 5 frames but training uses 16" in error_line(output)


def test_a_warm_start_needs_complete_videos(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "o"
    code, output = run(
        "recover",
        str(clip),
        "--missing-frames",
        "2",
        "--out",
        str(out),
        *TINY,
        "--warm-start",
        "pca",
    )
    assert code == 1 and "warm_start pca learns from complete videos only" in error_line(output)
    assert not out.exists() or not any(out.iterdir())


def test_a_warm_started_train_names_the_warm_start_before_its_first_epoch(
    tmp_path: Path, clip: Path
) -> None:
    out = tmp_path / "o"
    args = ("train", str(clip), "--out", str(out), "--epochs", "2", *TINY, "--warm-start", "pca")
    code, output = run(*args)
    assert code == 0, output
    assert "PCA warm start" in output and (out / "model.safetensors").exists()
    code, output = run(*args[:-2])  # the same run cold: no warm start announced
    assert code == 0 and "PCA warm start" not in output


def test_recover_without_a_mask(tmp_path: Path, clip: Path) -> None:
    code, output = run("recover", str(clip), "--out", str(tmp_path / "o"))
    assert code == 1 and "recover needs a mask" in error_line(output)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_unreadable_or_foreign_checkpoints(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "model.safetensors"
    if content is None:
        torch.save({"w": torch.zeros(1)}, path)
    else:
        path.write_bytes(content)
    code, output = run("synthesize", str(path), "--out", str(tmp_path / "s"))
    assert code == 1 and "not a safetensors checkpoint" in error_line(output)
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").iterdir())


def test_synthesis_options_out_of_range(tmp_path: Path) -> None:
    code, output = run(
        "synthesize",
        str(tmp_path / "none.safetensors"),
        "--out",
        str(tmp_path / "s"),
        "--format",
        "avi",
    )
    assert code == 1 and "formats" in error_line(output)


def test_a_pickle_checkpoint_runs_no_code(tmp_path: Path, clip: Path) -> None:
    import pickle

    from tests.hostile import pickle_file

    marker = tmp_path / "pwned"
    pickle.loads(pickle_file(tmp_path / "probe.pkl", marker).read_bytes())
    assert marker.exists()  # the file is live: unpickling it does create the marker
    marker.unlink()
    for name in ("model.safetensors", "model.pt"):
        evil = pickle_file(tmp_path / name, marker)
        for argv in (
            ["synthesize", str(evil), "--out", str(tmp_path / "s")],
            ["evaluate", str(evil), str(clip)],
        ):
            code, output = run(*argv)
            assert code == 1 and "not a safetensors checkpoint" in error_line(output), output
            assert "Traceback" not in output
    assert not marker.exists()


def test_a_checkpoint_of_another_format_version(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from model.config import TrainConfig

    config = TrainConfig.model_validate({}).model_dump_json()
    meta = {"format": "dyngen-checkpoint", "format_version": "2", "config": config}
    save_file({"content": torch.zeros(1, 4)}, str(tmp_path / "m.safetensors"), metadata=meta)
    code, output = run("synthesize", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "s"))
    assert code == 1 and "format version 2, this dyngen reads 1" in error_line(output)


def test_masked_runs_get_the_recovery_defaults_and_keep_named_fields() -> None:
    from cli.offline import build_train_config

    masked = build_train_config({}, masked=True)
    assert (masked.sigma, masked.langevin_steps, masked.chunk_length) == (0.5, 5, 70)
    assert (masked.fill_warmup, masked.learn_steps) == (1.0, 3)
    named = build_train_config({"sigma": 2.0, "langevin_steps": 9}, masked=True)
    assert (named.sigma, named.langevin_steps) == (2.0, 9)
    plain = build_train_config({})
    assert (plain.sigma, plain.langevin_steps, plain.fill_warmup) == (1.0, 15, 0.0)
    # the faithful preset keeps the authors' algorithm: only their recovery sigma
    faithful = build_train_config({"preset": "faithful"}, masked=True)
    assert (faithful.sigma, faithful.langevin_steps, faithful.fill_warmup) == (0.5, 15, 0.0)
    assert faithful.learn_steps == 1
    # masked runs hold a tenth of the visible pixels out to fit the recovery blend
    assert (masked.holdout, plain.holdout, faithful.holdout) == (0.1, 0.0, 0.0)
