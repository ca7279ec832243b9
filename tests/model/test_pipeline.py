"""Whole runs: artifacts written, recovery beats the temporal mean, synthesis moves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.config import SynthesisConfig, TrainConfig, with_recovery_defaults
from model.errors import Cancelled
from model.masks import MissingFramesMask
from model.synthesis import synthesize_videos
from model.training import train_model
from model.video_decode import probe_video
from model.video_frames import read_video
from tests.model.conftest import tiny_config, write_waves_clip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained on a 16-frame procedural clip, shared by this module's tests."""
    root = tmp_path_factory.mktemp("trained")
    clip = write_waves_clip(root / "waves.mp4")
    result = train_model(tiny_config(epochs=40), [clip], root / "out", seed=0, device="cpu")
    return result.checkpoint


def test_training_writes_every_artifact(trained: Path) -> None:
    out = trained.parent
    for name in (
        "model.safetensors",
        "reconstruction.mp4",
        "reconstruction.png",
        "loss.png",
        "metrics.json",
    ):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 40
    assert metrics["seconds"] > 0 and "quality" in metrics
    assert metrics["psnr"] > 15
    assert probe_video(out / "reconstruction.mp4").frames == 16
    assert not list(out.glob(".*part*")), "temporary files left behind"


def test_synthesis_four_times_longer_stays_in_range_and_moves(
    trained: Path, tmp_path: Path
) -> None:
    config = SynthesisConfig(num_videos=2, frames=64, formats=("mp4", "gif"))
    result = synthesize_videos(trained, config, tmp_path, seed=1, device="cpu")
    videos = [f.path for f in result.files if f.kind == "video"]
    assert sorted(p.name for p in videos) == [
        "video-1.gif",
        "video-1.mp4",
        "video-2.gif",
        "video-2.mp4",
    ]
    frames = read_video(tmp_path / "video-1.mp4", image_size=16, frames=64)
    assert frames.shape == (64, 16, 16, 3)
    late = frames[32:].astype(np.float64)
    assert np.abs(np.diff(late, axis=0)).mean() > 1.0, "the second half is a frozen frame"
    assert 10 < late.mean() < 245
    other = read_video(tmp_path / "video-2.mp4", image_size=16, frames=64)
    assert np.abs(frames.astype(int) - other).mean() > 0.5, "two noise draws gave the same video"


def test_recovery_beats_the_temporal_mean(tmp_path: Path) -> None:
    write_waves_clip(tmp_path / "waves.mp4")
    mask = MissingFramesMask(frames=list(range(1, 24, 3)))  # a third of the frames
    recovery = with_recovery_defaults({"chunk_length": 24})
    # the recovery defaults, tiny; 60 epochs recover as well as 150 did (recovery error 4.09
    # against the temporal mean's 28.6 at both) in 40% of the time
    config = tiny_config(frames=24, epochs=60, **recovery)
    result = train_model(
        config, [tmp_path / "waves.mp4"], tmp_path / "out", mask=mask, device="cpu"
    )
    metrics = result.metrics
    assert metrics["recovery_error"] < metrics["recovery_error_temporal_mean"], metrics
    assert (tmp_path / "out" / "recovered.mp4").is_file()


def _cancel_after_two_epochs(config: TrainConfig, video: Path, out: Path) -> list[int]:
    """Start a run saving resume state beside `out`, stop it after epoch 2; the epochs seen."""
    epochs_seen: list[int] = []
    with pytest.raises(Cancelled):
        train_model(
            config,
            [video],
            out,
            device="cpu",
            resume_path=out.parent / "resume.safetensors",
            should_stop=lambda: len(epochs_seen) >= 2,
            on_epoch=lambda r: epochs_seen.append(r.epoch),
        )
    return epochs_seen


def test_cancelled_training_saves_resume_state_and_resumes(
    tmp_path: Path, waves_video: Path
) -> None:
    resume = tmp_path / "resume.safetensors"
    epochs_seen = _cancel_after_two_epochs(tiny_config(epochs=6), waves_video, tmp_path / "out")
    assert resume.is_file() and not (tmp_path / "out" / "model.safetensors").exists()
    result = train_model(
        tiny_config(epochs=6),
        [waves_video],
        tmp_path / "out",
        device="cpu",
        resume_path=resume,
        on_epoch=lambda r: epochs_seen.append(r.epoch),
    )
    assert epochs_seen == [1, 2, 3, 4, 5, 6]
    assert result.metrics["epochs"] == 6


