"""The recovery blend: held-out pixels shaped like the mask, weights fitted on visible pixels
only, no worse than its inputs where it was fitted, applied to the occluded pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model.blend import (
    BINS,
    bin_names,
    blended_recovery,
    cubic_interpolation_fill,
    gap_bins,
    holdout,
)
from model.config import with_recovery_defaults
from model.learner import ABPTTLearner
from model.masks import MissingFramesMask
from model.metrics import linear_interpolation_fill
from model.training import train_model
from tests.model.conftest import tiny_config


def _missing_every_other(frames: int = 40, size: int = 8) -> np.ndarray:
    """(T, S, S) visibility with frames 1, 3, 6, 9, ... hidden."""
    visible = np.ones((frames, size, size), dtype=bool)
    visible[[t for t in range(1, frames - 1) if t % 3 != 2]] = False
    return visible


def _box_mask(frames: int = 40, size: int = 8, side: int = 3) -> np.ndarray:
    """(T, S, S) visibility with a side x side box hidden at a random place in every frame."""
    rng = np.random.default_rng(3)
    visible = np.ones((frames, size, size), dtype=bool)
    for t in range(frames):
        y, x = rng.integers(0, size - side, 2)
        visible[t, y : y + side, x : x + side] = False
    return visible


def _scene(visible: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth moving video (1, T, 3, S, S) in [-1, 1] and a noisy 'model' fill of it."""
    rng = np.random.default_rng(seed)
    frames, size = visible.shape[0], visible.shape[1]
    t = np.arange(frames).reshape(-1, 1, 1, 1)
    phase = rng.uniform(0, 6, (1, 3, size, size))
    truth = 0.7 * np.sin(t / 3.0 + phase)
    model = truth + rng.normal(0, 0.15, truth.shape)
    return truth[None], np.clip(model, -1, 1)[None]


def test_holdout_takes_a_small_share_of_visible_pixels_shaped_like_the_mask() -> None:
    missing = _missing_every_other()
    held = holdout(missing, 0.1, seed=0)
    assert not (held & ~missing).any(), "held-out pixels must be visible ones"
    assert 0.05 < held.sum() / missing.sum() < 0.2
    assert all(held[t].all() or not held[t].any() for t in range(len(held))), "whole frames"
    boxes = _box_mask()
    held = holdout(boxes, 0.1, seed=0)
    assert not (held & ~boxes).any() and 0 < held.sum() < 0.2 * boxes.sum()
    assert max(held[t].sum() for t in range(len(held))) <= 9, "no more than a box a frame"
    assert not holdout(boxes, 0.0, seed=0).any()


def test_cubic_fill_keeps_visible_pixels_and_follows_smooth_motion() -> None:
    visible = _missing_every_other()
    truth, _ = _scene(visible)
    seen = visible[:, None]
    cubic = cubic_interpolation_fill(truth[0], seen)
    linear = linear_interpolation_fill(truth[0], seen)
    hidden = np.broadcast_to(~seen, truth[0].shape)
    assert np.array_equal(cubic[~hidden], truth[0][~hidden])
    assert np.abs(cubic - truth[0])[hidden].mean() < np.abs(linear - truth[0])[hidden].mean()


def test_gap_bins_by_distance_to_the_nearest_known_frame() -> None:
    known = np.array([True, False, False, False, False, True, False, False])[:, None, None]
    assert gap_bins(known)[:, 0, 0].tolist() == [0, 0, 1, 1, 0, 0, 3, 3]
    assert gap_bins(known).max() == len(BINS) - 1
    # a batch of videos (N, T, S, S), as the blend passes them: time is still the frames' axis
    batch = np.stack([known, np.roll(known, 1, axis=0)])
    assert np.array_equal(gap_bins(batch), np.stack([gap_bins(v) for v in batch]))


def test_the_blend_never_reads_the_truth_of_occluded_pixels() -> None:
    for visible in (_missing_every_other(), _box_mask()):
        truth, model = _scene(visible)
        held = holdout(visible, 0.1, seed=0)[None]
        mask = visible[None]
        recovered, blend = blended_recovery(truth, model, mask, held)
        garbage = np.where(mask[:, :, None], truth, np.nan)
        again, blend_again = blended_recovery(garbage, model, mask, held)
        assert np.array_equal(blend.weights, blend_again.weights)
        assert blend.validation_error == blend_again.validation_error
        assert np.array_equal(recovered, again), "the recovered video must not change either"
        assert np.isfinite(again).all()
        seen = np.broadcast_to(visible[:, None], truth[0].shape)
        assert np.array_equal(recovered[0][seen], truth[0][seen]), "visible pixels are kept"


def test_the_blend_is_no_worse_than_either_input_where_it_was_fitted() -> None:
    for visible in (_missing_every_other(), _box_mask()):
        for seed in range(3):
            truth, model = _scene(visible, seed)
            held = holdout(visible, 0.15, seed=seed)[None]
            _, blend = blended_recovery(truth, model, visible[None], held)
            errors = blend.validation_error
            assert errors["blend"] <= min(errors["model"], errors["interpolation"]) + 1e-9
            assert np.all((blend.weights >= 0) & (blend.weights <= 1))
            assert np.allclose(blend.weights.sum(axis=1), 1)


