"""Animating a still image: infer the latents whose first frame is the image, then roll on.

The first decoded frame is G(s_1), s_1 = F(s_0, xi_1). s_0, xi_1 (and the content vector of
an action model) are fitted by gradient descent on the inference energy of that one frame,
|x - G(s_1)|^2 / (2 sigma^2) plus the N(0, I) priors, from several prior draws, the best
kept. The transition then rolls on from s_1 with fresh noise, like synthesis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.animate_config import AnimateConfig
from model.checkpoint import CHECKPOINT_FORMAT, Checkpoint, load_checkpoint
from model.device import resolve_device
from model.errors import DyngenError
from model.learner import use_bf16
from model.methods import file_format
from model.metrics import psnr
from model.outputs import SynthesisResult, describe, write_json
from model.residual import ResidualSampler
from model.synthesis import SynthesisRecorder, record_chunks
from model.video_frames import to_tensor_scale, to_uint8

FIT_STREAM = 4099  # restarts draw from a stream of their own, apart from the rollout's noise


@dataclass
class FirstFrameFit:
    """The fitted latents and how well their first frame matches the image."""

    start: torch.Tensor  # (1, d) s_0
    first_noise: torch.Tensor  # (1, k) xi_1
    content: torch.Tensor  # (1, c)
    energy: float
    mse: float  # [-1, 1] units


class Animator:
    """One image, one model: fits the first frame, then yields chunks of every video."""

    def __init__(
        self, ckpt: Checkpoint, config: AnimateConfig, device: torch.device | str = "cpu"
    ) -> None:
        self.ckpt, self.config = ckpt, config
        self.device = torch.device(device)
        self.model = ckpt.model.to(self.device)
        self.bf16 = use_bf16(ckpt.config.precision, self.device)
        self.rng = torch.Generator(device=self.device).manual_seed(config.seed)
        self.chunk = min(ckpt.config.chunk, config.frames)
        # the rest of the first chunk's noise is drawn now: the image is fitted in the batch
        # it will be decoded in (the generator normalises with its batch's statistics)
        self.rest_noise = self._noise(self.chunk - 1)

    def fit(self, image: np.ndarray) -> FirstFrameFit:
        """Latents whose first frame is `image` (S, S, 3) uint8: the best of the restarts."""
        size = self.ckpt.config.image_size
        if image.shape != (size, size, 3):
            raise DyngenError(f"the image is {image.shape}, the model makes {size}x{size} frames")
        target = torch.from_numpy(to_tensor_scale(image[None])[0]).to(self.device)
        draws = torch.Generator(device=self.device).manual_seed(self.config.seed + FIT_STREAM)
        fits = [self._fit_once(target, draws) for _ in range(self.config.restarts)]
        return min(fits, key=lambda f: f.energy)

    def _fit_once(self, target: torch.Tensor, draws: torch.Generator) -> FirstFrameFit:
        """Adam on s_0, xi_1 and the content from one draw of their priors."""
        cfg = self.ckpt.config
        shapes = {"start": cfg.state_dim, "first_noise": cfg.noise_dim, "content": cfg.content_dim}
        latents = {
            name: torch.randn((1, dim), generator=draws, device=self.device).requires_grad_(True)
            for name, dim in shapes.items()
        }
        optimizer = torch.optim.Adam(list(latents.values()), lr=self.config.learning_rate)
        # the step shrinks to a tenth over the run: large first steps leave the draw's basin
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, self.config.steps, eta_min=self.config.learning_rate / 10
        )
        self.model.requires_grad_(False)
        try:
            for _ in range(self.config.steps):
                optimizer.zero_grad(set_to_none=True)
                energy, _ = self._energy(latents, target)
                energy.backward()
                optimizer.step()
                schedule.step()
            with torch.no_grad():
                energy, squared = self._energy(latents, target)
        finally:
            self.model.requires_grad_(True)
        fitted = {name: z.detach() for name, z in latents.items()}
        mse = float(squared) / target.numel()
        return FirstFrameFit(**fitted, energy=float(energy), mse=mse)

    def _energy(
        self, latents: dict[str, torch.Tensor], target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The inference energy of the first frame (data term and priors), and its squared error."""
        _, frames = self._first_chunk(latents["start"], latents["first_noise"], latents["content"])
        squared = ((frames[0, 0] - target) ** 2).sum()
        prior = sum((z**2).sum() for z in latents.values()) / 2
        return squared / (2 * self.ckpt.config.sigma**2) + prior, squared

    def _first_chunk(
        self, start: torch.Tensor, first_noise: torch.Tensor, content: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """States (V, L, d) and frames (V, L, 3, S, S) of every video's first chunk: xi_1
        shared, the rest of the noise each video's own."""
        videos = self.config.num_videos
        noise = torch.cat([first_noise.expand(videos, 1, -1), self.rest_noise], dim=1)
        states = self.model.roll(start.expand(videos, -1), noise)
        return states, self._decode(states, content.expand(videos, -1))

    def _decode(self, states: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model.decode(states, content).float()

    def _noise(self, length: int) -> torch.Tensor:
        """Fresh transition noise for every video, (V, length, k)."""
        shape = (self.config.num_videos, length, self.ckpt.config.noise_dim)
        draw = torch.randn(shape, generator=self.rng, device=self.device)
        return draw * self.config.noise_scale

    @torch.no_grad()
    def chunks(self, fit: FirstFrameFit) -> Iterator[torch.Tensor]:
        """Frames (V, L, 3, S, S) in [-1, 1], chunk by chunk; the first frame is the fit's."""
        residual = self._residual()
        content = fit.content.expand(self.config.num_videos, -1)
        states, frames = self._first_chunk(fit.start, fit.first_noise, fit.content)
        state, done = states[:, -1], 0
        while True:
            if residual is not None:
                noise = residual.frames(frames.shape[1], tuple(frames.shape[2:]))
                if done == 0:
                    noise[:, 0] = 0  # the image's own frame stays as fitted
                frames = (frames + noise).clamp(-1, 1)
            yield frames
            done += frames.shape[1]
            if done >= self.config.frames:
                return
            states = self.model.roll(state, self._noise(min(self.chunk, self.config.frames - done)))
            state = states[:, -1]
            frames = self._decode(states, content)

    def _residual(self) -> ResidualSampler | None:
        if self.ckpt.residual is None:
            return None
        cfg = self.config
        return ResidualSampler(
            self.ckpt.residual, cfg.num_videos, cfg.seed, cfg.noise_scale, self.device
        )


def load_animatable(path: Path, device: torch.device | str) -> Checkpoint:
    """A dynamic generator checkpoint; an LDS file is refused (it has no generator to invert)."""
    if file_format(Path(path)) != CHECKPOINT_FORMAT:
        raise DyngenError(f"{path}: an LDS model can't animate an image; use a dynamic generator")
    return load_checkpoint(Path(path), device)


def animate_image(
    checkpoint: Path,
    image: np.ndarray,
    config: AnimateConfig,
    out_dir: Path,
    *,
    device: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
) -> SynthesisResult:
    """Videos that start at `image` (S, S, 3) uint8 and move like the model's clip."""
    target = resolve_device(device)
    animator = Animator(load_animatable(checkpoint, target), config, target)
    began = time.perf_counter()
    fit = animator.fit(image)  # a wrong-sized image fails here, before any output exists
    fit_seconds = time.perf_counter() - began
    recorder = SynthesisRecorder(Path(out_dir), config.synthesis())
    written: list[np.ndarray] = []

    def frames() -> Iterator[np.ndarray]:
        for chunk in animator.chunks(fit):
            video_frames = to_uint8(chunk.cpu().numpy())
            if not written:  # the fitted frame, as written
                written.append(video_frames[0, 0])
            yield video_frames

    files = record_chunks(recorder, frames(), config.frames, on_progress)
    first = written[0]
    metrics = _metrics(image, first, fit, recorder.motion, fit_seconds, began)
    files.append(describe("metrics", write_json(Path(out_dir) / "animation.json", metrics)))
    return SynthesisResult(files, metrics)


def first_frame_psnr(image: np.ndarray, frame: np.ndarray) -> float:
    """PSNR in dB of a uint8 frame against the uint8 image, both (S, S, 3)."""
    mse = float(np.mean((image.astype(np.float64) - frame) ** 2)) / 127.5**2
    return psnr(mse)


def _metrics(
    image: np.ndarray,
    first: np.ndarray,
    fit: FirstFrameFit,
    motion: list[float],
    fit_seconds: float,
    began: float,
) -> dict[str, object]:
    return {
        "first_frame_psnr": first_frame_psnr(image, first),
        "fit_energy": fit.energy,
        "fit_seconds": round(fit_seconds, 3),
        "seconds": round(time.perf_counter() - began, 3),
        "mean_frame_difference": float(np.mean(motion)) if motion else 0.0,
    }
