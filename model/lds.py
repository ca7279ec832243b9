"""Linear dynamical system baseline (Doretto et al. 2003, "Dynamic textures"): fit, sample, files.

y_t = C x_t + mu           frames: PCA basis C (D, n), mean frame mu (D,)
x_{t+1} = A x_t + B w_t    states: least-squares A (n, n), w_t ~ N(0, I), B B^T = Q
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file

from model.config import SynthesisConfig, fit_frames
from model.errors import CheckpointError, DyngenError
from model.files import atomic_path
from model.metrics import psnr, visible_mse
from model.outputs import write_training_outputs
from model.quality import quality_warnings, reconstruction_motion_ratio
from model.report import training_report
from model.stored import checked_metadata
from model.training import EpochReport
from model.video_frames import to_tensor_scale

if TYPE_CHECKING:
    from model.config import TrainConfig
    from model.outputs import TrainResult
    from model.training import TrainingRun

LDS_FORMAT = "dyngen-lds"
LDS_VERSION = "1"
MAX_RADIUS = 0.999  # a fitted A with larger eigenvalues is shrunk so long syntheses stay bounded
SAMPLE_CHUNK = 30  # frames per chunk handed to the video writers
FILE_FORMAT = LDS_FORMAT  # as a registered method (model/methods.py)


class LDSConfig(BaseModel):
    """How the clip is read and how many components the LDS keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: Literal[16, 32, 64, 128, 256] = 32
    frames: int = Field(60, ge=3, le=10_000, description="frames taken from each video")
    start: int = Field(0, ge=0, description="first frame taken")
    every: int = Field(1, ge=1, le=100, description="keep every n-th frame")
    resize: Literal["crop", "stretch"] = "crop"
    components: int = Field(
        30, ge=1, le=1024, description="PCA components n, at most half the transitions"
    )

    def fit_to_length(self, available: int) -> LDSConfig:
        """This config for clips of `available` frames: an unset `frames` shrinks to fit."""
        return fit_frames(self, available, minimum=3)


@dataclass
class LDSModel:
    """A fitted linear dynamical system over the PCA coefficients of the frames."""

    config: LDSConfig
    mean: np.ndarray  # (D,) mean frame, 0..255 scale, D = S * S * 3
    basis: np.ndarray  # (D, n) orthonormal PCA basis C
    transition: np.ndarray  # (n, n) A
    noise: np.ndarray  # (n, n) B with B B^T = Q, the residual covariance
    states: np.ndarray  # (N, T, n) coefficients of the training frames
    info: dict[str, str] = field(default_factory=dict)  # saved in the file's metadata

    @property
    def components(self) -> int:
        """n, the state size actually kept."""
        return int(self.basis.shape[1])

    def frame_chunks(
        self, config: SynthesisConfig, seed: int, device: torch.device
    ) -> Iterator[np.ndarray]:
        """uint8 syntheses (V, L, S, S, 3), chunk after chunk (sampled whole: it is small)."""
        if config.fresh_state or config.content not in (0, None):
            raise DyngenError("an LDS model has one learned start state and no content vectors")
        videos = sample_lds(
            self, config.num_videos, config.frames, seed=seed, noise_scale=config.noise_scale
        )  # (V, F, S, S, 3), on the CPU whatever the device
        for begin in range(0, config.frames, SAMPLE_CHUNK):
            yield videos[:, begin : begin + SAMPLE_CHUNK]

    def save(self, path: Path) -> None:
        """Write the LDS and its info to one .safetensors file."""
        save_lds(path, self, self.info)

    def training_reconstruction(self, source: Path) -> np.ndarray | None:
        """The training clips through the PCA basis: uint8 (N, T, S, S, 3)."""
        return reconstruct_lds(self)


