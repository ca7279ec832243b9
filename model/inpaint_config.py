"""The defaults of an inpainting run, without torch: the CLI and the API resolve them alike."""

from __future__ import annotations

from model.config import TrainConfig

# What an inpainting run gets unless its config names the field (QUALITY.md, inpainting):
# whole frames stretched (the authors' masks are drawn on the stretched frame), the whole
# clip, 100 epochs (on chatelet the shipped fill was the same at 100 and 300 epochs: the
# blend chose interpolation at both; 300 took 3x as long); the recovery defaults
# (model/config.py: holdout 0.1, sigma 0.5, ...) apply beneath these.
INPAINT_DEFAULTS: dict[str, object] = {"resize": "stretch", "epochs": 100}
MAX_DEFAULT_FRAMES = 300  # an unset `frames` takes the whole clip up to this many


def inpaint_config(config: TrainConfig, available: int) -> TrainConfig:
    """The config of an inpainting run on a clip of `available` frames, for the CLI and the API
    alike: INPAINT_DEFAULTS where unset, and an unset `frames` the whole clip from `start`,
    every `every`-th frame (at most MAX_DEFAULT_FRAMES)."""
    update = {k: v for k, v in INPAINT_DEFAULTS.items() if k not in config.model_fields_set}
    if "frames" not in config.model_fields_set:
        usable = (available - config.start - 1) // config.every + 1
        update["frames"] = max(2, min(usable, MAX_DEFAULT_FRAMES))
    fields = config.model_dump(exclude_unset=True) | update
    return TrainConfig.model_validate(fields)
