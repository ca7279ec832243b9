"""What a job will cost before it runs: peak memory and floating-point work, by arithmetic.

Pure arithmetic on the configs (no torch), so the API can refuse a job it cannot afford
before queueing it and the worker can check again before it starts. The memory estimate is
the worker process's peak resident set: a fixed process baseline (Python, torch, codecs)
plus what the run holds at its peak. The constants were fitted to measured peak RSS
(`benchmarks/budget.py`, BENCHMARKS.md); the estimate stays within 2x of those runs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from model.auto_work import choice_frames
from model.config import SynthesisConfig, TrainConfig

FLOAT = 4  # bytes of a float32
# RSS of a worker process that has imported torch, av and scipy and run a tiny job
PROCESS_BASELINE = 450 * 1024**2
# Tensors alive per generator layer and frame while a chunk's graph is built and back-
# propagated: conv output, batch-norm output, ReLU output, and a gradient in backward.
ACTIVATION_COPIES = 4
# Float copies of the clips a training run holds at its peak: the clips, the last
# reconstruction, the running sum, then at the end the truth, averaged and last reconstruction.
CLIP_COPIES = 6
# Decoding one source frame: the codec's planes, the RGB array, PIL's image and its crop.
DECODE_COPIES = 4
# Float copies of a frame in the quality report's patch statistics, per synthesized frame
REPORT_COPIES = 6
# x264 ("medium") keeps its lookahead and reference frames, ~1.5 bytes a pixel each
X264_FRAMES = 60
X264_OVERHEAD = 8 * 1024**2
# Per gif frame: one palettised byte a pixel plus PIL's image object and palette
GIF_FRAME_OVERHEAD = 2048
QUALITY_VIDEOS, QUALITY_MULTIPLE = 2, 4  # as model/report.py's quality report


@dataclass(frozen=True)
class SourceVideo:
    """What the estimate needs to know of an input video (its probe)."""

    frames: int
    width: int
    height: int


@dataclass(frozen=True)
class MaskFile:
    """An uploaded mask's shape (T, H, W) as its probe found it; an array (.npy, .mat) is
    read whole, a mask video frame by frame."""

    frames: int
    width: int
    height: int
    array: bool = True


@dataclass(frozen=True)
class Estimate:
    """A job's estimated peak memory (bytes), floating-point work and the parts of the memory."""

    memory_bytes: int
    flops: float
    parts: dict[str, int]

    def as_details(self) -> dict[str, object]:
        """JSON for error details and logs."""
        return {"memory_bytes": self.memory_bytes, "flops": self.flops, "parts": self.parts}


def generator_channels(image_size: int, base: int) -> list[int]:
    """Output channels of each transposed conv, input side first, ending with 3 (RGB)."""
    layers = int(math.log2(image_size))
    # counted from the output: base, 2 base, 4 base, 8 base, 8 base, ...
    hidden = [min(base * 2**j, base * 8) for j in range(layers - 1)]
    return [*reversed(hidden), 3]


def _layer_outputs(config: TrainConfig) -> list[int]:
    """Values each generator layer outputs for one frame (C x side x side)."""
    channels = generator_channels(config.image_size, config.base_channels)
    return [c * (2 ** (i + 1)) ** 2 for i, c in enumerate(channels)]


def _generator_weights(config: TrainConfig) -> int:
    channels = generator_channels(config.image_size, config.base_channels)
    inputs = [config.content_dim + config.state_dim, *channels[:-1]]
    return sum(i * o * 16 + 3 * o for i, o in zip(inputs, channels, strict=True))


def _transition_widths(config: TrainConfig) -> list[int]:
    """Inputs then outputs of each linear layer of the transition."""
    if config.transition == "linear":
        return [config.noise_dim + config.state_dim, config.state_dim]
    return [config.noise_dim + config.state_dim, *config.mlp_widths, config.state_dim]


def _transition_weights(config: TrainConfig) -> int:
    widths = _transition_widths(config)
    return sum(i * o + o for i, o in itertools.pairwise(widths))


def frame_flops(config: TrainConfig) -> float:
    """FLOPs of decoding one frame and one transition step (forward)."""
    side, flops = 1, 0
    channels = generator_channels(config.image_size, config.base_channels)
    inputs = [config.content_dim + config.state_dim, *channels[:-1]]
    for width_in, width_out in zip(inputs, channels, strict=True):
        flops += 2 * width_in * width_out * 16 * side * side
        side *= 2
    return float(flops + 2 * _transition_weights(config))


def _decode_bytes(sources: list[SourceVideo]) -> int:
    return max(v.width * v.height * 3 for v in sources) * DECODE_COPIES


