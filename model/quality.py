"""Quality report: how syntheses compare with their training clip, beside reference videos.

All distances are sliced Wasserstein distances between distributions of small patches, on
pixels scaled to [0, 1]; they are comparable between videos of one clip, not across clips.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PATCH = 5  # patch side in pixels (clamped to the frame)
PATCHES = 8192  # patches drawn from each distribution
PROJECTIONS = 64  # random directions of the sliced Wasserstein distance
EPS = 1e-12


def _as_float(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., S, S, 3) -> float32 in [0, 1]."""
    return frames.astype(np.float32) / 255.0


def downsample(frames: np.ndarray) -> np.ndarray:
    """2x2 mean pooling of float (N, H, W, 3) frames (an odd last row / column is dropped)."""
    n, h, w, c = frames.shape
    even = frames[:, : h // 2 * 2, : w // 2 * 2]
    halved: np.ndarray = even.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return halved


def sample_patches(
    frames: np.ndarray, rng: np.random.Generator, count: int = PATCHES
) -> np.ndarray:
    """`count` random PATCH x PATCH patches (drawn with replacement) of (N, H, W, 3): (count, D)."""
    side = min(PATCH, *frames.shape[1:3])
    windows = np.lib.stride_tricks.sliding_window_view(frames, (side, side), axis=(1, 2))
    # windows: (N, H - side + 1, W - side + 1, 3, side, side), a view: nothing is copied
    picks = [rng.integers(0, size, count) for size in windows.shape[:3]]
    return windows[picks[0], picks[1], picks[2]].reshape(count, -1)


def _projections(dim: int, seed: int) -> np.ndarray:
    """A fixed set of PROJECTIONS unit directions in R^dim: (dim, P)."""
    directions = np.random.default_rng([seed, dim]).normal(size=(dim, PROJECTIONS))
    unit: np.ndarray = directions / np.linalg.norm(directions, axis=0, keepdims=True)
    return unit.astype(np.float32)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """SW_2 between two equal-sized point sets (M, D): sqrt of the mean squared 1-D W_2."""
    if a.shape != b.shape:
        raise ValueError(f"point sets differ in shape: {a.shape} and {b.shape}")
    directions = _projections(a.shape[1], seed)
    # (P, M), sorted along the contiguous axis: the 1-D optimal transport pairs sorted values
    pa = np.sort((a @ directions).T, axis=1)
    pb = np.sort((b @ directions).T, axis=1)
    return float(np.sqrt(np.mean((pa - pb) ** 2)))


def _downsample_videos(videos: np.ndarray) -> np.ndarray:
    """2x2 mean pooling of float (V, T, H, W, 3) videos: (V, T, H // 2, W // 2, 3)."""
    pooled = downsample(videos.reshape(-1, *videos.shape[2:]))
    return pooled.reshape(*videos.shape[:2], *pooled.shape[1:])


def _frames_of(videos: np.ndarray, kind: str) -> np.ndarray:
    """The images whose patches are compared: frames, or x_{t+1} - x_t; (N, H, W, 3)."""
    if kind == "dynamics":
        videos = videos[:, 1:] - videos[:, :-1]
    return videos.reshape(-1, *videos.shape[2:])


def _distance(a: np.ndarray, b: np.ndarray, kind: str, seed: int, draws: tuple[int, int]) -> float:
    """Patch SW distance of float (V, T, H, W, 3) videos, full and half resolution averaged."""
    distances = []
    for _scale in range(2):
        pa = sample_patches(_frames_of(a, kind), np.random.default_rng([seed, draws[0]]))
        pb = sample_patches(_frames_of(b, kind), np.random.default_rng([seed, draws[1]]))
        distances.append(sliced_wasserstein(pa, pb, seed))
        # downsample the frames (then difference them): the coarser video's patches
        a, b = _downsample_videos(a), _downsample_videos(b)
    return float(np.mean(distances))


def appearance_distance(videos: np.ndarray, clip: np.ndarray, seed: int = 0) -> float:
    """Distance between the patches of uint8 (V, T, S, S, 3) videos and of (T, S, S, 3) clip."""
    # one patch draw for both: identical inputs draw identical patches and score exactly 0
    return _distance(_as_float(videos), _as_float(clip)[None], "appearance", seed, (1, 1))


def dynamics_distance(videos: np.ndarray, clip: np.ndarray, seed: int = 0) -> float:
    """The same distance on patches of frame differences x_{t+1} - x_t."""
    return _distance(_as_float(videos), _as_float(clip)[None], "dynamics", seed, (1, 1))


def noise_floor(clip: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(appearance, dynamics) between two independent patch draws of the clip itself.

    Distances at this level are sampling noise: videos that score so are indistinguishable.
    """
    frames = _as_float(clip)[None]
    return (
        _distance(frames, frames, "appearance", seed, (2, 3)),
        _distance(frames, frames, "dynamics", seed, (2, 3)),
    )


def mean_motion(videos: np.ndarray) -> float:
    """Mean absolute frame difference of uint8 (V, T, S, S, 3) videos, on the 0..255 scale."""
    return float(np.abs(np.diff(videos.astype(np.int16), axis=1)).mean())


def motion_ratio(videos: np.ndarray, clip: np.ndarray) -> float | None:
    """Mean absolute frame difference, videos over clip; None when the clip doesn't move."""
    return _ratio(mean_motion(videos), mean_motion(clip[None]))


def novelty(videos: np.ndarray, clip: np.ndarray) -> float | None:
    """Mean RMS distance of each frame to its nearest clip frame, over the clip's own step."""
    # float64: the expansion below cancels large terms, and a copy must score 0, not 1e-3
    frames = videos.reshape(-1, int(np.prod(videos.shape[2:]))) / 255.0  # (V * T, D)
    train = clip.reshape(clip.shape[0], -1) / 255.0  # (T, D)
    # squared distances by the expansion |a|^2 - 2 a.b + |b|^2: (V * T, T) without a 3-D array
    squared = (frames**2).sum(1)[:, None] - 2 * frames @ train.T + (train**2).sum(1)[None]
    # the distance to the nearest frame recomputed directly, so that a copy scores exactly 0
    nearest_frames = train[squared.argmin(axis=1)]  # (V * T, D)
    nearest = np.sqrt(np.mean((frames - nearest_frames) ** 2, axis=1))
    step = np.sqrt(np.mean((train[1:] - train[:-1]) ** 2, axis=1)).mean()
    return _ratio(float(nearest.mean()), float(step))


def drift(videos: np.ndarray, clip: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """(ratio, first, last): appearance distance of the last quarter over that of the first."""
    quarter = max(1, videos.shape[1] // 4)
    first = appearance_distance(videos[:, :quarter], clip, seed)
    last = appearance_distance(videos[:, -quarter:], clip, seed)
    # identical quarters (a frozen video) score exactly 1; a tiny first distance is a replay
    ratio = 1.0 if last == first else last / max(first, EPS)
    return ratio, first, last


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero."""
    return None if denominator <= EPS else numerator / denominator


def _check(videos: np.ndarray, clip: np.ndarray) -> None:
    """Shapes the report can compare: (V, T >= 4, S, S, 3) against (T >= 2, S, S, 3), uint8."""
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] < 2:
        raise ValueError(f"clip: expected (T >= 2, S, S, 3) frames, got shape {clip.shape}")
    if videos.ndim != 5 or videos.shape[2:] != clip.shape[1:] or videos.shape[1] < 4:
        raise ValueError(
            f"videos: expected (V, T >= 4, {', '.join(map(str, clip.shape[1:]))}), "
            f"got shape {videos.shape}"
        )
    if videos.dtype != np.uint8 or clip.dtype != np.uint8:
        raise ValueError("videos and clip must be uint8 frames (0..255)")


def scores(videos: np.ndarray, clip: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Every number of the report for uint8 (V, T, S, S, 3) videos against a (T, S, S, 3) clip."""
    _check(videos, clip)
    ratio, first, last = drift(videos, clip, seed)
    return {
        "appearance": appearance_distance(videos, clip, seed),
        "dynamics": dynamics_distance(videos, clip, seed),
        "motion_ratio": motion_ratio(videos, clip),
        "novelty": novelty(videos, clip),
        "drift": ratio,
        "appearance_first_quarter": first,
        "appearance_last_quarter": last,
        "videos": int(videos.shape[0]),
        "frames": int(videos.shape[1]),
    }


def packed_like_syntheses(held_out: np.ndarray, videos: int, clip_frames: int) -> np.ndarray:
    """The held-back frames (H, S, S, 3) as a reference scored like `videos` syntheses: one
    copy per video, at least two, never the clip's own frame count in all: (copies, H, ...)."""
    # a patch draw picks frame u * N of N frames; with the clip's N, each reference patch
    # comes from the very frame index and place of the clip patch it is sorted against, so a
    # clip that loops scores its held-back copy near 0 (tiger.mp4: frames 60-119 repeat 0-59,
    # 0.00112 alone against 0.00436 for the same frames packed as ten syntheses; QUALITY.md)
    copies = max(videos, 2)
    if copies * held_out.shape[0] == clip_frames:
        copies += 1
    return np.repeat(held_out[None], copies, axis=0)


def quality_report(
    synthesized: np.ndarray, clip: np.ndarray, held_out: np.ndarray | None = None, seed: int = 0
) -> dict[str, Any]:
    """The scores of the syntheses, of the clip's held-back frames and of a frozen frame.

    synthesized (V, T, S, S, 3), clip (T, S, S, 3), held_out (H, S, S, 3) or None, all uint8.
    Held-back frames shorter than 4 frames are left out (reference_held_out is None).
    """
    report = scores(synthesized, clip, seed)
    report["appearance_floor"], report["dynamics_floor"] = noise_floor(clip, seed)
    report["reference_held_out"] = None
    if held_out is not None and held_out.shape[0] >= 4:
        packed = packed_like_syntheses(held_out, synthesized.shape[0], clip.shape[0])
        report["reference_held_out"] = scores(packed, clip, seed)
    frozen = np.repeat(clip[:1][None], synthesized.shape[1], axis=1)  # (1, T, S, S, 3)
    report["reference_frozen"] = scores(frozen, clip, seed)
    return report


def mean_report(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Reports of several seeds as one: each distance and ratio averaged (counts, the first
    report's), plus `seeds` and the per-seed `dynamics_by_seed` to show the spread."""
    merged: dict[str, Any] = _mean_of(reports)
    merged["seeds"] = len(reports)
    merged["dynamics_by_seed"] = [r["dynamics"] for r in reports]
    return merged


def _mean_of(parts: list[Any]) -> Any:
    """The mean of matching floats; nested dicts averaged key by key; anything else, the first."""
    first = parts[0]
    if isinstance(first, dict):
        return {key: _mean_of([p[key] for p in parts]) for key in first}
    if isinstance(first, float):
        return float(np.mean(parts))
    return first


MOTION_RANGE = (0.5, 2.0)
DRIFT_MAX = 1.5
NOVELTY_MIN = 0.3
RECONSTRUCTION_MOTION_MIN = 0.5


def reconstruction_motion_ratio(reconstruction: np.ndarray, clips: np.ndarray) -> float | None:
    """How much the reconstruction of the training clips moves, over the clips: both uint8
    (N, T, S, S, 3); None when the clips don't move."""
    return _ratio(mean_motion(reconstruction), mean_motion(clips))


def quality_warnings(
    report: dict[str, Any] | None,
    reconstruction_motion: float | None = None,
    residual: bool = False,
) -> list[str]:
    """One sentence per number outside its range: what it means and what to try (`residual`:
    the model already adds a residual process, so it isn't suggested)."""
    notes = []
    report = report or {}
    motion, drift_ratio, new = (report.get(k) for k in ("motion_ratio", "drift", "novelty"))
    if motion is not None and motion < MOTION_RANGE[0]:
        notes.append(
            f"the syntheses move {motion:.2f} times as much as the clip (below "
            f"{MOTION_RANGE[0]}): they are close to still pictures; try "
            + ("" if residual else "`residual: lds`, ")
            + "`method: auto`, or more epochs"
        )
    if motion is not None and motion > MOTION_RANGE[1]:
        notes.append(
            f"the syntheses move {motion:.2f} times as much as the clip (above "
            f"{MOTION_RANGE[1]}): they flicker faster than the clip; try `method: auto`, more "
            "epochs, or a smaller noise scale when synthesizing"
        )
    if drift_ratio is not None and drift_ratio > DRIFT_MAX:
        notes.append(
            f"drift {drift_ratio:.2f} (above {DRIFT_MAX}): the last quarter of each synthesis "
            "looks further from the clip than the first, so long videos wander off the clip's "
            "look; try 120 frames with `warm_start: pca`, or `method: auto`"
        )
    if new is not None and new < NOVELTY_MIN:
        notes.append(
            f"novelty {new:.2f} (below {NOVELTY_MIN}): the syntheses are near copies of "
            "training frames (the model replays the clip); try fewer epochs or more frames"
        )
    if reconstruction_motion is not None and reconstruction_motion < RECONSTRUCTION_MOTION_MIN:
        notes.append(
            f"the reconstruction of the training clip moves {reconstruction_motion:.2f} times "
            f"as much as the clip (below {RECONSTRUCTION_MOTION_MIN}): the model fits the "
            "clip's mean picture and treats its fast detail as noise, so "
            + (
                "its states carry little of the clip's motion and the residual process "
                "supplies most of it; more epochs fit the dynamics better"
                if residual
                else "syntheses come out smoother than the clip; try `residual: lds` (adds "
                "that detail back), more epochs, or `method: auto`"
            )
        )
    return notes
