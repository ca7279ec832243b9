"""Post-training calibration of the dynamic generator's syntheses (issue 13), fitted in seconds
after training, saved in the checkpoint and applied by the sampler (model/sampler.py).

- The state anchor (`anchor: chains`): each synthesized step pulls the state a fraction
  `pull` of the way back toward the mean of the states the inferred chains visit. The
  fraction is the one, of a few tried, whose long rollouts (4x the training length) keep
  their last quarter's states closest, in Frechet distance, to the chains' states: a long
  synthesis stays where the training chunks lived instead of wandering off (drift).
- The motion gain (`motion_calibration: clip`): a scale on every drawn noise (the
  transition's and the residual process's innovations), found by bisection so that
  syntheses of the training length move as much as the clip (motion ratio 1).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.auto_work import GAIN_STEPS, GAIN_VIDEOS
from model.networks import DynamicGenerator
from model.quality import mean_motion

CALIBRATION_KEYS = ("mean", "pull", "gain")
# the pulls tried by the anchor fit: none, then a geometric ladder up to a fifth per step
PULLS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
ANCHOR_VIDEOS = 32  # rollouts per pull tried (states only: no frame is decoded)
ANCHOR_MULTIPLE = 4  # rollouts of 4x the training length, the quality report's syntheses
# the gain is searched in this range (log scale): flashing_light's plain model needs 0.25,
# fire's residual model 1.2 (QUALITY.md, evening 2026-12-02)
GAIN_RANGE = (1 / 16, 4.0)
CALIBRATION_STREAM = 6007  # the fits draw their noise from a stream of their own


@dataclass
class Calibration:
    """How the sampler adjusts a trained model's syntheses: state anchor and noise gain."""

    mean: torch.Tensor  # (d,) mean state of the inferred chains
    pull: float = 0.0  # fraction of (s - mean) removed after each transition step
    gain: float = 1.0  # scale on every drawn noise

    def tensors(self) -> dict[str, torch.Tensor]:
        """The values by name, as the checkpoint stores them (prefixed `calibration.`)."""
        scalars = {"pull": self.pull, "gain": self.gain}
        return {"mean": self.mean} | {
            k: torch.tensor([v], dtype=torch.float64) for k, v in scalars.items()
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Calibration:
        """The calibration stored under `calibration.*` (KeyError when a value is missing)."""
        values = {k: tensors[f"calibration.{k}"] for k in CALIBRATION_KEYS}
        pull, gain = (float(values[k].reshape(-1)[0]) for k in ("pull", "gain"))
        return cls(values["mean"], pull, gain)

    def roll(
        self, model: DynamicGenerator, state: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """model.roll with the anchor's pull after every step: (N, d), (N, L, k) -> (N, L, d)."""
        return anchored_roll(model, state, noise, self.mean.to(state.device), self.pull)


def anchored_roll(
    model: DynamicGenerator,
    state: torch.Tensor,
    noise: torch.Tensor,
    mean: torch.Tensor,
    pull: float,
) -> torch.Tensor:
    """States s_1..s_L of the transition, each pulled `pull` of the way toward `mean`."""
    return pulled_roll(model.transition, state, noise, mean, pull)


def pulled_roll(
    transition: nn.Module,
    state: torch.Tensor,
    noise: torch.Tensor,
    mean: torch.Tensor | None,
    pull: float,
) -> torch.Tensor:
    """States s_1..s_L of `transition` from s_0 (N, d) and noise (N, L, k), each pulled `pull`
    of the way toward `mean` (None with a pull of 0): the sampler's roll, for any transition."""
    states = []
    for t in range(noise.shape[1]):
        state = transition(state, noise[:, t])
        if pull > 0 and mean is not None:
            state = state - pull * (state - mean)
        states.append(state)
    return torch.stack(states, dim=1)


def chain_states(
    model: DynamicGenerator, initial_state: torch.Tensor, chains: torch.Tensor
) -> torch.Tensor:
    """The states the inferred chains visit, (N * T, d): the training clip's path."""
    with torch.no_grad():
        states = model.roll(initial_state, chains.to(initial_state.device))
    return states.reshape(-1, states.shape[-1])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to point sets a (M, d) and b (K, d)."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) from the eigenvalues of A B (real, non-negative for covariances)
    cross = np.sqrt(np.clip(np.linalg.eigvals(cov_a @ cov_b).real, 0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def fit_pull(
    model: DynamicGenerator,
    initial_state: torch.Tensor,
    chains: torch.Tensor,
    visited: torch.Tensor,
    gain: float = 1.0,
    seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """The pull (of PULLS) whose long rollouts end closest to the chains' states `visited`
    (chain_states), and the distance of each pull tried."""
    mean, length = visited.mean(0), ANCHOR_MULTIPLE * chains.shape[1]
    target = visited.double().cpu().numpy()  # converted once, scored against every pull
    rng = torch.Generator(device=initial_state.device).manual_seed(seed + CALIBRATION_STREAM)
    shape = (ANCHOR_VIDEOS, length, chains.shape[-1])
    noise = torch.randn(shape, generator=rng, device=initial_state.device) * gain
    starts = initial_state[torch.arange(ANCHOR_VIDEOS) % initial_state.shape[0]]
    distances = {}
    with torch.no_grad():
        for pull in PULLS:
            states = anchored_roll(model, starts, noise, mean, pull)
            last = states[:, -(length // 4) :].reshape(-1, states.shape[-1])
            distances[pull] = frechet_distance(last.double().cpu().numpy(), target)
    # ties keep the smaller pull: the model's own dynamics where the anchor adds nothing
    best = min(PULLS, key=lambda p: (round(distances[p], 9), p))
    return best, distances


def fit_gain(ckpt: Any, clips: np.ndarray, mean: torch.Tensor, pull: float, seed: int = 0) -> float:
    """The noise gain whose syntheses of the training length move as much as the clips,
    uint8 (N, T, S, S, 3): log-scale bisection in GAIN_RANGE (its ends when not bracketed)."""
    target = mean_motion(clips)
    if target <= 0:
        return 1.0  # a still clip: no motion to match

    def moves(gain: float) -> float:
        trial = dataclasses.replace(ckpt, calibration=Calibration(mean, pull, gain))
        return mean_motion(_syntheses(trial, clips.shape[1], seed)) / target

    low, high = np.log(GAIN_RANGE[0]), np.log(GAIN_RANGE[1])
    if moves(float(np.exp(high))) <= 1:
        return GAIN_RANGE[1]
    if moves(float(np.exp(low))) >= 1:
        return GAIN_RANGE[0]
    for _ in range(GAIN_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if moves(float(np.exp(middle))) < 1 else (low, middle)
    return float(np.exp((low + high) / 2))


def _syntheses(ckpt: Any, frames: int, seed: int) -> np.ndarray:
    """uint8 (GAIN_VIDEOS, frames, S, S, 3) syntheses of the checkpoint, from its sampler."""
    from model.config import SynthesisConfig
    from model.sampler import sample_chunks
    from model.video_frames import to_uint8

    config = SynthesisConfig(num_videos=GAIN_VIDEOS, frames=frames)
    chunks = sample_chunks(
        ckpt, config, seed=seed + CALIBRATION_STREAM, device=ckpt.initial_state.device
    )
    return np.concatenate([to_uint8(c.cpu().numpy()) for c in chunks], axis=1)


def fit_calibration(
    ckpt: Any, chains: torch.Tensor, clips: np.ndarray, anchor: bool, motion: bool, seed: int = 0
) -> tuple[Calibration, dict[str, object]]:
    """The calibration a config asks for (anchor, motion gain or both) and what the fit found:
    the pull at gain 1, then the gain with that pull, then the pull again at that gain."""
    began = time.perf_counter()
    visited = chain_states(ckpt.model, ckpt.initial_state, chains)
    mean = visited.mean(0)
    pull, gain = 0.0, 1.0
    distances: dict[float, float] = {}
    if anchor:
        pull, distances = fit_pull(ckpt.model, ckpt.initial_state, chains, visited, gain, seed)
    if motion:
        gain = fit_gain(ckpt, clips, mean, pull, seed)
    if anchor and motion:
        pull, distances = fit_pull(ckpt.model, ckpt.initial_state, chains, visited, gain, seed)
    facts: dict[str, object] = {
        "pull": pull,
        "gain": round(gain, 4),
        "frechet_by_pull": {str(p): round(d, 4) for p, d in distances.items()},
        "seconds": round(time.perf_counter() - began, 3),
    }
    return Calibration(mean, pull, gain), facts


def add_calibration(
    checkpoint: Path, videos: list[Path], out: Path, anchor: bool, motion: bool, seed: int = 0
) -> dict[str, object]:
    """Fit the calibration to a trained model and its clips and write the model with it to
    `out` (the same weights and residual process): `dyngen add-residual`'s counterpart."""
    from model.checkpoint import load_checkpoint
    from model.errors import DyngenError
    from model.evaluation import stored_chains
    from model.video_frames import read_clips

    ckpt = load_checkpoint(checkpoint)
    chains = stored_chains(checkpoint, ckpt)
    if chains is None:
        raise DyngenError(f"{checkpoint}: no inferred chains to anchor the state to")
    clips = read_clips(videos, ckpt.config)
    ckpt.calibration, facts = fit_calibration(ckpt, chains, clips, anchor, motion, seed)
    ckpt.chains = chains
    update = {
        "anchor": "chains" if anchor else "none",
        "motion_calibration": "clip" if motion else "none",
    }
    ckpt.config = ckpt.config.model_copy(update=update)
    ckpt.save(out)
    return facts


def calibrate_trained(
    ckpt: Any, clips: np.ndarray, masked: bool, seed: int = 0
) -> dict[str, object] | None:
    """Fit, in place, the calibration the checkpoint's config asks for; what the fit found
    (metrics.json's `calibration`), or None when the config asks for none."""
    anchor = ckpt.config.anchor != "none"
    motion = ckpt.config.motion_calibration != "none"
    if not (anchor or motion):
        return None
    if masked or ckpt.chains is None:
        return {"why": "masked run: the clip's motion and the chains' states are partly unseen"}
    ckpt.calibration, facts = fit_calibration(ckpt, ckpt.chains, clips, anchor, motion, seed)
    return facts


def calibrated(models: dict[str, Any], clips: np.ndarray | None, seed: int = 0) -> dict[str, Any]:
    """`method: auto`'s calibrated candidates of the dynamic generators in `models` (one set of
    weights), by name: each with the state anchor (`_anchored`, where its fit pulls), with the
    motion gain (`_gain`, given the clips) and with both; none when there are no chains or the
    models are calibrated already."""
    first = next(iter(models.values()))
    if first.chains is None or first.calibration is not None:
        return {}
    visited = chain_states(first.model, first.initial_state, first.chains)
    mean = visited.mean(0)
    pull, _ = fit_pull(first.model, first.initial_state, first.chains, visited, seed=seed)
    pulls = {"": 0.0} | ({"_anchored": pull} if pull > 0 else {})
    variants = {}
    for name, model in models.items():
        for suffix, p in pulls.items():
            if p > 0:
                variants[f"{name}{suffix}"] = _with(model, Calibration(mean, p), gain=False)
            if clips is not None:
                gain = fit_gain(model, clips, mean, p, seed)
                variants[f"{name}{suffix}_gain"] = _with(model, Calibration(mean, p, gain), True)
    return variants


def _with(model: Any, calibration: Calibration, gain: bool) -> Any:
    """The same model with the calibration, its config saying which parts it has."""
    update = {
        "anchor": "chains" if calibration.pull > 0 else "none",
        "motion_calibration": "clip" if gain else "none",
    }
    config = model.config.model_copy(update=update)
    return dataclasses.replace(model, calibration=calibration, config=config)
