"""Background inpainting scored where the truth is known: a box walking across the clip is
hidden from the background on top of the object's mask, the run fills both, and the filled
box is compared with the clip (0..255 mean absolute error) beside per-pixel linear
interpolation in time. Run as `python -m benchmarks.inpainting VIDEO MASK.mat --out DIR`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from model.config import TrainConfig, with_recovery_defaults
from model.inpaint import side_by_side, with_inpaint_defaults
from model.masks import FileMask
from model.metrics import linear_interpolation_fill
from model.training import train_model
from model.training_data import visible_pixels
from model.video_decode import stream_info
from model.video_frames import read_clips, read_video, to_tensor_scale, to_uint8
from model.video_writers import write_video


def walking_box(frames: int, size: int, side: float, seed: int) -> np.ndarray:
    """(T, S, S) bool: a square of `side` x the frame crossing it left to right over the clip,
    at a random height, as a passer-by would."""
    rng = np.random.default_rng(seed)
    box = max(1, round(side * size))
    top = int(rng.integers(0, size - box + 1))
    hidden = np.zeros((frames, size, size), bool)
    for t, left in enumerate(np.linspace(0, size - box, frames).round().astype(int)):
        hidden[t, top : top + box, left : left + box] = True
    return hidden


def through_mp4(frames: np.ndarray, path: Path) -> np.ndarray:
    """The frames after the same H.264 round trip the recovered video takes."""
    write_video(path, iter(frames), 25)
    return read_video(path, image_size=frames.shape[1], frames=len(frames))


def mae(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Mean absolute error (0..255) over the pixels `where` (T, S, S), all channels."""
    return float(np.abs(a.astype(np.float64) - b)[where].mean())


def decoded_chains(checkpoint: Path) -> np.ndarray:
    """The model's own fill: the clip decoded from its last chains, (T, S, S, 3) uint8."""
    from model.checkpoint import load_checkpoint
    from model.learner import use_bf16
    from model.residual import decode_chains

    ckpt = load_checkpoint(checkpoint)
    assert ckpt.chains is not None, "a training run saves its chains"
    bf16 = use_bf16(ckpt.config.precision, ckpt.initial_state.device)
    frames = decode_chains(
        ckpt.model, ckpt.initial_state, ckpt.chains, ckpt.content, ckpt.config.chunk, bf16
    )
    return to_uint8(frames[0].numpy())


def main() -> None:
    """Train on the clip with the object and the walking box hidden; print the errors."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video", type=Path)
    parser.add_argument("mask", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    parser.add_argument("--box", type=float, default=0.25, help="side of the hidden box")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fields = with_recovery_defaults(json.loads(args.config))
    config = with_inpaint_defaults(TrainConfig.model_validate(fields), args.video)
    header = stream_info(args.video)
    person = ~visible_pixels(FileMask(path=str(args.mask)), config, header)
    hidden = walking_box(config.frames, config.image_size, args.box, args.seed)
    scored = hidden & ~person  # background pixels whose truth the run never sees
    args.out.mkdir(parents=True, exist_ok=True)
    combined = args.out / "hidden.npy"
    np.save(combined, (person | hidden).astype(np.uint8))
    result = train_model(config, [args.video], args.out, mask=FileMask(path=str(combined)))
    clip = read_clips([args.video], config)[0]
    recovered = read_video(
        args.out / "recovered.mp4", image_size=config.image_size, frames=config.frames
    )
    visible = ~(person | hidden)
    interpolated = to_uint8(linear_interpolation_fill(to_tensor_scale(clip), visible[:, None]))
    side_by_side(args.video, args.out / "recovered.mp4", config, args.out)
    model_fill = decoded_chains(args.out / "model.safetensors")
    report = {
        "config": {k: getattr(config, k) for k in ("image_size", "frames", "epochs", "resize")},
        "scored_pixels": int(scored.sum()),
        "error_recovered": mae(recovered, clip, scored),
        "error_interpolation": mae(
            through_mp4(interpolated, args.out / "interp.mp4"), clip, scored
        ),
        "error_interpolation_exact": mae(interpolated, clip, scored),
        "error_model_last_sample_exact": mae(model_fill, clip, scored),
        "error_codec_floor": mae(through_mp4(clip, args.out / "clip.mp4"), clip, scored),
        "blend": result.metrics.get("blend"),
        "seconds": result.metrics.get("seconds"),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