def usable_components(requested: int, transitions: int, frames: int) -> int:
    """n capped so that the AR fit has twice as many transitions as unknowns per row.

    With n close to the number of transitions least squares fits them exactly: zero residual,
    no noise, and the "synthesis" replays the clip.
    """
    return max(1, min(requested, transitions // 2, frames - 1))


def fit_lds(clips: np.ndarray, config: LDSConfig) -> LDSModel:
    """Fit the LDS to uint8 (N, T, S, S, 3) clips (several clips share C, A and Q)."""
    if clips.ndim == 4:
        clips = clips[None]
    videos, length = clips.shape[:2]
    if length < 3:
        raise DyngenError(f"an LDS needs at least 3 frames, got {length}")
    n = usable_components(config.components, videos * (length - 1), videos * length)
    frames = clips.reshape(videos, length, -1).astype(np.float64)  # (N, T, D)
    mean, basis, transition, noise, states = fit_linear_dynamics(frames, n)
    return LDSModel(config, mean, basis, transition, noise, states)


def fit_linear_dynamics(
    frames: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """mean, basis C, A, B and states of an n-component LDS fitted to float (N, T, D) series."""
    videos, length = frames.shape[:2]
    flat = frames.reshape(videos * length, -1)  # (N T, D)
    # 1. PCA by SVD of the centred frames: y_t - mu = C x_t
    mean = flat.mean(axis=0)
    _, _, rows = np.linalg.svd(flat - mean, full_matrices=False)
    basis = rows[:n].T  # (D, n)
    states = ((flat - mean) @ basis).reshape(videos, length, -1)  # (N, T, n)
    n = states.shape[2]  # fewer when the series has fewer frames than n
    # 2. A by least squares over the transitions inside each clip: x_{t+1} ~ A x_t
    before = states[:, :-1].reshape(-1, n)  # (M, n)
    after = states[:, 1:].reshape(-1, n)
    solution, *_ = np.linalg.lstsq(before, after, rcond=None)  # after ~ before @ A^T
    transition = _stable(solution.T)
    # 3. Q from the residuals, B its square root (eigen, not Cholesky: Q may be singular)
    residual = after - before @ transition.T  # (M, n)
    noise = _matrix_sqrt(residual.T @ residual / max(len(residual) - 1, 1))
    return mean, basis, transition, noise, states


def _stable(transition: np.ndarray) -> np.ndarray:
    """A scaled down when its spectral radius exceeds MAX_RADIUS (an unstable fit explodes)."""
    radius = float(np.abs(np.linalg.eigvals(transition)).max())
    return transition * (MAX_RADIUS / radius) if radius > MAX_RADIUS else transition


def _matrix_sqrt(covariance: np.ndarray) -> np.ndarray:
    """B with B B^T = covariance, for a symmetric positive semi-definite (n, n) matrix."""
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    root: np.ndarray = vectors * np.sqrt(np.clip(values, 0, None))[None]
    return root


def sample_lds(
    model: LDSModel,
    num_videos: int,
    frames: int,
    *,
    seed: int = 0,
    start: Literal["first", "last"] = "first",
    noise_scale: float = 1.0,
) -> np.ndarray:
    """Roll the LDS from the first (or last) training state: uint8 (V, F, S, S, 3)."""
    if num_videos < 1 or frames < 1:
        raise ValueError(f"need at least one video of one frame, got {num_videos} x {frames}")
    rng = np.random.default_rng(seed)
    n, size = model.components, model.config.image_size
    state = np.repeat(model.states[0, 0 if start == "first" else -1][None], num_videos, 0)
    states = np.empty((num_videos, frames, n))  # (V, F, n)
    for t in range(frames):
        states[:, t] = state
        drive = rng.standard_normal((num_videos, n)) * noise_scale
        state = state @ model.transition.T + drive @ model.noise.T
    pixels = states @ model.basis.T + model.mean  # (V, F, D)
    out = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    videos: np.ndarray = out.reshape(num_videos, frames, size, size, 3)
    return videos


def reconstruct_lds(model: LDSModel) -> np.ndarray:
    """The training clips through the PCA basis: uint8 (N, T, S, S, 3)."""
    pixels = model.states @ model.basis.T + model.mean  # (N, T, D)
    size = model.config.image_size
    out = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    clips: np.ndarray = out.reshape(*model.states.shape[:2], size, size, 3)
    return clips


def save_lds(path: Path, model: LDSModel, info: dict[str, str] | None = None) -> None:
    """One .safetensors file; the config and format version in its metadata."""
    tensors = {
        "mean": model.mean,
        "basis": model.basis,
        "transition": model.transition,
        "noise": model.noise,
        "states": model.states,
    }
    metadata = {
        "format": LDS_FORMAT,
        "format_version": LDS_VERSION,
        "config": model.config.model_dump_json(),
        **(info or {}),
    }
    with atomic_path(Path(path)) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata)


def load_lds(path: Path) -> LDSModel:
    """Read an LDS file without unpickling; CheckpointError for anything that isn't one."""
    tensors, metadata = _read(Path(path))
    try:
        config = LDSConfig.model_validate(json.loads(metadata["config"]))
        model = LDSModel(
            config,
            tensors["mean"],
            tensors["basis"],
            tensors["transition"],
            tensors["noise"],
            tensors["states"],
        )
    except (KeyError, json.JSONDecodeError, ValidationError) as err:
        raise CheckpointError(f"{path}: missing or invalid LDS content ({err})") from None
    _check_shapes(path, model)
    model.info = {
        k: v for k, v in metadata.items() if k not in ("format", "format_version", "config")
    }
    return model


def load_file(path: Path, device: torch.device) -> LDSModel:
    """An LDS model file (it samples on the CPU whatever the device)."""
    return load_lds(path)


def lds_config(config: TrainConfig) -> LDSConfig:
    """The LDS settings of a training config: the same frames, its component count."""
    fields = {k: getattr(config, k) for k in ("image_size", "frames", "start", "every", "resize")}
    return LDSConfig(**fields, components=config.lds_components)


def train(run: TrainingRun) -> TrainResult:
    """Fit the LDS in seconds, then the same outputs as a training run."""
    config, data = run.config, run.data
    began = time.perf_counter()
    lds = fit_lds(data.clips, lds_config(config))
    lds.info = {"seed": str(run.seed)}
    seconds = time.perf_counter() - began
    recon = reconstruct_lds(lds)  # (N, T, S, S, 3) uint8
    truth = np.stack([to_tensor_scale(c) for c in data.clips])
    mse = visible_mse(truth, np.stack([to_tensor_scale(r) for r in recon]))
    report = training_report(lds, run.videos[0], run.seed, "cpu")  # an LDS samples on the CPU
    recon_motion = reconstruction_motion_ratio(recon, data.clips)
    notes = quality_warnings(report, recon_motion)
    metrics: dict[str, object] = {
        "method": "lds",
        "components": lds.components,
        "visible_mse": mse,
        "psnr": psnr(mse),
        "reconstruction_motion_ratio": recon_motion,
        "seconds": round(seconds, 4),
        "quality": report,
        "warnings": notes,
    }
    if run.on_epoch is not None:
        epochs = config.epochs
        run.on_epoch(EpochReport(epochs, epochs, mse, mse, psnr(mse), seconds, seconds, 0.0, 0))
    result = write_training_outputs(run, lds, recon, metrics)
    result.warnings = notes
    return result


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of a safetensors file that says it is an LDS of our version."""
    metadata = checked_metadata(path, LDS_FORMAT, LDS_VERSION)
    try:
        tensors = load_arrays(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a safetensors file ({err})") from None
    return tensors, metadata


def _check_shapes(path: Path, model: LDSModel) -> None:
    """The arrays agree with each other and with the config."""
    size = model.config.image_size
    dim, n = model.basis.shape if model.basis.ndim == 2 else (-1, -1)
    expected = {
        "mean": (size * size * 3,),
        "basis": (size * size * 3, n),
        "transition": (n, n),
        "noise": (n, n),
    }
    for name, shape in expected.items():
        if getattr(model, name).shape != shape or dim != size * size * 3:
            raise CheckpointError(f"{path}: {name} has shape {getattr(model, name).shape}")
    if model.states.ndim != 3 or model.states.shape[2] != n:
        raise CheckpointError(f"{path}: states have shape {model.states.shape}")
