"""Alternating back-propagation through time: Langevin inference, then a parameter step."""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from model.averaging import WeightAverage
from model.config import TrainConfig
from model.errors import DyngenError, TrainingDiverged
from model.metrics import linear_interpolation_fill
from model.networks import DynamicGenerator
from model.warm_start import JOINT_STEPS, fit_generator, fit_path, pca_states


@dataclass(frozen=True)
class EpochStats:
    """What one epoch measured: mean energy per chunk, visible-pixel MSE in [-1, 1] units."""

    epoch: int
    loss: float
    mse: float
    seconds: float


@dataclass
class Latents:
    """The persistent Langevin chains: one set of latents per training video."""

    noise: torch.Tensor  # (N, T, k): xi_1..xi_T
    initial_state: torch.Tensor  # (N, d): s_0
    content: torch.Tensor  # (N, c): a, c may be 0


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether the generator runs under bf16 autocast: asked for, or `auto` where it's native."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def anneal_factor(epoch: int, epochs: int, fraction: float) -> float:
    """The learning rate's multiplier in `epoch` (from 0) of `epochs`: 1, then over the last
    `fraction` of the run a half cosine that would reach 0 one epoch after the last."""
    span = fraction * epochs
    into = epoch - (epochs - span)
    if span <= 0 or into < 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (into + 1) / (span + 1))))


@dataclass
class Release:
    """When a run with held-out pixels trains on them too, and the fill they are validated on."""

    visible: torch.Tensor  # (N, T, 1, H, W): every visible pixel, the held-out ones included
    epoch: int
    fill: torch.Tensor | None = None  # the posterior mean at `epoch`, once it has passed


