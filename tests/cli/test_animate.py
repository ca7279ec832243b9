"""`dyngen animate` and `dyngen inpaint`: real runs on a tiny model, one line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.procedural import waves
from model.video_decode import probe_video
from model.video_writers import write_video
from tests.cli.test_offline import TINY, error_line, run


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 24-frame 16x16 procedural clip."""
    path = tmp_path / "clip.mp4"
    write_video(path, iter(waves(24, 16)), 25)
    return path


def test_animate_an_image_and_a_videos_frame(tmp_path: Path, clip: Path) -> None:
    code, output = run("train", str(clip), "--out", str(tmp_path / "m"), "--epochs", "3", *TINY)
    assert code == 0, output
    model = str(tmp_path / "m" / "model.safetensors")
    still = tmp_path / "still.png"
    Image.fromarray(waves(24, 32)[20]).save(still)  # larger than the model's frames: resized
    code, output = run(
        "animate", model, str(still), "--frames", "10", "--steps", "5", "--restarts", "1",
        "--out", str(tmp_path / "a"),
    )  # fmt: skip
    assert code == 0, output
    assert "first_frame_psnr" in output
    assert probe_video(tmp_path / "a" / "video-1.mp4").frames == 10
    assert "first_frame_psnr" in json.loads((tmp_path / "a" / "animation.json").read_text())
    code, output = run(
        "animate", model, str(clip), "--frame", "20", "--frames", "6", "--num-videos", "2",
        "--steps", "2", "--restarts", "1", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 0, output
    assert probe_video(tmp_path / "b" / "video-2.mp4").frames == 6
    code, output = run("animate", model, str(clip), "--out", str(tmp_path / "c"))
    assert code == 1 and "not a PNG, JPEG or WebP image" in error_line(output)
    code, output = run("animate", model, str(clip), "--frame", "99", "--out", str(tmp_path / "c"))
    assert code == 1 and "has 24 frames" in error_line(output)
    code, output = run("animate", str(clip), str(still), "--out", str(tmp_path / "c"))
    assert code == 1 and error_line(output)
    assert not (tmp_path / "c").exists()


def test_inpaint_with_a_mask_of_the_whole_clip(tmp_path: Path, clip: Path) -> None:
    # a 24-frame mask (the whole clip) for a run on 8 frames from frame 4, every 2nd
    occluded = np.zeros((24, 16, 16), np.uint8)
    for t in range(24):
        occluded[t, 4:8, t % 12 : t % 12 + 4] = 1
    np.save(tmp_path / "mask.npy", occluded)
    out = tmp_path / "i"
    code, output = run(
        "inpaint", str(clip), "--mask", str(tmp_path / "mask.npy"), "--out", str(out),
        "--epochs", "2", "--start", "4", "--every", "2", "--frames", "8", *TINY[:2], *TINY[4:],
    )  # fmt: skip
    assert code == 0, output
    assert probe_video(out / "recovered.mp4").frames == 8
    side = probe_video(out / "side_by_side.mp4")
    assert (side.frames, side.width, side.height) == (8, 34, 16)  # original | cleaned
    assert (out / "inpainting.png").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recovery_method"] == "blend" and metrics["epochs"] == 2
    code, output = run("inpaint", str(clip), "--out", str(tmp_path / "none"))
    assert code == 1 and "inpaint needs a mask" in error_line(output)


def test_inpaint_defaults_take_the_whole_clip_stretched(clip: Path) -> None:
    from model.config import TrainConfig
    from model.inpaint import with_inpaint_defaults

    config = with_inpaint_defaults(TrainConfig.model_validate({"every": 2}), clip)
    assert (config.frames, config.resize, config.epochs) == (12, "stretch", 100)
    kept = with_inpaint_defaults(TrainConfig.model_validate({"frames": 5, "epochs": 7}), clip)
    assert (kept.frames, kept.epochs) == (5, 7)


def test_inpaint_with_per_frame_boxes_of_the_whole_clip(tmp_path: Path, clip: Path) -> None:
    boxes = [[0.1 + 0.02 * t, 0.25, 0.25, 0.25] if t % 3 else None for t in range(24)]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "i"
    code, output = run(
        "inpaint", str(clip), "--boxes", str(tmp_path / "boxes.json"), "--out", str(out),
        "--epochs", "1", "--start", "3", "--frames", "8", *TINY[:2], *TINY[4:],
    )  # fmt: skip
    assert code == 0, output
    mask = np.load(out / "boxes-mask.npy")
    assert mask.shape == (24, 16, 16) and mask[3].sum() == 0 and mask[4].sum() == 16
    assert probe_video(out / "side_by_side.mp4").frames == 8
    (tmp_path / "bad.json").write_text(json.dumps([[0.1, 0.2, 2, 0.1]]))
    code, output = run(
        "inpaint", str(clip), "--boxes", str(tmp_path / "bad.json"), "--out", str(out)
    )
    assert code == 1 and "frame 0: expected [x, y, width, height]" in error_line(output)


def test_box_frames_are_the_clips_and_one_past_it_is_refused(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "r"
    # clip frames 3-6 on a window of clip frames 3, 5, 7, 9: two of its four frames
    code, output = run(
        "recover", str(clip), "--box", "0.2,0.2,0.3,0.3@3-6", "--start", "3", "--every", "2",
        "--frames", "4", "--epochs", "1", "--out", str(out), *TINY[:2], *TINY[4:],
    )  # fmt: skip
    assert code == 0, output
    hidden = json.loads((out / "metrics.json").read_text())["occluded_fraction"]
    assert hidden == pytest.approx(2 * 5 * 5 / (4 * 16 * 16))
    code, output = run(
        "recover", str(clip), "--box", "0.2,0.2,0.3,0.3@20,24", "--frames", "4",
        "--out", str(out), *TINY[:2],
    )  # fmt: skip
    assert code == 1
    assert "box 1 names frame 24, but the clip has 24 frames" in error_line(output)
