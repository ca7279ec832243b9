"""Admission control: a job's estimated memory and work against the deployment's limits.

The API checks before it queues a job; the worker checks again (with its own settings)
before it starts one, so a job queued under other limits, or by an older API, can't take
down a smaller worker.
"""

from __future__ import annotations

from typing import Any

from core.errors import Invalid
from core.settings import Settings
from core.tables import Video
from model.budget import Estimate, MaskFile, SourceVideo, estimate_synthesis, estimate_train
from model.config import SynthesisConfig, TrainConfig

GIB = 1024**3


def train_estimate(
    config: TrainConfig, videos: list[Video], mask: dict[str, Any] | None, mask_file: Video | None
) -> Estimate:
    """The estimate of a train job from its config and its inputs' probes."""
    sources = [SourceVideo(v.frames, v.width, v.height) for v in videos]
    probed = None
    if mask_file is not None:
        array = mask_file.kind == "mask"  # .npy / .mat; otherwise a mask video
        probed = MaskFile(mask_file.frames, mask_file.width, mask_file.height, array)
    return estimate_train(config, sources, masked=mask is not None, mask=probed)


def synthesis_estimate(model_config: dict[str, Any], config: SynthesisConfig) -> Estimate:
    """The estimate of a synthesis job from its model's training config."""
    return estimate_synthesis(TrainConfig.model_validate(model_config), config)


def check_budget(estimate: Estimate, settings: Settings) -> None:
    """Refuse (422 `job_too_large`) a job estimated past the deployment's limits."""
    memory, flops = settings.max_job_memory_bytes, settings.max_job_flops
    if estimate.memory_bytes <= memory and estimate.flops <= flops:
        return
    if estimate.memory_bytes > memory:
        reason = (
            f"the job needs an estimated {estimate.memory_bytes / GIB:.1f} GiB of memory; "
            f"this server allows {memory / GIB:.1f} GiB per job"
        )
    else:
        reason = (
            f"the job needs an estimated {estimate.flops:.2e} floating-point operations; "
            f"this server allows {flops:.2e} per job"
        )
    raise Invalid(
        f"{reason} (use fewer or shorter videos, a smaller image_size, chunk_length, "
        "base_channels, state or layer widths, fewer epochs, Langevin steps or frames)",
        code="job_too_large",
        details={
            "estimate": estimate.as_details(),
            "limit": {"memory_bytes": memory, "flops": flops},
        },
    )
