"""`dyngen evaluate` and `dyngen lds`: real runs on tiny models, one line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.procedural import waves
from model.training import train_model
from model.video_writers import write_video
from tests.cli.test_offline import error_line, run
from tests.model.conftest import tiny_config

KEYS = {"appearance", "dynamics", "motion_ratio", "novelty", "drift"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-frame 16x16 clip: 16 training frames and 24 held back."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, iter(waves(40, 16)), 25)
    return path


@pytest.fixture(scope="module")
def checkpoint(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dynamic generator trained for three epochs on the clip."""
    config = tiny_config(epochs=3, base_channels=4, state_dim=4, noise_dim=4, langevin_steps=2)
    result = train_model(config, [clip], tmp_path_factory.mktemp("run"), device="cpu")
    return result.checkpoint


def test_evaluate_reports_a_trained_checkpoint(checkpoint: Path, clip: Path) -> None:
    code, output = run("evaluate", str(checkpoint), str(clip), "--frames-multiple", "2", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report.keys() >= KEYS and report["frames"] == 32 and report["videos"] == 2
    assert report["reference_held_out"]["frames"] == 24  # all the frames after training
    assert report["reference_frozen"]["motion_ratio"] == 0


def test_evaluate_over_seeds_averages_the_single_seed_reports(checkpoint: Path, clip: Path) -> None:
    def report(*extra: str) -> dict:
        code, output = run("evaluate", str(checkpoint), str(clip), "--json", *extra)
        assert code == 0, output
        return json.loads(output)

    singles = [report("--seed", str(seed)) for seed in (3, 4, 5)]
    averaged = report("--seed", "3", "--seeds", "3")
    assert averaged["seeds"] == 3
    assert averaged["dynamics_by_seed"] == [single["dynamics"] for single in singles]
    for key in ("dynamics", "motion_ratio", "drift"):
        assert averaged[key] == pytest.approx(sum(s[key] for s in singles) / 3)
    frozen = [s["reference_frozen"]["appearance"] for s in singles]
    assert averaged["reference_frozen"]["appearance"] == pytest.approx(sum(frozen) / 3)
    assert len(set(averaged["dynamics_by_seed"])) == 3  # the seeds did draw different videos
    code, output = run("evaluate", str(checkpoint), str(clip), "--seeds", "2")
    assert code == 0 and "means of 2 seeds; dynamics by seed:" in output


def test_evaluate_refuses_zero_seeds(checkpoint: Path, clip: Path) -> None:
    code, output = run("evaluate", str(checkpoint), str(clip), "--seeds", "0")
    assert code == 1 and "--seeds must be at least 1" in error_line(output)


def test_evaluate_prints_a_table(checkpoint: Path, clip: Path) -> None:
    code, output = run("evaluate", str(checkpoint), str(clip), "--num-videos", "1")
    assert code == 0, output
    assert "held-out clip" in output and "motion ratio" in output and "drift" in output


def test_lds_writes_its_files_and_evaluates(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "lds"
    code, output = run(
        "lds",
        str(clip),
        "--out",
        str(out),
        "--image-size",
        "16",
        "--frames",
        "16",
        "--components",
        "4",
    )  # fmt: skip  (`dyngen lds` is `dyngen train --method lds`; --components its old flag)
    assert code == 0, output
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "lds" and metrics["components"] == 4
    assert metrics["quality"].keys() >= KEYS
    code, output = run("evaluate", str(out / "model.safetensors"), str(clip), "--json")
    assert code == 0, output
    assert json.loads(output)["frames"] == 64


def test_evaluate_refuses_a_file_that_is_not_a_model(clip: Path, tmp_path: Path) -> None:
    junk = tmp_path / "model.safetensors"
    junk.write_text("not a checkpoint")
    code, output = run("evaluate", str(junk), str(clip))
    assert code == 1
    assert "not a safetensors checkpoint" in error_line(output)


def test_evaluate_refuses_a_missing_or_short_video(checkpoint: Path, tmp_path: Path) -> None:
    code, output = run("evaluate", str(checkpoint), str(tmp_path / "none.mp4"))
    assert code == 1 and "no such file" in error_line(output)
    short = tmp_path / "short.mp4"
    write_video(short, iter(waves(8, 16)), 25)
    code, output = run("evaluate", str(checkpoint), str(short))
    assert code == 1 and "has 8 frames" in error_line(output)


def test_lds_refuses_bad_settings(clip: Path, tmp_path: Path) -> None:
    code, output = run("lds", str(clip), "--out", str(tmp_path), "--frames", "2")
    assert code == 1 and "frames" in error_line(output)
