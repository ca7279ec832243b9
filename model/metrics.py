"""Reconstruction metrics: visible-pixel MSE and PSNR, and recovery error on occluded pixels."""

from __future__ import annotations

import math

import numpy as np


def visible_mse(
    truth: np.ndarray, estimate: np.ndarray, visible: np.ndarray | None = None
) -> float:
    """Mean squared error over observed values, in [-1, 1] units; arrays (..., 3, H, W)."""
    squared = (truth.astype(np.float64) - estimate) ** 2
    if visible is None:
        return float(squared.mean())
    weight = np.broadcast_to(visible, squared.shape)
    return float((squared * weight).sum() / max(weight.sum(), 1))


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for an MSE on the [-1, 1] scale (peak-to-peak 2)."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(4.0 / mse)


def recovery_error(truth: np.ndarray, estimate: np.ndarray, visible: np.ndarray) -> float:
    """Mean absolute error over occluded values on the 0..255 scale (the paper's measure)."""
    occluded = np.broadcast_to(~visible.astype(bool), truth.shape)
    if not occluded.any():
        return 0.0
    diff = np.abs(truth.astype(np.float64) - estimate) * 127.5
    return float(diff[occluded].mean())


def temporal_mean_fill(video: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Baseline: each occluded pixel gets the mean of that pixel over the frames it is visible."""
    weight = np.broadcast_to(visible, video.shape).astype(np.float64)
    total = (video * weight).sum(axis=0)
    count = weight.sum(axis=0)
    mean = np.where(count > 0, total / np.maximum(count, 1), (video * weight).sum() / weight.sum())
    return np.where(weight > 0, video, mean[None])


def nearest_seen_frames(seen: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per element, the index along `axis` (time) of the last seen frame at or before it (-1
    where none) and of the first at or after it (the length where none)."""
    length = seen.shape[axis]
    shape = [1] * seen.ndim
    shape[axis] = length
    steps = np.arange(length).reshape(shape)
    before = np.maximum.accumulate(np.where(seen, steps, -1), axis=axis)
    flipped = np.flip(np.where(seen, steps, length), axis=axis)
    after = np.flip(np.minimum.accumulate(flipped, axis=axis), axis=axis)
    return before, after


def linear_interpolation_fill(video: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Baseline: each occluded pixel linearly interpolated in time between its nearest visible
    frames before and after (the nearest one at either end); video (T, C, H, W)."""
    seen = np.broadcast_to(visible, video.shape).astype(bool)
    length = video.shape[0]
    steps = np.arange(length).reshape(-1, *([1] * (video.ndim - 1)))
    before, after = nearest_seen_frames(seen)
    has_before, has_after = before >= 0, after < length
    before_c, after_c = np.clip(before, 0, length - 1), np.clip(after, 0, length - 1)
    v_before = np.take_along_axis(video, before_c, axis=0)
    v_after = np.take_along_axis(video, after_c, axis=0)
    span = np.maximum(after_c - before_c, 1)
    weight = np.clip((steps - before_c) / span, 0, 1)
    both = v_before + weight * (v_after - v_before)
    filled = np.where(has_before & has_after, both, np.where(has_before, v_before, v_after))
    never = ~(has_before | has_after)  # a pixel hidden in every frame: the temporal-mean fallback
    if never.any():
        filled = np.where(never, temporal_mean_fill(video, visible), filled)
    return np.where(seen, video, filled)
