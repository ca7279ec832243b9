"""Recovery by self-validation: visible pixels held out like the mask, the model's fill and
temporal interpolations blended with weights fitted there, applied to the occluded pixels."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from model.metrics import linear_interpolation_fill, nearest_seen_frames, recovery_error

# Bins of an unknown pixel by its temporal distance to the nearest known frame at that pixel:
# interpolation is sharp across a one-frame gap and blurs over longer ones.
BINS = ("1 frame", "2 frames", "3+ frames", "one side")
# ... and by how much its two nearest known values differ (mean over channels, 0..255): where
# they agree the pixel is still and interpolation is near exact, where they differ something
# moved through it and the model's fill helps. The occluded pixels can mix still and moving
# ones otherwise than the held-out ones do (the paper's box over a running tiger: QUALITY.md),
# so each class gets its own weights.
CHANGE_EDGES = (2.0, 8.0, 32.0)
CHANGE_CLASSES = len(CHANGE_EDGES) + 1
GRID_STEP = 0.05  # weights are searched on a grid over the simplex, so each lies in [0, 1]
MIN_BIN_VALUES = 2000  # fewer validation values in a bin: it takes its gap's (or pooled) weights


@dataclass(frozen=True)
class Blend:
    """Convex weights of the candidate fills per bin (gap x change) and what they scored on
    validation."""

    names: tuple[str, ...]
    weights: np.ndarray  # (len(bin_names()), len(names)), each row sums to 1
    validation_error: dict[str, float]  # 0..255 MAE on the held-out pixels, per fill
    validation_values: int

    def summary(self) -> dict[str, object]:
        """The weights and validation errors as metrics.json keeps them."""
        return {
            "candidates": list(self.names),
            "bins": bin_names(),
            "weights": [[round(float(w), 3) for w in row] for row in self.weights],
            "validation_error": {k: round(v, 4) for k, v in self.validation_error.items()},
            "validation_values": self.validation_values,
        }


def bin_names() -> list[str]:
    """One name per bin: the gap, then the change of the known values around it."""
    bounds = (0.0, *CHANGE_EDGES)
    changes = [f"change {lo:g}-{hi:g}" for lo, hi in zip(bounds, CHANGE_EDGES, strict=False)]
    changes.append(f"change {CHANGE_EDGES[-1]:g}+")
    return [f"{gap}, {change}" for gap in BINS for change in changes]


def holdout(visible: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Visible pixels (T, S, S) to hold out for validation, about `fraction` of them, shaped
    like the occlusion: a chosen frame hides another frame's occluded set (a whole frame
    where that one is missing, its box where it has a box), moved by half the frame only
    where it would hide nothing in place (a box that never moves)."""
    held = np.zeros_like(visible)
    rng = np.random.default_rng(seed)
    sources = rng.permutation(np.flatnonzero((~visible).any(axis=(1, 2))))
    if fraction <= 0 or len(sources) == 0:
        return held
    budget = fraction * visible.sum()
    order = rng.permutation(len(visible))
    # first frames whose held pixels keep known neighbours on both sides, as most occluded
    # pixels have (a held frame beside a gap would make the gap longer than any real one)
    for isolated_only in (True, False):
        for index, t in enumerate(order):
            if held.sum() >= budget:
                return held
            shape = _held_shape(~visible[sources[index % len(sources)]], visible[t])
            free = shape.any() and not held[t].any()
            if free and (not isolated_only or _isolated(visible & ~held, shape, t)):
                held[t] = shape
    return held


