"""Masks from the paper's files, arrays, videos and programmatic kinds."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from model.errors import MaskError
from model.masks import (
    Box,
    FileMask,
    MaskLimits,
    MaskTooLarge,
    MissingFramesMask,
    RegionsMask,
    build_visible,
    check_mask_frames,
    inspect_mask_file,
    parse_frame_list,
    read_mask_array,
)
from model.video_writers import write_video
from tests.conftest import shared_file


def test_the_papers_missing_frames_mask() -> None:
    visible = build_visible(
        FileMask(path=str(shared_file("masks/missing_frames_150x150x70.mat"))),
        frames=70,
        image_size=64,
    )
    assert visible.shape == (70, 64, 64)
    per_frame = visible.reshape(70, -1).mean(axis=1)
    assert set(per_frame.tolist()) == {0.0, 1.0} and per_frame.sum() == 35


def test_the_papers_regions_mask_keeps_its_share() -> None:
    visible = build_visible(
        FileMask(path=str(shared_file("masks/regions_150x150x70.mat"))), frames=70, image_size=32
    )
    assert 0.80 < visible.mean() < 0.88  # one 60 x 60 square of 150 x 150 per frame is 16 %


def test_mat_with_the_wrong_frame_count() -> None:
    mask = FileMask(path=str(shared_file("masks/missing_frames_150x150x70.mat")))
    with pytest.raises(MaskError, match=r"70 frames but training uses 60 .* at least 81"):
        build_visible(mask, frames=60, image_size=64, start=21)


def test_a_mask_of_the_whole_clip_aligns_to_the_trained_window(tmp_path: Path) -> None:
    # frame t of the clip's mask hides column t: which columns are hidden names the frames kept
    whole = np.zeros((150, 16, 16), np.uint8)
    for t in range(16):
        whole[t::16, :, t] = 1
    np.save(tmp_path / "clip.npy", whole)
    spec = FileMask(path=str(tmp_path / "clip.npy"))
    visible = build_visible(spec, frames=60, image_size=16, start=5, every=2)
    assert visible.shape == (60, 16, 16)
    hidden_columns = [int(np.flatnonzero(~frame.all(axis=0))[0]) for frame in visible]
    assert hidden_columns == [(5 + 2 * i) % 16 for i in range(60)]
    # the window's own length stays the window's mask
    visible = build_visible(spec, frames=150, image_size=16)
    assert visible.shape == (150, 16, 16)


def test_mat_without_a_masks_array(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "m.mat", {"a": np.zeros((4, 4, 2)), "b": np.zeros(3)})
    with pytest.raises(MaskError, match="no `masks` array"):
        build_visible(FileMask(path=str(tmp_path / "m.mat")), frames=2, image_size=16)


def test_npy_is_resized_nearest(tmp_path: Path) -> None:
    array = np.zeros((3, 8, 8), np.uint8)
    array[:, :4] = 1  # top half occluded
    np.save(tmp_path / "m.npy", array)
    visible = build_visible(FileMask(path=str(tmp_path / "m.npy")), frames=3, image_size=32)
    assert not visible[:, :16].any() and visible[:, 16:].all()


def test_npy_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MaskError, match="object arrays are not accepted"):  # from the header
        build_visible(FileMask(path=str(path)), frames=1, image_size=16)
    (tmp_path / "raw.npy").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(MaskError):
        build_visible(FileMask(path=str(tmp_path / "raw.npy")), frames=1, image_size=16)


def test_npy_of_a_foreign_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.zeros((3, 8, 12)))
    with pytest.raises(
        MaskError, match="12x8"
    ):  # width x height, not square and not the video's shape
        build_visible(FileMask(path=str(tmp_path / "m.npy")), frames=3, image_size=16)


def test_mask_video_white_is_missing(tmp_path: Path) -> None:
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    frames[:, :, 8:] = 255
    write_video(tmp_path / "mask.mp4", iter(frames), 25)
    visible = build_visible(FileMask(path=str(tmp_path / "mask.mp4")), frames=4, image_size=16)
    assert visible[:, :, :7].all() and not visible[:, :, 9:].any()


def test_missing_frames_and_regions() -> None:
    visible = build_visible(MissingFramesMask(frames=[0, 2]), frames=4, image_size=16)
    assert not visible[0].any() and visible[1].all() and not visible[2].any()
    regions = RegionsMask(boxes=[Box(x=0.5, y=0.0, width=0.5, height=0.5, frames=[1])])
    visible = build_visible(regions, frames=3, image_size=16)
    assert visible[0].all() and not visible[1, :8, 8:].any() and visible[1, 8:].all()


def test_box_frames_are_the_clips_taken_with_start_and_every() -> None:
    """Clip frames 5..12 on a window of 4 frames from 4 every 2 (clip frames 4, 6, 8, 10):
    6 and 10 are trained (window 1 and 3); 5, 7 and 12 are not, and hide nothing."""
    box = Box(x=0.0, y=0.0, width=0.5, height=0.5, frames=[5, 6, 7, 10, 12])
    visible = build_visible(
        RegionsMask(boxes=[box]), frames=4, image_size=16, start=4, every=2, clip_frames=13
    )
    hidden = [not visible[t, :8, :8].any() for t in range(4)]
    assert hidden == [False, True, False, True]
    assert visible[:, 8:].all()
    every = Box(x=0.0, y=0.0, width=0.5, height=0.5)  # no frames: every trained frame
    visible = build_visible(RegionsMask(boxes=[every]), frames=4, image_size=16, start=4, every=2)
    assert not visible[:, :8, :8].any()


def test_missing_frames_are_the_clips_taken_with_start_and_every() -> None:
    """As a box's frames: clip frames 6 and 10 are window frames 1 and 3 of frames 4, 6, 8,
    10; 5 and 7 are not trained and hide nothing; a list that hides no trained frame, or
    names one past the clip, is refused."""
    spec = MissingFramesMask(frames=[5, 6, 7, 10])
    visible = build_visible(spec, frames=4, image_size=16, start=4, every=2, clip_frames=13)
    assert [not visible[t].any() for t in range(4)] == [False, True, False, True]
    with pytest.raises(
        MaskError, match=re.escape("none of the missing frames (5, ...) is trained on")
    ):
        build_visible(MissingFramesMask(frames=[5, 7]), frames=4, image_size=16, start=4, every=2)
    with pytest.raises(MaskError, match="missing frame 13 is past the clip's 13 frames"):
        build_visible(MissingFramesMask(frames=[13]), frames=4, image_size=16, clip_frames=13)


def test_a_box_frame_past_the_clip_is_refused() -> None:
    spec = RegionsMask(boxes=[Box(x=0, y=0, width=0.5, height=0.5, frames=[3, 13])])
    with pytest.raises(MaskError, match="box 1 names frame 13, but the clip has 13 frames"):
        build_visible(spec, frames=4, image_size=16, clip_frames=13)
    check_mask_frames(spec, 14)  # 13 is the last frame of a 14-frame clip


def test_programmatic_masks_that_do_not_fit() -> None:
    with pytest.raises(MaskError, match="none of the missing frames"):
        build_visible(MissingFramesMask(frames=[4]), frames=4, image_size=16)
    with pytest.raises(MaskError, match="reaches past the frame"):
        build_visible(
            RegionsMask(boxes=[Box(x=0.8, y=0, width=0.5, height=0.1)]), frames=2, image_size=16
        )
    with pytest.raises(MaskError, match="hides every pixel"):
        build_visible(MissingFramesMask(frames=[0, 1]), frames=2, image_size=16)


def test_frame_lists() -> None:
    assert parse_frame_list("0-2, 5") == [0, 1, 2, 5]
    with pytest.raises(MaskError):
        parse_frame_list("a-b")


def test_a_pickle_disguised_as_npy_runs_no_code(tmp_path: Path) -> None:
    from tests.hostile import pickle_npy

    marker = tmp_path / "pwned"
    evil = pickle_npy(tmp_path / "mask.npy", marker)
    np.load(evil, allow_pickle=True)  # the file is live: unpickling it does create the marker
    assert marker.exists()
    marker.unlink()
    with pytest.raises(MaskError, match="object arrays are not accepted"):
        build_visible(FileMask(path=str(evil)), frames=1, image_size=16)
    assert not marker.exists()


def test_npy_and_mat_shapes_that_do_not_fit(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.zeros((7, 16, 16)))
    with pytest.raises(MaskError, match="the mask has 7 frames but training uses 8"):
        build_visible(FileMask(path=str(tmp_path / "m.npy")), frames=8, image_size=16)
    scipy.io.savemat(tmp_path / "m.mat", {"masks": np.zeros((16, 24, 8))})
    with pytest.raises(MaskError, match="24x16, expected square or 32x32"):
        build_visible(
            FileMask(path=str(tmp_path / "m.mat")), frames=8, image_size=16, source_size=(32, 32)
        )


def _mat_with_extra(path: Path, extra_shape: tuple[int, ...]) -> Path:
    """A fitting 8-frame mask plus a compressed variable of zeros (kB on disk)."""
    masks = np.zeros((16, 16, 8), np.uint8)
    scipy.io.savemat(path, {"masks": masks, "junk": np.zeros(extra_shape)}, do_compression=True)
    return path


def test_every_mat_variable_counts_toward_the_limit_and_only_the_mask_is_read(
    tmp_path: Path,
) -> None:
    limits = MaskLimits(max_bytes=1_000_000)
    small = _mat_with_extra(tmp_path / "small.mat", (1, 1))  # like the paper's sx, sy
    assert read_mask_array(small, limits).shape == (8, 16, 16)
    bomb = _mat_with_extra(tmp_path / "bomb.mat", (200, 200, 70))  # 22.4 MB unpacked
    assert bomb.stat().st_size < 100_000
    with pytest.raises(MaskTooLarge, match="unpack to 22402048 bytes"):
        inspect_mask_file(bomb, limits)
    # the worker's reader holds the file to the same bound before unpacking anything
    spec = FileMask(path=str(bomb), max_bytes=1_000_000)
    with pytest.raises(MaskTooLarge):
        build_visible(spec, frames=8, image_size=16)
    # unbounded (the offline CLI): it loads, and never unpacks the extra variable
    assert build_visible(FileMask(path=str(bomb)), frames=8, image_size=16).shape == (8, 16, 16)


def test_mask_frames_and_sides_are_bounded_from_the_header(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.zeros((12, 16, 16), np.uint8))
    with pytest.raises(MaskTooLarge, match="12 frames, more than 10"):
        inspect_mask_file(tmp_path / "m.npy", MaskLimits(max_frames=10))
    with pytest.raises(MaskTooLarge, match="more than 8 a side"):
        read_mask_array(tmp_path / "m.npy", MaskLimits(max_side=8))
    assert inspect_mask_file(tmp_path / "m.npy", MaskLimits(max_bytes=12 * 256)) == (12, 16, 16)
