"""The quality report's metrics on videos whose answer is known."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from model.procedural import waves
from model.quality import (
    appearance_distance,
    dynamics_distance,
    motion_ratio,
    noise_floor,
    novelty,
    packed_like_syntheses,
    quality_report,
    scores,
)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """48 frames of a procedural texture at 32x32; (T, S, S, 3) uint8."""
    return waves(96, 32)[:48]


@pytest.fixture(scope="module")
def held_out() -> np.ndarray:
    """The same texture's next 45 frames from a shifted phase: a natural continuation."""
    return waves(101, 32)[56:]


def test_a_frozen_video_has_no_motion_and_far_dynamics(
    clip: np.ndarray, held_out: np.ndarray
) -> None:
    frozen = np.repeat(clip[:1][None], 96, axis=1)
    assert motion_ratio(frozen, clip) == 0
    assert dynamics_distance(frozen, clip) > 10 * noise_floor(clip)[1]
    assert dynamics_distance(frozen, clip) > 10 * dynamics_distance(held_out[None], clip)


def test_a_clip_against_itself_scores_zero(clip: np.ndarray) -> None:
    assert appearance_distance(clip[None], clip) == pytest.approx(0, abs=1e-9)
    assert dynamics_distance(clip[None], clip) == pytest.approx(0, abs=1e-9)
    assert motion_ratio(clip[None], clip) == pytest.approx(1)


def test_a_copy_of_training_frames_has_novelty_zero(clip: np.ndarray) -> None:
    copies = np.stack([clip[::-1], clip[np.random.default_rng(0).permutation(len(clip))]])
    assert novelty(copies, clip) == 0
    noisy = np.clip(
        clip.astype(int) + np.random.default_rng(1).integers(-40, 40, clip.shape), 0, 255
    )
    assert novelty(noisy.astype(np.uint8)[None], clip) > 0.5


def test_shuffled_frames_keep_appearance_but_change_dynamics(
    clip: np.ndarray, held_out: np.ndarray
) -> None:
    shuffled = clip[np.random.default_rng(0).permutation(len(clip))][None]
    appearance_floor, dynamics_floor = noise_floor(clip)
    assert appearance_distance(shuffled, clip) < 2 * appearance_floor
    assert dynamics_distance(shuffled, clip) > 10 * dynamics_floor
    assert motion_ratio(shuffled, clip) > 1.5


def test_the_report_has_every_number_and_its_references(
    clip: np.ndarray, held_out: np.ndarray
) -> None:
    synthesized = np.stack([held_out, clip[: len(held_out)][::-1]])
    report = quality_report(synthesized, clip, held_out)
    json.dumps(report, allow_nan=False)
    for part in (report, report["reference_held_out"], report["reference_frozen"]):
        assert {"appearance", "dynamics", "motion_ratio", "novelty", "drift"} <= part.keys()
    frozen = report["reference_frozen"]
    assert (frozen["motion_ratio"], frozen["novelty"], frozen["drift"]) == (0, 0, 1)
    assert report["dynamics"] < frozen["dynamics"]
    assert quality_report(synthesized, clip)["reference_held_out"] is None


def test_a_looping_clips_held_back_copy_scores_as_a_synthesis_of_it_would(
    clip: np.ndarray,
) -> None:
    # a clip that loops: its held-back frames are its own frames again (tiger.mp4)
    reference = quality_report(clip[None], clip, clip)["reference_held_out"]
    as_syntheses = appearance_distance(np.stack([clip] * 10), clip)
    # alone, the copy's patches are drawn at the clip's own frames and places: exactly 0
    assert appearance_distance(clip[None], clip) == 0
    assert reference["appearance"] > 0.5 * as_syntheses > 0


def test_the_held_back_frames_are_packed_one_copy_per_synthesis(held_out: np.ndarray) -> None:
    assert packed_like_syntheses(held_out, 10, 48).shape == (10, *held_out.shape)
    assert packed_like_syntheses(held_out, 1, 48).shape[0] == 2
    # never the clip's frame count in all: 2 x 24 = 48 would pair the draws again
    assert packed_like_syntheses(held_out[:24], 2, 48).shape[0] == 3
    np.testing.assert_array_equal(packed_like_syntheses(held_out, 3, 48)[2], held_out)


def test_the_report_is_fast(clip: np.ndarray) -> None:
    synthesized = np.stack([waves(240, 32, seed=1), waves(240, 32, seed=2)])
    began = time.perf_counter()
    quality_report(synthesized, clip, clip)
    assert time.perf_counter() - began < 5  # a few seconds on two shared cores


def test_a_static_clip_leaves_the_ratios_undefined() -> None:
    still = np.full((8, 16, 16, 3), 100, dtype=np.uint8)
    result = scores(np.repeat(still[None], 2, axis=0), still)
    assert result["motion_ratio"] is None and result["novelty"] is None


@pytest.mark.parametrize(
    "videos",
    [
        np.zeros((2, 8, 16, 16, 3), dtype=np.uint8),  # another frame size
        np.zeros((8, 32, 32, 3), dtype=np.uint8),  # no video axis
        np.zeros((2, 2, 32, 32, 3), dtype=np.uint8),  # too short for quarters
        np.zeros((2, 8, 32, 32, 3), dtype=np.float32),  # not uint8
    ],
)
def test_shapes_it_cannot_compare_are_refused(clip: np.ndarray, videos: np.ndarray) -> None:
    with pytest.raises(ValueError):
        quality_report(videos, clip)