def _held_shape(occluded: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Another frame's occluded set (S, S) on this frame's visible pixels: in place, so the
    held pixels lie where occlusions lie, else moved by half the frame."""
    in_place: np.ndarray = occluded & visible
    if in_place.any():
        return in_place
    half = occluded.shape[0] // 2
    moved: np.ndarray = np.roll(occluded, (half, half), axis=(0, 1)) & visible
    return moved


def _isolated(known: np.ndarray, shape: np.ndarray, t: int) -> bool:
    """Whether most of the pixels `shape` would hold in frame t are known before and after."""
    if t == 0 or t == len(known) - 1:
        return False
    both = known[t - 1] & known[t + 1]
    return bool(both[shape].mean() >= 0.5)


def gap_bins(known: np.ndarray) -> np.ndarray:
    """Each pixel's bin by its temporal distance to the nearest known frame, for (T, S, S) or
    (N, T, S, S) `known`: time is the third axis from the end."""
    length = known.shape[-3]
    steps = np.arange(length).reshape(length, 1, 1)
    before, after = nearest_seen_frames(known, axis=-3)
    one_side = (before < 0) | (after >= length)
    distance = np.minimum(steps - before, after - steps)
    bins: np.ndarray = np.where(one_side, len(BINS) - 1, np.clip(distance, 1, 3) - 1)
    return bins


def blend_bins(observed: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each pixel's bin (N, T, S, S) of (N, T, 3, S, S) videos with `known` pixels: its gap bin
    times the change classes, plus its change class (0 where a side has no known frame)."""
    change = np.stack([_neighbour_change(v, k) for v, k in zip(observed, known, strict=True)])
    bins: np.ndarray = gap_bins(known) * CHANGE_CLASSES + np.digitize(change, CHANGE_EDGES)
    return bins


def _neighbour_change(video: np.ndarray, known: np.ndarray) -> np.ndarray:
    """|after - before| of each pixel's nearest known values (T, S, S), channel mean, 0..255;
    0 where a side has none."""
    seen = np.broadcast_to(known[:, None], video.shape)
    length = video.shape[0]
    before, after = nearest_seen_frames(seen)
    both = ((before >= 0) & (after < length)).all(axis=1)
    change = np.abs(_at(video, after) - _at(video, before)).mean(axis=1) * 127.5
    return np.where(both, change, 0.0)


def cubic_interpolation_fill(video: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Each occluded pixel from a cubic Hermite curve between its nearest visible frames,
    tangents from the visible frames beyond them (linear where a side lacks one); (T, C, H, W)."""
    seen = np.broadcast_to(visible, video.shape).astype(bool)
    length = video.shape[0]
    last, first = nearest_seen_frames(seen)  # (T, C, H, W): -1 / length where none
    both = (last >= 0) & (first < length)
    b1c, a1c = np.clip(last, 0, length - 1), np.clip(first, 0, length - 1)
    # the visible frames beyond the nearest ones: the last before b1c, the first after a1c
    b2 = np.where(b1c > 0, np.take_along_axis(last, np.maximum(b1c - 1, 0), axis=0), -1)
    after_next = np.take_along_axis(first, np.minimum(a1c + 1, length - 1), axis=0)
    a2 = np.where(a1c < length - 1, after_next, length)
    v = {name: _at(video, idx) for name, idx in (("b1", b1c), ("a1", a1c))}
    span = np.maximum(a1c - b1c, 1)
    chord = (v["a1"] - v["b1"]) / span
    m_b = np.where(b2 >= 0, (v["a1"] - _at(video, b2)) / np.maximum(a1c - b2, 1), chord)
    m_a = np.where(a2 < length, (_at(video, a2) - v["b1"]) / np.maximum(a2 - b1c, 1), chord)
    s = np.clip((np.arange(length).reshape(-1, 1, 1, 1) - b1c) / span, 0, 1)
    curve = (
        (2 * s**3 - 3 * s**2 + 1) * v["b1"]
        + (s**3 - 2 * s**2 + s) * span * m_b
        + (-2 * s**3 + 3 * s**2) * v["a1"]
        + (s**3 - s**2) * span * m_a
    )
    linear = linear_interpolation_fill(video, visible)
    return np.where(seen, video, np.where(both, np.clip(curve, -1, 1), linear))


def _at(video: np.ndarray, index: np.ndarray) -> np.ndarray:
    """video[index[t], c, y, x] for every (t, c, y, x), indices clipped into the clip."""
    return np.take_along_axis(video, np.clip(index, 0, video.shape[0] - 1), axis=0)


def candidate_fills(
    observed: np.ndarray, known: np.ndarray, model_fill: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The fills to blend, from the `known` pixels of (N, T, 3, S, S) videos, known (N, T, S, S);
    without a model fill, the two interpolations alone."""
    mask = known[:, :, None]
    model = {} if model_fill is None else {"model": model_fill}
    return model | {
        "interpolation": np.stack(
            [linear_interpolation_fill(v, k) for v, k in zip(observed, mask, strict=True)]
        ),
        "cubic": np.stack(
            [cubic_interpolation_fill(v, k) for v, k in zip(observed, mask, strict=True)]
        ),
    }


def fit_blend(
    truth: np.ndarray, fills: dict[str, np.ndarray], validation: np.ndarray, bins: np.ndarray
) -> Blend:
    """Per-bin convex weights minimising the absolute error on the validation pixels only; a
    bin with too few of them takes its gap's weights, a gap with too few the pooled ones."""
    chosen = np.broadcast_to(validation[:, :, None], truth.shape)
    target = truth[chosen]  # only the held-out pixels' truth is read
    names = tuple(fills)
    values = np.stack([fills[n][chosen] for n in names])  # (K, V)
    where = np.broadcast_to(bins[:, :, None], truth.shape)[chosen]
    grid = _simplex_grid(len(names))
    pooled = _best_weights(grid, values, target)
    gaps = [
        _bin_weights(grid, values, target, where // CHANGE_CLASSES == g, pooled)
        for g in range(len(BINS))
    ]
    weights = np.stack(
        [
            _bin_weights(grid, values, target, where == b, gaps[b // CHANGE_CLASSES])
            for b in range(len(BINS) * CHANGE_CLASSES)
        ]
    )
    errors = {n: _mae(values[i], target) for i, n in enumerate(names)}
    blended = _mae(np.einsum("kv,vk->v", values, weights[where]), target)
    best = min(names, key=errors.__getitem__)
    if blended > errors[best]:  # pooled rows of small bins can lose to one fill: keep that one
        weights = np.tile(np.eye(len(names))[names.index(best)], (len(weights), 1))
        blended = errors[best]
    return Blend(names, weights, errors | {"blend": blended}, int(target.size))


def _bin_weights(
    grid: np.ndarray,
    values: np.ndarray,
    target: np.ndarray,
    members: np.ndarray,
    fallback: np.ndarray,
) -> np.ndarray:
    """The best weights on the validation values in `members`, or `fallback` if too few."""
    if members.sum() < MIN_BIN_VALUES:
        return fallback
    return _best_weights(grid, values[:, members], target[members])


def _mae(estimate: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error on the 0..255 scale of values in [-1, 1]."""
    return float(np.abs(estimate - target).mean() * 127.5)


def apply_blend(blend: Blend, fills: dict[str, np.ndarray], bins: np.ndarray) -> np.ndarray:
    """The weighted fill of every pixel, each pixel weighted by its bin's row."""
    weights = blend.weights[bins]  # (N, T, S, S, K)
    stacked = np.stack([fills[n] for n in blend.names], axis=-1)  # (N, T, 3, S, S, K)
    blended: np.ndarray = np.einsum("ntcyxk,ntyxk->ntcyx", stacked, weights)
    return blended


def blended_recovery(
    truth: np.ndarray,
    model_fill: np.ndarray | None,
    visible: np.ndarray,
    validation: np.ndarray,
    held_out_fill: np.ndarray | None = None,
) -> tuple[np.ndarray, Blend]:
    """The recovered videos (N, T, 3, S, S) and their blend: `fit_recovery_blend`, applied to
    the occluded pixels with the fills made from every visible pixel."""
    observed = np.where(visible[:, :, None], truth, 0.0)
    fills = candidate_fills(observed, visible, model_fill)
    blend = fit_recovery_blend(observed, visible, validation, model_fill, held_out_fill)
    return apply_recovery_blend(blend, observed, visible, fills), blend


def fit_recovery_blend(
    observed: np.ndarray,
    visible: np.ndarray,
    validation: np.ndarray,
    model_fill: np.ndarray | None,
    held_out_fill: np.ndarray | None = None,
) -> Blend:
    """The blend's weights fitted on the held-out `validation` pixels with fills made without
    them (the model's: `held_out_fill` if the pixels were later trained on, else
    `model_fill`). `observed` holds the visible pixels only: occluded truth is never read."""
    known = visible & ~validation
    fitted_model = model_fill if held_out_fill is None else held_out_fill
    fills = candidate_fills(observed, known, fitted_model)
    return fit_blend(observed, fills, validation, blend_bins(observed, known))


def apply_recovery_blend(
    blend: Blend, observed: np.ndarray, visible: np.ndarray, fills: dict[str, np.ndarray]
) -> np.ndarray:
    """The visible pixels kept, the occluded ones the blend of `fills` (made from them all)."""
    filled = apply_blend(blend, fills, blend_bins(observed, visible))
    return np.where(visible[:, :, None], observed, filled)


def fill_errors(
    truth: np.ndarray, fills: dict[str, np.ndarray], visible: np.ndarray
) -> dict[str, float]:
    """Each fill's recovery error on the occluded pixels (0..255 MAE)."""
    weight = visible[:, :, None]
    return {name: recovery_error(truth, fill, weight) for name, fill in fills.items()}


def _simplex_grid(count: int) -> np.ndarray:
    """Every weight vector of `count` multiples of GRID_STEP summing to 1, (G, count)."""
    steps = round(1 / GRID_STEP)
    rows = [c for c in itertools.product(range(steps + 1), repeat=count) if sum(c) == steps]
    return np.array(rows, dtype=np.float64) / steps


def _best_weights(grid: np.ndarray, values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The grid row whose weighted fill has the least mean absolute error on the target."""
    errors = [np.abs(row @ values - target).mean() for row in grid]
    best: np.ndarray = grid[int(np.argmin(errors))]
    return best
