"""Re-run the recovery blend on a finished masked run's resume state, without training:
`python -m benchmarks.reblend RUN_DIR VIDEO MASK` prints the blend's and each fill's error on
the occluded pixels. The fill is the posterior mean at the resume state's epoch (the last
`--resume-every` multiple), so it matches the run's own figures only when that is its last
epoch; it is for comparing blend designs on the same fills (QUALITY.md, night of 2026-12-02)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open

from model.blend import holdout
from model.config import TrainConfig
from model.masks import FileMask
from model.recovery import recovered_videos
from model.training_data import load_training_data
from model.video_frames import to_tensor_scale


def main(run: Path, video: Path, mask: Path, seed: int = 0) -> dict[str, object]:
    """The recovery metrics of the blend over the run's resumed fills (seed: the run's)."""
    with safe_open(str(run / "resume.safetensors"), framework="np") as state:
        meta = state.metadata()
        names = set(state.keys())
        fills = {k: state.get_tensor(k) for k in ("recon_sum", "reconstruction")}
        held_out_fill = state.get_tensor("held_out_fill") if "held_out_fill" in names else None
    config = TrainConfig.model_validate(json.loads(meta["config"]))
    data = load_training_data(config, [video], FileMask(path=str(mask)))
    if data.visible is None:
        raise SystemExit(f"{mask}: not a mask this run can use")
    validation = np.stack([holdout(v, config.holdout, seed) for v in data.visible])
    truth = np.stack([to_tensor_scale(c) for c in data.clips])
    averaged = fills["recon_sum"] / max(int(meta["recon_count"]), 1)
    _, metrics = recovered_videos(
        truth, averaged, fills["reconstruction"], data.visible, validation, held_out_fill
    )
    return {"epoch": int(meta["epoch"])} | metrics


if __name__ == "__main__":
    report = main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(report, indent=2, default=str))