class ABPTTLearner:
    """Owns the model, the optimiser, the persistent chains and the RNG of one training run."""

    def __init__(
        self,
        config: TrainConfig,
        clips: torch.Tensor,
        visible: torch.Tensor | None = None,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.clips = clips.to(self.device)  # (N, T, 3, H, W) in [-1, 1]
        # (N, T, 1, H, W), 1 = observed; None = complete data
        self.visible = None if visible is None else visible.to(self.device, torch.float32)
        self.fill = self._interpolated_fill()
        self.rng = torch.Generator(device=self.device).manual_seed(seed)
        self.bf16 = use_bf16(config.precision, self.device)
        self.model = DynamicGenerator(config).to(self.device)
        self.model.initialise(self.rng)
        self.optimizer = torch.optim.Adam(
            self._parameter_groups(), lr=config.learning_rate, betas=(config.beta1, 0.999)
        )
        self.latents = self._draw_latents(clips.shape[0])
        self.epoch = 0
        self.history: list[EpochStats] = []
        self.reconstruction = torch.zeros_like(self.clips)
        self.recon_sum = torch.zeros_like(self.clips)
        self.recon_count = 0
        self.release: Release | None = None
        self.average = WeightAverage(config.weight_average)

    # -- public -------------------------------------------------------------------------

    def fit(
        self,
        epochs: int | None = None,
        on_epoch: Callable[[EpochStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> bool:
        """Train until `epochs` (default: the config's) are done; False if stopped early."""
        target = self.config.epochs if epochs is None else epochs
        while self.epoch < target:
            if should_stop is not None and should_stop():
                return False
            stats = self.train_epoch()
            if on_epoch is not None:
                on_epoch(stats)
        return True

    def train_epoch(self) -> EpochStats:
        """One ABPTT epoch over every chunk of every training video."""
        began = time.perf_counter()
        carry = self.latents.initial_state
        energy_total, sq_total, seen_total = 0.0, 0.0, 0.0
        bounds = self._chunk_bounds()
        self._anneal_learning_rate()
        for begin, end in bounds:
            first = begin == 0
            # 1. inferential back-propagation: Langevin on the chunk's latents
            self._infer_chunk(begin, end, carry, first)
            # 2. learning back-propagation: one Adam step given the inferred latents
            energy, sq, frames, states = self._learn_chunk(begin, end, carry, first)
            carry = states[:, -1].detach()  # truncated BPTT: carry the state, not the graph
            self.reconstruction[:, begin:end] = frames.detach()
            seen = self._visible_values(begin, end)
            energy_total, sq_total, seen_total = (
                energy_total + energy,
                sq_total + sq,
                seen_total + seen,
            )
        self.epoch += 1
        self.average.update(self.model, self.epoch)
        self._accumulate_reconstruction()
        if self.release is not None and self.epoch == self.release.epoch:
            self._release_held_out(self.release)
        stats = EpochStats(
            self.epoch,
            energy_total / len(bounds),
            sq_total / max(seen_total, 1.0),
            time.perf_counter() - began,
        )
        if not math.isfinite(stats.loss):
            raise TrainingDiverged(f"the loss became {stats.loss} at epoch {self.epoch}")
        self.history.append(stats)
        return stats

    def warm_start(self) -> None:
        """Begin on the clip's PCA path (`warm_start: pca`): fit the transition and the chains
        to the scaled coefficients, the generator to decode them, then take parameter steps
        on the energy with the chains held, before any Langevin step."""
        if self.visible is not None:
            raise DyngenError("the PCA warm start needs complete videos; this learner has a mask")
        targets = pca_states(self.clips, self.config.state_dim)
        start, noise = fit_path(self.model, targets, self.config.noise_dim)
        with torch.no_grad():
            self.latents.initial_state.copy_(start)
            self.latents.noise.copy_(noise)
            states = self.model.roll(start, noise)
        # the training optimizer and the energy's own scale, so its moments carry on: a fresh
        # Adam's first, sign-sized steps would undo the fit
        fit_generator(
            lambda begin, end: self._path_energy(states, begin, end),
            self._chunk_bounds(),
            self._parameter_step,
        )
        # the path was fitted with an optimizer of its own: these steps give the transition
        # moments in the training optimizer before Langevin moves the chains
        for _ in range(JOINT_STEPS):
            self._parameter_epoch()

    def _path_energy(self, states: torch.Tensor, begin: int, end: int) -> torch.Tensor:
        """The energy of one chunk decoded from fixed states (N, T, d)."""
        frames = self._decode(states[:, begin:end], self.latents.content)
        return self._frames_energy(begin, end, frames)[0]

    def _parameter_epoch(self) -> None:
        """One parameter step per chunk on the energy, the chains held (no Langevin)."""
        carry = self.latents.initial_state
        for begin, end in self._chunk_bounds():
            energy, _, _, states = self._energy(
                begin, end, carry, self._chunk_latents(begin, end), begin == 0
            )
            self._parameter_step(energy)
            carry = states[:, -1].detach()

    def schedule_release(self, visible: torch.Tensor, epoch: int) -> None:
        """After `epoch`, train on `visible` (N, T, 1, H, W): the held-out pixels too. The
        posterior mean until then is kept as the held-out pixels' fill for the blend."""
        self.release = Release(visible.to(self.device, torch.float32), epoch)

    def held_out_fill(self) -> torch.Tensor | None:
        """The posterior mean from before the held-out pixels were released, if they were."""
        return None if self.release is None else self.release.fill

    def _release_held_out(self, release: Release) -> None:
        """Keep the fill the held-out pixels are validated on, then train on them too, with
        the posterior mean begun anew (the held-out truth must not reach that fill)."""
        release.fill = self.averaged_reconstruction().clone()
        self.visible = release.visible
        self.recon_sum.zero_()
        self.recon_count = 0

    def trained_model(self) -> DynamicGenerator:
        """The model a checkpoint holds: the weights averaged over the last epochs where the
        config asks for it, else the live ones."""
        return self.average.averaged(self.model)

    def averaged_reconstruction(self) -> torch.Tensor:
        """Posterior mean of the reconstructions of the last epochs, (N, T, 3, H, W)."""
        if self.recon_count == 0:
            return self.reconstruction.clone()
        return self.recon_sum / self.recon_count

    def _parameter_groups(self) -> list[dict[str, object]]:
        """One group of all parameters, or, with a transition rate scale, transition and
        generator apart (one group keeps resume files of earlier versions loadable)."""
        rates = self._group_rates()
        if len(rates) == 1:
            return [{"params": list(self.model.parameters()), "lr": rates[0]}]
        return [
            {"params": list(self.model.transition.parameters()), "lr": rates[0]},
            {"params": list(self.model.generator.parameters()), "lr": rates[1]},
        ]

    def _group_rates(self) -> list[float]:
        """The configured rate of each parameter group, in _parameter_groups' order."""
        rate, scale = self.config.learning_rate, self.config.transition_lr_scale
        return [rate] if scale == 1.0 else [rate * scale, rate]

    def _anneal_learning_rate(self) -> None:
        """Set each group's rate for this epoch: its configured rate times the anneal factor."""
        factor = anneal_factor(self.epoch, self.config.epochs, self.config.lr_anneal)
        for group, rate in zip(self.optimizer.param_groups, self._group_rates(), strict=True):
            group["lr"] = rate * factor

    # -- the two steps --------------------------------------------------------------------

    def _infer_chunk(self, begin: int, end: int, carry: torch.Tensor, first: bool) -> None:
        """Langevin dynamics z <- z - delta^2/2 (z + dE/dz) + delta N(0, I), persistent."""
        cfg = self.config
        delta = cfg.langevin_delta
        names = ["noise", "initial_state", "content"] if first else ["noise"]
        self.model.requires_grad_(False)  # only latent gradients are needed here
        try:
            for _ in range(cfg.langevin_steps):
                latents = self._chunk_latents(begin, end)
                moving = [latents[name].requires_grad_(True) for name in names]
                energy, *_ = self._energy(begin, end, carry, latents, first)
                # content of size 0 is not in the graph: allow_unused gives None for it
                grads = torch.autograd.grad(energy, moving, allow_unused=True)
                with torch.no_grad():
                    for name, z, grad in zip(names, moving, grads, strict=True):
                        drift = z if grad is None else z + grad
                        step = z - 0.5 * delta**2 * drift + delta * self._randn(z.shape)
                        self._store_latent(name, begin, end, step)
        finally:
            self.model.requires_grad_(True)

    def _learn_chunk(
        self, begin: int, end: int, carry: torch.Tensor, first: bool
    ) -> tuple[float, float, torch.Tensor, torch.Tensor]:
        """`learn_steps` optimiser steps on alpha, beta given the latents; the energy, squared
        error, frames and states of the first (the ones the Langevin chains were inferred for)."""
        latents = self._chunk_latents(begin, end)
        energy, squared, frames, states = self._energy(begin, end, carry, latents, first)
        self._parameter_step(energy)
        for _ in range(self.config.learn_steps - 1):
            self._parameter_step(self._energy(begin, end, carry, latents, first)[0])
        return float(energy.detach()), float(squared.detach()), frames, states

    def _parameter_step(self, energy: torch.Tensor) -> None:
        """One Adam step on alpha, beta down the energy's gradient."""
        self.optimizer.zero_grad(set_to_none=True)
        energy.backward()
        self.optimizer.step()

    def _energy(
        self,
        begin: int,
        end: int,
        carry: torch.Tensor,
        latents: dict[str, torch.Tensor],
        first: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """E = sum over visible pixels of (x - G)^2 / (2 sigma^2), scaled as the config says;
        also the plain visible sum of squares, the frames and the states."""
        start = latents["initial_state"] if first else carry
        states = self.model.roll(start, latents["noise"])  # (N, L, d)
        frames = self._decode(states, latents["content"])
        energy, squared = self._frames_energy(begin, end, frames)
        return energy, squared, frames, states

    def _frames_energy(
        self, begin: int, end: int, frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The energy of a chunk's decoded frames, and their plain visible sum of squares."""
        residual = (self.clips[:, begin:end] - frames) ** 2
        if self.visible is not None:
            residual = residual * self.visible[:, begin:end]
        squared = residual.sum()
        fitted = squared + self._warm_fill_term(begin, end, frames)
        energy = fitted / (2 * self.config.sigma**2) / self._energy_divisor(begin, end)
        return energy, squared

    def _decode(self, states: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """Frames (N, L, 3, H, W) in fp32 of states (N, L, d)."""
        # the generator may run in bf16; the energy and everything after it stay fp32
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            frames = self.model.decode(states, content)
        return frames.float()

    def _warm_fill_term(self, begin: int, end: int, frames: torch.Tensor) -> torch.Tensor | float:
        """During `fill_warmup`, squared error of occluded pixels to the interpolated fill,
        weighted by a factor falling linearly from 1 to 0; afterwards 0."""
        warmup = self.config.fill_warmup_epochs
        if self.fill is None or self.visible is None or self.epoch >= warmup:
            return 0.0
        weight = 1.0 - self.epoch / warmup
        hidden = 1.0 - self.visible[:, begin:end]
        return weight * (((self.fill[:, begin:end] - frames) ** 2) * hidden).sum()

    def _interpolated_fill(self) -> torch.Tensor | None:
        """The clips with occluded pixels linearly interpolated in time (fill_warmup's target)."""
        if self.visible is None or self.config.fill_warmup_epochs == 0:
            return None
        clips, visible = self.clips.cpu().numpy(), self.visible.cpu().numpy()
        filled = [linear_interpolation_fill(c, v) for c, v in zip(clips, visible, strict=True)]
        return torch.from_numpy(np.stack(filled)).to(self.device, self.clips.dtype)

    def _energy_divisor(self, begin: int, end: int) -> float:
        """per_frame: frames in the chunk batch; mean: visible values; sum: 1."""
        scaling = self.config.energy_scaling
        if scaling == "sum":
            return 1.0
        if scaling == "per_frame":
            return float(self.clips.shape[0] * (end - begin))
        return max(self._visible_values(begin, end), 1.0)

    # -- helpers --------------------------------------------------------------------------

    def _chunk_bounds(self) -> list[tuple[int, int]]:
        """(begin, end) of this epoch's chunks: every L frames, shifted by a random offset."""
        cfg = self.config
        edges = list(range(0, cfg.frames, cfg.chunk))
        if cfg.chunk_offsets == "random" and cfg.num_chunks > 1:
            # a shift moves the truncation points, so every step's gradient sees the frames
            # after it in some epochs (fixed edges never pass it across frame L)
            shift = int(torch.randint(cfg.chunk, (1,), generator=self.rng, device=self.device))
            edges = [0, *range(shift or cfg.chunk, cfg.frames, cfg.chunk)]
        return list(itertools.pairwise([*edges, cfg.frames]))

    def _visible_values(self, begin: int, end: int) -> float:
        """Number of observed scalar values in the chunk."""
        chunk = self.clips[:, begin:end]
        if self.visible is None:
            return float(chunk.numel())
        return float(self.visible[:, begin:end].sum()) * chunk.shape[2]

    def _chunk_latents(self, begin: int, end: int) -> dict[str, torch.Tensor]:
        """Detached copies of the latents one chunk uses."""
        return {
            "noise": self.latents.noise[:, begin:end].detach().clone(),
            "initial_state": self.latents.initial_state.detach().clone(),
            "content": self.latents.content.detach().clone(),
        }

    def _store_latent(self, name: str, begin: int, end: int, value: torch.Tensor) -> None:
        """Write an updated chain back in place."""
        if name == "noise":
            self.latents.noise[:, begin:end] = value
        else:
            getattr(self.latents, name).copy_(value)

    def _randn(self, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """Standard normal draws from the learner's own generator."""
        return torch.randn(shape, generator=self.rng, device=self.device)

    def _draw_latents(self, videos: int) -> Latents:
        """Start every chain from the prior N(0, I)."""
        cfg = self.config
        return Latents(
            noise=self._randn((videos, cfg.frames, cfg.noise_dim)),
            initial_state=self._randn((videos, cfg.state_dim)),
            content=self._randn((videos, cfg.content_dim)),
        )

    def _accumulate_reconstruction(self) -> None:
        """Add this epoch's reconstruction to the posterior average once in the final window."""
        if self.epoch > self.config.epochs - self.config.averaged_epochs:
            self.recon_sum += self.reconstruction
            self.recon_count += 1

    # -- resume state ---------------------------------------------------------------------

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Everything needed to continue exactly: tensors plus JSON metadata (no pickle)."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors |= {f"chain.{k}": getattr(self.latents, k) for k in vars(self.latents)}
        optim = self.optimizer.state_dict()
        for index, slots in optim["state"].items():
            tensors |= {f"optim.{index}.{k}": torch.as_tensor(v) for k, v in slots.items()}
        tensors |= {
            "rng": self.rng.get_state(),
            "recon_sum": self.recon_sum,
            "reconstruction": self.reconstruction,
        }
        tensors |= self.average.state()
        if (fill := self.held_out_fill()) is not None:
            tensors["held_out_fill"] = fill
        meta = {
            "epoch": str(self.epoch),
            "recon_count": str(self.recon_count),
            "param_groups": json.dumps(optim["param_groups"]),
            "history": json.dumps([vars(s) for s in self.history]),
        }
        return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        """Restore what `state_tensors` saved."""
        model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model_state)
        for name in vars(self.latents):
            getattr(self.latents, name).copy_(tensors[f"chain.{name}"])
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, slot = key.split(".", 2)
                slots.setdefault(int(index), {})[slot] = value
        groups = json.loads(meta["param_groups"])
        self.optimizer.load_state_dict({"state": slots, "param_groups": groups})
        self.rng.set_state(tensors["rng"])
        self.recon_sum.copy_(tensors["recon_sum"])
        self.reconstruction.copy_(tensors["reconstruction"])
        self.average.load(tensors, self.device)
        self.epoch = int(meta["epoch"])
        self.recon_count = int(meta["recon_count"])
        self.history = [EpochStats(**s) for s in json.loads(meta["history"])]
        if self.release is not None and "held_out_fill" in tensors:  # saved after the release
            self.release.fill = tensors["held_out_fill"].to(self.device)
            self.visible = self.release.visible
