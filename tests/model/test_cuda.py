"""The model on a CUDA device: training (with checkpoints), synthesis, recovery and resume.
Marked `cuda`; skipped without a CUDA device (`make gpu-check` runs them on one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint
from model.config import SynthesisConfig, with_recovery_defaults
from model.errors import Cancelled
from model.masks import MissingFramesMask
from model.synthesis import synthesize_videos
from model.training import train_model
from model.video_decode import probe_video
from tests.model.conftest import tiny_config

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def test_training_checkpoints_and_synthesis_on_cuda(waves_video: Path, tmp_path: Path) -> None:
    taken: list[int] = []
    config = tiny_config(epochs=5, checkpoint_every=2)

    def take(path: Path, epoch: int) -> None:
        assert load_checkpoint(path, "cuda").initial_state.device.type == "cuda"
        taken.append(epoch)

    result = train_model(config, [waves_video], tmp_path / "out", device="cuda", on_checkpoint=take)
    assert taken == [2, 4]
    assert load_checkpoint(result.checkpoint).info["device"].startswith("cuda")
    synth = synthesize_videos(
        result.checkpoint,
        SynthesisConfig(num_videos=2, frames=12, formats=("mp4",)),
        tmp_path / "synth",
        device="cuda",
    )
    videos = [f.path for f in synth.files if f.path.suffix == ".mp4"]
    assert len(videos) == 2 and probe_video(videos[0]).frames == 12


def test_recovery_on_cuda_beats_the_temporal_mean(tmp_path: Path) -> None:
    from model.procedural import waves
    from model.video_writers import write_video

    write_video(tmp_path / "waves.mp4", iter(waves(24, 16)), 25)
    mask = MissingFramesMask(frames=list(range(1, 24, 3)))
    config = tiny_config(frames=24, epochs=150, **with_recovery_defaults({"chunk_length": 24}))
    result = train_model(
        config, [tmp_path / "waves.mp4"], tmp_path / "out", mask=mask, device="cuda"
    )
    metrics = result.metrics
    assert np.isfinite(metrics["recovery_error"])  # type: ignore[arg-type]
    assert metrics["recovery_error"] < metrics["recovery_error_temporal_mean"], metrics


def test_a_cancelled_cuda_run_resumes(waves_video: Path, tmp_path: Path) -> None:
    resume = tmp_path / "resume.safetensors"
    seen: list[int] = []
    with pytest.raises(Cancelled):
        train_model(
            tiny_config(epochs=6),
            [waves_video],
            tmp_path / "out",
            device="cuda",
            resume_path=resume,
            should_stop=lambda: len(seen) >= 2,
            on_epoch=lambda r: seen.append(r.epoch),
        )
    result = train_model(
        tiny_config(epochs=6),
        [waves_video],
        tmp_path / "out",
        device="cuda",
        resume_path=resume,
        on_epoch=lambda r: seen.append(r.epoch),
    )
    assert seen == [1, 2, 3, 4, 5, 6] and result.metrics["epochs"] == 6