def _activation_bytes(config: TrainConfig, batch: int) -> int:
    """One chunk's graph through the generator and transition, forward and backward."""
    generator = sum(_layer_outputs(config)) * ACTIVATION_COPIES
    transition = sum(_transition_widths(config)) * ACTIVATION_COPIES
    energy = 3 * config.image_size**2 * 4  # frames, residual, its square, the fill term
    return batch * (generator + transition + energy) * FLOAT


def _quality_report_bytes(config: TrainConfig) -> int:
    """The report after training: 2 syntheses 4x the clip's length, and the clip and its
    held-back frames, in uint8 and float copies for the patch statistics."""
    frames = (QUALITY_VIDEOS + 1) * QUALITY_MULTIPLE * config.frames + config.frames
    return frames * 3 * config.image_size**2 * (1 + REPORT_COPIES * FLOAT)


def _mask_bytes(config: TrainConfig, videos: int, mask: MaskFile | None, masked: bool) -> int:
    """The file's full array (float32 and bool) and the (N, T, S, S) visibility arrays."""
    if not masked:
        return 0
    visible = videos * config.frames * config.image_size**2 * (1 + FLOAT)
    fill = videos * config.frames * 3 * config.image_size**2 * FLOAT if config.fill_warmup else 0
    read = 0
    if mask is not None and mask.array:
        read = mask.frames * mask.width * mask.height * (FLOAT + 1)
    elif mask is not None:  # decoded one frame at a time, each plane resized at once
        read = mask.width * mask.height * 3 * DECODE_COPIES + mask.frames * config.image_size**2
    return visible + fill + read


def estimate_train(
    config: TrainConfig,
    sources: list[SourceVideo],
    *,
    masked: bool = False,
    mask: MaskFile | None = None,
) -> Estimate:
    """Peak memory and work of training `config` on these videos (optionally masked)."""
    n, pixels = len(sources), config.image_size**2
    clips = n * config.frames * pixels * 3
    parts = {
        "baseline": PROCESS_BASELINE,
        "decode": _decode_bytes(sources),
        "clips": clips + clips * FLOAT * CLIP_COPIES,
        "mask": _mask_bytes(config, n, mask, masked),
    }
    if config.method == "lds":
        # PCA over (N T, 3 S^2) float64: the data, its centred copy and the SVD's factors
        parts["lds"] = clips * 8 * 4 + _quality_report_bytes(config)
        flops = float(n * config.frames * (3 * pixels) * min(n * config.frames, 3 * pixels) * 4)
        return Estimate(sum(parts.values()), flops, parts)
    weights = _generator_weights(config) + _transition_weights(config)
    # weights, gradients, Adam's two moments, and a bf16 copy under autocast
    parts["weights"] = weights * FLOAT * 4 + weights * 2
    parts["activations"] = _activation_bytes(config, n * config.chunk)
    parts["latents"] = n * config.frames * (config.noise_dim + config.state_dim) * FLOAT * 3
    if not masked:
        parts["quality_report"] = _quality_report_bytes(config)
    steps = 2 * config.langevin_steps + 3 * config.learn_steps  # forwards per chunk
    frames = config.epochs * n * config.frames * steps
    if config.method == "auto" and not masked:  # then the choice synthesizes its candidates
        frames += choice_frames(config.frames, config.residual != "none")
    return Estimate(sum(parts.values()), frames * frame_flops(config), parts)


def estimate_synthesis(model: TrainConfig, config: SynthesisConfig) -> Estimate:
    """Peak memory and work of synthesizing `config` from a model trained with `model`."""
    pixels = model.image_size**2
    frames = config.num_videos * config.frames
    writers = config.num_videos * config.formats.count("mp4")
    gif_frames = frames * config.formats.count("gif")
    parts = {
        "baseline": PROCESS_BASELINE,
        "encoders": writers * (X264_FRAMES * pixels * 3 // 2 + X264_OVERHEAD),
        "gif_frames": gif_frames * (pixels + GIF_FRAME_OVERHEAD),
        "grid": config.num_videos * 10 * pixels * 3,
    }
    if model.method == "lds":
        # the baseline samples whole: states and pixels in float64, then uint8
        parts["frames"] = frames * (pixels * 3 * (8 + 1) + model.lds_components * 8)
        return Estimate(sum(parts.values()), float(frames * pixels * 3 * 2), parts)
    batch = config.num_videos * model.chunk
    weights = _generator_weights(model) + _transition_weights(model)
    # inference only: each layer's output lives until the next one's is made
    parts["weights"] = weights * FLOAT * 2
    parts["activations"] = batch * 2 * max(_layer_outputs(model)) * FLOAT
    parts["frames"] = batch * pixels * 3 * (FLOAT + 1) * 2
    return Estimate(sum(parts.values()), frames * frame_flops(model), parts)
