"""Procedural dynamic textures: small videos made on the spot for demos and tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def waves(frames: int, size: int, *, seed: int = 0, period: float = 12.0) -> np.ndarray:
    """Travelling coloured waves with a drifting bright blob: (T, S, S, 3) uint8."""
    return np.stack(list(wave_frames(frames, size, seed=seed, period=period)))


def wave_frames(
    frames: int, size: int, *, seed: int = 0, period: float = 12.0
) -> Iterator[np.ndarray]:
    """The frames of `waves` one at a time, (S, S, 3) uint8: memory holds one frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    directions = rng.normal(size=(3, 2))
    phases = rng.uniform(0, 2 * np.pi, size=3)
    omega = 2 * np.pi / period
    for t in range(frames):
        channels = [
            np.sin(2 * np.pi * (d[0] * x + d[1] * y) * 1.5 - omega * t + p)
            for d, p in zip(directions, phases, strict=True)
        ]
        cx, cy = 0.5 + 0.3 * np.cos(omega * t / 2), 0.5 + 0.3 * np.sin(omega * t / 2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.02)
        frame = 0.35 * np.stack(channels, axis=-1) + 0.6 * blob[..., None] - 0.1
        yield np.clip((frame + 1) * 127.5, 0, 255).astype(np.uint8)