def test_still_pixels_take_interpolation_and_moving_ones_the_model() -> None:
    """Left half still, right half moving fast; the model's fill noisy everywhere but right
    where it moves: the bins by the change of the known values around a pixel weight each
    fill where it is good, and the blend beats both on the occluded pixels."""
    visible = _box_mask(frames=40, size=32, side=12)
    rng = np.random.default_rng(0)
    t = np.arange(40).reshape(-1, 1, 1, 1)
    still = np.broadcast_to(rng.uniform(-0.8, 0.8, (1, 3, 32, 16)), (40, 3, 32, 16))
    moving = 0.8 * np.sin(1.5 * t + rng.uniform(0, 6, (1, 3, 32, 16)))
    truth = np.concatenate([still, moving], axis=3)[None]
    model = truth + rng.normal(0, 0.1, truth.shape)
    model[..., 16:] = truth[..., 16:] + rng.normal(0, 0.01, truth[..., 16:].shape)
    held = holdout(visible, 0.2, seed=0)[None]
    recovered, blend = blended_recovery(truth, model, visible[None], held)
    rows = dict(zip(bin_names(), blend.weights, strict=True))
    assert rows["1 frame, change 0-2"][blend.names.index("interpolation")] >= 0.9
    assert rows["1 frame, change 32+"][blend.names.index("model")] >= 0.9
    hidden = np.broadcast_to(~visible[None, :, None], truth.shape)  # (1, T, 3, S, S)
    error = {
        name: np.abs(fill - truth)[hidden].mean()
        for name, fill in (
            ("blend", recovered),
            ("model", model),
            ("interpolation", linear_interpolation_fill(truth[0], visible[:, None])[None]),
        )
    }
    assert error["blend"] < 0.8 * min(error["model"], error["interpolation"]), error


def test_a_masked_run_reports_model_interpolation_and_blend(
    tmp_path: Path, waves_video: Path
) -> None:
    mask = MissingFramesMask(frames=list(range(1, 15, 2)))
    config = tiny_config(epochs=3, **with_recovery_defaults({"chunk_length": 16}))
    metrics = train_model(config, [waves_video], tmp_path / "out", mask=mask, device="cpu").metrics
    for key in (
        "recovery_error",
        "recovery_error_model",
        "recovery_error_interpolation",
        "recovery_error_temporal_mean",
        "recovery_error_cubic",
    ):
        assert isinstance(metrics[key], float), key
    assert metrics["recovery_method"] == "blend"
    blend = metrics["blend"]
    assert isinstance(blend, dict) and set(blend["validation_error"]) >= {"model", "blend"}
    assert 0 < float(metrics["held_out_fraction"]) < 0.3  # type: ignore[arg-type]
    assert metrics["held_out_released"] is True  # after epoch 2 of 3
    assert (tmp_path / "out" / "recovered.mp4").is_file()


def _held_out_learner(truth: torch.Tensor, visible: np.ndarray, held: np.ndarray) -> ABPTTLearner:
    """A tiny learner on 8 epochs that trains without `held` until epoch 6, then with it."""
    config = tiny_config(epochs=8, holdout=0.1, holdout_release=0.25, chunk_length=16)
    assert config.release_epoch == 6
    learner = ABPTTLearner(config, truth, torch.from_numpy((visible & ~held)[None, :, None]))
    learner.schedule_release(torch.from_numpy(visible[None, :, None]), config.release_epoch)
    return learner


def test_held_out_pixels_are_released_late_and_their_fill_never_saw_them(
    tmp_path: Path,
) -> None:
    """The fill the blend is fitted on is the posterior mean from before the release: the same
    whatever the held-out pixels hold; the final fill, trained on them, differs; a run resumed
    across the release ends bit-identical to one that was not stopped."""
    visible = _box_mask(frames=16, size=16, side=5)
    held = holdout(visible, 0.1, seed=0)
    truth, _ = _scene(visible)
    clips = torch.from_numpy(truth.astype(np.float32))
    other = clips.clone()
    other[0, torch.from_numpy(held)[:, None].expand(-1, 3, -1, -1)] = 0.9  # other held-out truth
    runs = [_held_out_learner(c, visible, held) for c in (clips, clips, other)]
    runs[0].fit()
    runs[1].fit(epochs=7)  # stopped after the release, resumed in a new learner
    resumed = _held_out_learner(clips, visible, held)
    resumed.load_state_tensors(*runs[1].state_tensors())
    resumed.fit()
    runs[2].fit()
    fills = [r.held_out_fill() for r in (runs[0], resumed, runs[2])]
    assert all(f is not None for f in fills)
    assert torch.equal(fills[0], fills[1]) and torch.equal(fills[0], fills[2])
    assert torch.equal(runs[0].averaged_reconstruction(), resumed.averaged_reconstruction())
    assert not torch.equal(runs[0].averaged_reconstruction(), runs[2].averaged_reconstruction())
    assert runs[0].recon_count == 2  # the posterior mean after the release: epochs 7 and 8


def test_faithful_recovery_holds_nothing_out(tmp_path: Path, waves_video: Path) -> None:
    mask = MissingFramesMask(frames=[3, 7])
    fields = with_recovery_defaults({"preset": "faithful", "chunk_length": 16})
    config = tiny_config(epochs=2, **fields)
    assert config.holdout == 0
    metrics = train_model(config, [waves_video], tmp_path / "out", mask=mask, device="cpu").metrics
    assert metrics["recovery_method"] == "model"
    assert metrics["recovery_error"] == metrics["recovery_error_model"]
