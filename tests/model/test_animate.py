"""Animating a still: the first frame is fitted to the image, the rest roll on; stills probed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.animate import AnimateConfig, animate_image, first_frame_psnr
from model.checkpoint import load_checkpoint
from model.config import SynthesisConfig
from model.errors import DyngenError
from model.procedural import waves
from model.sampler import sample_chunks
from model.stills import ImageTooLarge, NotAnImage, probe_still, read_still
from model.training import train_model
from model.video_frames import read_video, to_uint8
from model.video_writers import write_video
from tests.model.conftest import tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """(checkpoint of a tiny model with a residual process, a frame it never trained on)."""
    root = tmp_path_factory.mktemp("animate")
    video = root / "waves.mp4"
    write_video(video, iter(waves(30, 16)), 25)
    config = tiny_config(epochs=30, residual="lds", residual_components=4)
    result = train_model(config, [video], root / "out", seed=0, device="cpu")
    unseen = read_video(video, image_size=16, frames=1, start=20)[
        0
    ]  # trained on 0..15; 20 is far in phase from 1
    return result.checkpoint, unseen


def test_the_first_frame_is_closer_to_the_image_than_a_fresh_samples(
    run: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    checkpoint, image = run
    config = AnimateConfig(frames=20, num_videos=2, steps=60, restarts=2)
    result = animate_image(checkpoint, image, config, tmp_path, device="cpu")
    fresh = np.concatenate(
        [
            to_uint8(c.numpy())
            for c in sample_chunks(load_checkpoint(checkpoint), SynthesisConfig(num_videos=4))
        ],
        axis=1,
    )
    fresh_psnr = max(first_frame_psnr(image, video[0]) for video in fresh)
    animated = result.metrics["first_frame_psnr"]
    assert isinstance(animated, float) and animated > fresh_psnr + 1.0
    written = read_video(tmp_path / "video-1.mp4", image_size=16, frames=20)
    # the file is lossy: its first frame is near the fitted one, and the video moves
    assert first_frame_psnr(image, written[0]) > fresh_psnr
    assert np.abs(np.diff(written.astype(np.int16), axis=0)).mean() > 1.0
    assert {f.kind for f in result.files} == {"video", "grid", "metrics"}


def test_both_videos_start_at_the_fitted_frame_then_differ(
    run: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    from model.animate import Animator

    checkpoint, image = run
    animator = Animator(
        load_checkpoint(checkpoint), AnimateConfig(frames=12, num_videos=2, steps=5)
    )
    frames = np.concatenate([c.numpy() for c in animator.chunks(animator.fit(image))], axis=1)
    assert frames.shape == (2, 12, 3, 16, 16)
    np.testing.assert_array_equal(frames[0, 0], frames[1, 0])  # no residual on the image's frame
    assert np.abs(frames[0, 1:] - frames[1, 1:]).mean() > 1e-3


def test_a_wrong_size_or_an_lds_model_is_refused(
    run: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    checkpoint, image = run
    with pytest.raises(DyngenError, match="16x16"):
        animate_image(checkpoint, image[:8], AnimateConfig(steps=1), tmp_path / "a", device="cpu")
    assert not (tmp_path / "a").exists()
    video = tmp_path / "w.mp4"
    write_video(video, iter(waves(20, 16)), 25)
    config = tiny_config(method="lds", lds_components=4)
    lds = train_model(config, [video], tmp_path / "l", device="cpu")
    with pytest.raises(DyngenError, match="LDS"):
        animate_image(lds.checkpoint, image, AnimateConfig(steps=1), tmp_path / "b", device="cpu")


def test_stills_are_probed_and_read_like_frames(tmp_path: Path) -> None:
    pixels = (np.arange(40 * 60 * 3) % 251).astype(np.uint8).reshape(40, 60, 3)
    for suffix in ("png", "jpeg", "webp"):
        path = tmp_path / f"still.{suffix}"
        Image.fromarray(pixels).save(path)
        info = probe_still(path, max_side=100)
        assert (info.width, info.height) == (60, 40)
        assert read_still(path, 16).shape == (16, 16, 3)
    with pytest.raises(ImageTooLarge):
        probe_still(tmp_path / "still.png", max_side=50)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(NotAnImage):
        probe_still(tmp_path / "notes.png")
    whole = (tmp_path / "still.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(NotAnImage):
        probe_still(tmp_path / "cut.png")
    with pytest.raises(NotAnImage, match="smaller"):
        read_still(tmp_path / "still.png", 64)
