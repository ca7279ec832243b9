"""`method: auto` after a training: fit the LDS, keep the best of it and the trained model
(with and without its residual process) as model.safetensors, the others beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from model.checkpoint import Checkpoint
from model.lds import fit_lds, lds_config, reconstruct_lds
from model.outputs import TrainResult, describe, rewrite_metrics
from model.quality import reconstruction_motion_ratio
from model.report import training_report
from model.training_data import TrainingData


def choose_kept_model(
    result: TrainResult,
    ckpt: Checkpoint,
    data: TrainingData,
    video: Path,
    seed: int,
    device: torch.device,
) -> None:
    """Keep the best candidate as the run's model.safetensors (the others beside it), and
    report the choice in the metrics."""
    from model.choice import aside_name, candidates, choose_model, fallback_choice

    out = result.checkpoint.parent
    skipped = fallback_choice(data.visible is not None, ckpt.config.content_dim)
    if skipped is not None:
        rewrite_metrics(result, {"choice": skipped})
        return
    lds = fit_lds(data.clips, lds_config(ckpt.config))
    lds.info = {"seed": str(seed)}
    models = candidates(ckpt, lds, data.clips)
    choice = choose_model(models, video, ckpt.config, seed, str(device))
    kept = choice["kept"]
    update: dict[str, object] = {}
    if kept != "abptt":
        # the configured model moves aside; the kept one takes its name
        name = aside_name(kept, ckpt.residual is not None)
        result.checkpoint.replace(out / f"{name}.safetensors")
        result.files.append(describe("alternative_model", out / f"{name}.safetensors"))
        update[f"quality_{name.removeprefix('model-')}"] = result.metrics.get("quality")
        update["quality"] = training_report(models[kept], video, seed, device)
    if kept not in ("abptt", "lds"):
        models[kept].save(result.checkpoint)
    if kept == "lds":
        lds.save(result.checkpoint)
        update["reconstruction_motion_ratio"] = reconstruction_motion_ratio(
            reconstruct_lds(lds), data.clips
        )
        update["reconstruction_motion_ratio_abptt"] = result.metrics.get(
            "reconstruction_motion_ratio"
        )
    else:
        lds.save(out / "model-lds.safetensors")
        result.files.append(describe("alternative_model", out / "model-lds.safetensors"))
    rewrite_metrics(result, update | {"choice": choice})