def test_training_reports_quality_of_long_syntheses(trained: Path) -> None:
    quality = json.loads((trained.parent / "metrics.json").read_text())["quality"]
    assert quality["frames"] == 4 * 16
    assert quality["motion_ratio"] > 0
    assert quality["reference_frozen"]["motion_ratio"] == 0


def test_the_lds_method_trains_and_synthesizes_like_a_model(
    tmp_path: Path, waves_video: Path
) -> None:
    config = tiny_config(method="lds", lds_components=6)
    result = train_model(config, [waves_video], tmp_path / "lds", device="cpu")
    assert result.metrics["method"] == "lds" and result.metrics["psnr"] > 15
    assert {f.kind for f in result.files} >= {"checkpoint", "reconstruction_video", "metrics"}
    synthesis = synthesize_videos(result.checkpoint, SynthesisConfig(frames=40), tmp_path / "s")
    assert probe_video(tmp_path / "s" / "video-1.mp4").frames == 40
    assert synthesis.metrics["mean_frame_difference"] > 0


def test_the_lds_method_refuses_a_mask(tmp_path: Path, waves_video: Path) -> None:
    from model.errors import DyngenError

    with pytest.raises(DyngenError, match="complete videos only"):
        train_model(
            tiny_config(method="lds"), [waves_video], tmp_path, mask=MissingFramesMask(frames=[1])
        )


def test_the_faithful_preset_fills_unset_fields_only() -> None:
    faithful = tiny_config(preset="faithful")
    assert (faithful.mlp_activation, faithful.average_last, faithful.precision) == (
        "relu",
        1,
        "fp32",
    )
    assert tiny_config(preset="faithful", average_last=5).average_last == 5


def test_an_unset_frame_count_shrinks_to_a_short_clip_and_a_set_one_does_not() -> None:
    from model.config import TrainConfig

    assert TrainConfig().frames == 60  # the authors' length
    assert TrainConfig().fit_to_length(40).frames == 40
    assert TrainConfig().fit_to_length(500).frames == 60
    assert TrainConfig(start=10, every=2).fit_to_length(70).frames == 30
    assert TrainConfig(frames=60).fit_to_length(40).frames == 60  # the user asked: it errs


def test_training_fits_an_unset_frame_count_to_the_video(tmp_path: Path, waves_video: Path) -> None:
    from model.config import TrainConfig
    from model.training_data import fit_to_videos

    fields = tiny_config().model_dump(exclude={"frames"}) | {"method": "lds"}
    config = TrainConfig.model_validate(fields)
    assert fit_to_videos(config, [waves_video]).frames == 24
    result = train_model(config, [waves_video], tmp_path, seed=0)
    assert json.loads((tmp_path / "metrics.json").read_text())["method"] == "lds"
    assert result.checkpoint.exists()


def test_a_warm_started_run_fits_closer_and_its_resumption_is_not_warmed_again(
    tmp_path: Path, waves_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.learner import ABPTTLearner

    warmed_at: list[int] = []
    original = ABPTTLearner.warm_start

    def counted(learner: ABPTTLearner) -> None:
        warmed_at.append(learner.epoch)
        original(learner)

    monkeypatch.setattr(ABPTTLearner, "warm_start", counted)
    resume = tmp_path / "resume.safetensors"
    config = tiny_config(epochs=4, warm_start="pca")
    _cancel_after_two_epochs(config, waves_video, tmp_path / "warm")
    warm = train_model(config, [waves_video], tmp_path / "warm", device="cpu", resume_path=resume)
    cold = train_model(tiny_config(epochs=4), [waves_video], tmp_path / "cold", device="cpu")
    assert warmed_at == [0]
    assert warm.metrics["psnr"] > cold.metrics["psnr"] + 6, (warm.metrics, cold.metrics)
