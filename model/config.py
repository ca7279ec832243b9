"""The one validated set of hyperparameters, shared by the CLI, the API and the worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from model.masks import ClipWindow

# Configs are strict: a JSON string or boolean where a number belongs ("epochs": "3", true)
# is refused, never coerced. Tuples alone stay lax so JSON arrays are taken, but their items
# are strict too.
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)
Width = Annotated[int, Strict()]

# The registry of training methods: name -> the module that trains, saves and loads its
# models (model/methods.py says what it defines). A new method is a module and a line here.
METHOD_MODULES: dict[str, str] = {
    "abptt": "model.abptt",
    "lds": "model.lds",
}
if TYPE_CHECKING:
    MethodName = str
else:  # `auto`: train the dynamic generator, fit the LDS, keep the better (model/choice.py)
    MethodName = Literal[(*METHOD_MODULES, "auto")]


# Presets fill the fields a config leaves unset. `faithful` is the plain port of the authors'
# algorithm measured in docs/design.md (5.1): ReLU transition units, fp32, a single-sample
# reconstruction.
PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    "faithful": {
        "method": "abptt",
        "mlp_activation": "relu",
        "precision": "fp32",
        "average_last": 1,
        "weight_average": 0.0,
        "lr_anneal": 0.0,
        "residual": "none",
        "anchor": "none",
        "motion_calibration": "none",
        "stationary": "none",
    },
}

# What a masked run gets unless its config names the field (QUALITY.md, recovery): the
# authors' observation noise for incomplete data; 5 Langevin steps (the persistent chains
# need few) and 3 parameter steps after them, which fit the generator faster in the same
# time; one BPTT chunk over the paper's 70-frame clips; occluded pixels pulled toward the
# interpolated fill, the weight falling to 0 over the run (without it the model's missing
# frames drift far from their neighbours); a tenth of the visible pixels held out to fit the
# blend of the model's fill with interpolation that the recovered video is. The rate's anneal
# was measured on complete clips only: recovery keeps a constant rate.
RECOVERY_SIGMA = 0.5
RECOVERY_DEFAULTS: dict[str, object] = {
    "sigma": RECOVERY_SIGMA,
    "lr_anneal": 0.0,
    "langevin_steps": 5,
    "chunk_length": 70,
    "fill_warmup": 1.0,
    "learn_steps": 3,
    "holdout": 0.1,
}


def with_recovery_defaults(fields: dict[str, object]) -> dict[str, object]:
    """Config fields of a masked run: RECOVERY_DEFAULTS where the fields don't set them (only
    the authors' sigma under the `faithful` preset, which keeps their algorithm)."""
    faithful = fields.get("preset") == "faithful"
    return ({"sigma": RECOVERY_SIGMA} if faithful else RECOVERY_DEFAULTS) | fields


def run_fields(fields: dict[str, object], *, masked: bool) -> dict[str, object]:
    """The config fields a run validates, for the CLI and the API alike: a masked run's
    recovery defaults where its fields don't set them, a complete-data run's fields as given."""
    return with_recovery_defaults(fields) if masked else fields


# Resume state, in the CLI and the service alike: the learner's whole state saved every
# RESUME_EVERY epochs (and when a run is stopped) to a safetensors file named RESUME_FILE.
RESUME_EVERY = 50
RESUME_FILE = "resume.safetensors"


Clip = TypeVar("Clip", bound=BaseModel)


def fit_frames(config: Clip, available: int, minimum: int = 2) -> Clip:
    """The one rule for clips shorter than the frames asked for, in every command and the API:
    an unset `frames` shrinks to what a clip of `available` frames gives (at least `minimum`);
    a `frames` the user set stays, and reading the clip then fails saying what it has."""
    start, every, frames = (getattr(config, name) for name in ("start", "every", "frames"))
    usable = (available - start - 1) // every + 1
    if "frames" in config.model_fields_set or not minimum <= usable < frames:
        return config
    return config.model_copy(update={"frames": usable})


class TrainConfig(BaseModel):
    """Hyperparameters of one training run; the authors' defaults (docs/design.md 1.1)."""

    model_config = STRICT

    preset: Literal["default", "faithful"] = Field(
        "default", description="defaults for unset fields: default, or the authors' plain algorithm"
    )
    # auto: the dynamic generator where it beats the LDS on frames neither saw, else the LDS
    # (on the shared clips each wins somewhere; QUALITY.md, issue 13)
    method: MethodName = Field(
        "auto",
        description="abptt: the dynamic generator; lds: the linear baseline, in seconds; auto:"
        " both, scored on held-back frames, the better kept",
    )
    lds_components: int = Field(30, ge=1, le=1024, description="PCA components of the LDS")
    # data
    image_size: Literal[16, 32, 64, 128, 256] = Field(64, description="frame side in pixels")
    # the authors' 60; 120 won on flag and flashing_light but lost on fire at the same
    # epochs (QUALITY.md). Unset, a shorter clip trains on all it has (`fit_to_length`).
    frames: int = Field(
        60, ge=2, le=10_000, description="frames taken from each video (unset: up to 60)"
    )
    start: int = Field(0, ge=0, description="first frame taken")
    every: int = Field(1, ge=1, le=100, description="keep every n-th frame")
    resize: Literal["crop", "stretch"] = Field(
        "crop", description="centre-crop or stretch each frame to a square"
    )
    # model
    transition: Literal["nonlinear", "linear"] = Field(
        "nonlinear", description="transition model: residual MLP, or the paper's linear variant"
    )
    state_dim: int = Field(100, ge=1, le=4096, description="latent state size d")
    noise_dim: int = Field(100, ge=1, le=4096, description="noise size k")
    content_dim: int = Field(0, ge=0, le=4096, description="per-video content vector, 0 = none")
    mlp_widths: tuple[Width, ...] = Field(
        (20, 20),
        min_length=1,
        max_length=8,
        strict=False,
        description="hidden widths of the transition MLP",
    )
    mlp_activation: Literal["tanh", "relu", "leaky_relu"] = Field(
        "tanh",
        description="hidden units of the transition MLP; ReLU units die and freeze the noise",
    )
    transition_init_std: float = Field(
        1e-3, gt=0, le=1, description="std of the transition's initial weights"
    )
    base_channels: int = Field(64, ge=1, le=512, description="generator width at the output")
    generator_init_std: float = Field(
        5e-3, gt=0, le=1, description="std of the generator's initial weights"
    )
    # learning
    epochs: int = Field(3000, ge=1, le=1_000_000, description="training epochs")
    chunk_length: int = Field(30, ge=1, le=10_000, description="L: frames per truncated-BPTT chunk")
    chunk_offsets: Literal["fixed", "random"] = Field(
        "fixed",
        description="chunk boundaries at multiples of L, or shifted by a random offset each epoch",
    )
    sigma: float = Field(1.0, gt=0, le=100, description="observation noise of the energy")
    langevin_steps: int = Field(15, ge=0, le=1000, description="Langevin steps per chunk")
    langevin_delta: float = Field(0.03, gt=0, le=10, description="Langevin step size")
    energy_scaling: Literal["per_frame", "sum", "mean"] = Field(
        "per_frame",
        description="E divided by the frames in the chunk (learns), plain sum, or mean per value",
    )
    learn_steps: int = Field(
        1, ge=1, le=100, description="parameter steps per chunk after its Langevin steps"
    )
    learning_rate: float = Field(2e-3, gt=0, le=1, description="Adam learning rate")
    # 0.3: fire's syntheses at 64x64 came 21 % closer to the clip's dynamics (drift 1.35 ->
    # 1.04), flashing_light's 20 % closer in appearance on two seeds; at 32x32 the dynamics
    # moved -7 % to +11 % (QUALITY.md, "The learning rate annealed")
    lr_anneal: float = Field(
        0.3,
        ge=0,
        le=1,
        description="fraction of the epochs, at the end, over which the learning rate falls"
        " along a half cosine toward 0 (0 = a constant rate)",
    )
    transition_lr_scale: float = Field(
        1.0, gt=0, le=100, description="the transition's learning rate over the generator's"
    )
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1")
    # auto: as good as fp32 within seed noise and 1.8x faster here (BENCHMARKS.md)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="generator arithmetic; auto = bf16 where the device has it natively"
    )
    fill_warmup: float = Field(
        0.0,
        ge=0,
        le=1,
        description="masked runs: fraction of the epochs, at the start, in which occluded pixels"
        " are also pulled toward a linear interpolation of the visible frames (falling to 0)",
    )
    holdout: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="masked runs: fraction of the visible pixels held out of training, shaped"
        " like the mask, to fit the blend of the model's fill with interpolation (0 = no blend)",
    )
    # tiger's region mask at 64x64: the model trained without the held-out boxes erred 15.19,
    # with them released for the last quarter 13.03, as if none were held out (QUALITY.md)
    holdout_release: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="masked runs with a holdout: fraction of the epochs, at the end, in which"
        " the held-out pixels are trained on too; the blend's weights are fitted on the"
        " model's fill from before (0 = never)",
    )
    warm_start: Literal["none", "pca"] = Field(
        "none",
        description="pca: begin with the transition, generator and chains fitted to the clip's"
        " principal-component path (complete videos only)",
    )
    # lds: on every model measured (flame, fire, flag, flashing_light, tiger) the syntheses'
    # dynamics came 1.6 to 6x closer to the clip's than without it (QUALITY.md, issue 13)
    residual: Literal["none", "lds"] = Field(
        "lds",
        description="lds: fit an LDS to what the generator leaves out (x - G(s)) after training"
        " and add a sample of it to every synthesized frame (complete videos only)",
    )
    residual_components: int = Field(
        20, ge=1, le=1024, description="PCA components of the residual process"
    )
    # post-training fits of the syntheses (model/calibration.py; QUALITY.md, evening 2026-12-02)
    anchor: Literal["none", "chains"] = Field(
        "none",
        description="chains: after training, fit a pull of each synthesized state toward the"
        " mean of the inferred chains' states, so long syntheses stay where training lived"
        " (complete videos only)",
    )
    motion_calibration: Literal["none", "clip"] = Field(
        "none",
        description="clip: after training, scale the drawn noise so that syntheses of the"
        " training length move as much as the clip (complete videos only)",
    )
    stationary: Literal["none", "chains"] = Field(
        "none",
        description="chains: after training, fine-tune the transition so that long syntheses"
        " keep visiting the states the inferred chains visit (model/stationary.py; complete"
        " videos only)",
    )
    # the default's syntheses came 32 to 36 % closer to the clip's dynamics on fire, 28 % on
    # flame, and tiger's appearance 43 % closer, for 12 to 14 % on flashing_light's dynamics
    # (QUALITY.md, "Averaged weights")
    weight_average: float = Field(
        0.99,
        ge=0,
        lt=1,
        description="the checkpoint holds an exponential moving average of the weights over"
        " the epochs, with this decay per epoch (about the last tenth of a run under 900"
        " epochs); 0 = the last epoch's weights",
    )
    average_last: int = Field(
        0, ge=0, description="average the reconstruction over the last n epochs (0 = half the run)"
    )
    checkpoint_every: int = Field(
        50,
        ge=0,
        le=1_000_000,
        description="the service publishes the model as a checkpoint every n epochs while it"
        " trains (the last few kept; 0 = off)",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("preset"), str):
            return PRESETS.get(data["preset"], {}) | data  # an unknown name fails on the field
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> TrainConfig:
        if any(w < 1 or w > 4096 for w in self.mlp_widths):
            raise ValueError("mlp_widths must each be between 1 and 4096")
        return self

    def fit_to_length(self, available: int) -> TrainConfig:
        """This config for clips of `available` frames: an unset `frames` shrinks to fit."""
        return fit_frames(self, available)

    @property
    def window(self) -> ClipWindow:
        """The frames of the clip this run trains on."""
        return ClipWindow(self.frames, self.start, self.every)

    @property
    def chunk(self) -> int:
        """Frames per chunk, never more than the clip."""
        return min(self.chunk_length, self.frames)

    @property
    def num_chunks(self) -> int:
        """Chunks per video per epoch (the last may be shorter)."""
        return -(-self.frames // self.chunk)

    def mask_conflict(self) -> str | None:
        """Why this config can't learn from masked videos, or None if it can."""
        if self.method == "lds":
            return "method lds learns from complete videos only; use abptt with a mask"
        if self.warm_start == "pca":
            return "warm_start pca learns from complete videos only; drop the mask"
        return None

    @property
    def fill_warmup_epochs(self) -> int:
        """Epochs at the start of a masked run that also fit the interpolated fill."""
        return round(self.fill_warmup * self.epochs)

    @property
    def release_epoch(self) -> int | None:
        """The epoch after which a held-out run trains on its held-out pixels too, or None."""
        if self.holdout == 0 or self.holdout_release == 0:
            return None
        return self.epochs - max(1, round(self.holdout_release * self.epochs))

    @property
    def averaged_epochs(self) -> int:
        """How many final epochs the reconstruction is averaged over."""
        n = self.average_last or max(1, self.epochs // 2)
        return min(n, self.epochs)


class SynthesisConfig(BaseModel):
    """What to generate from a trained model."""

    model_config = STRICT

    num_videos: int = Field(2, ge=1, le=256, description="videos to generate")
    frames: int = Field(120, ge=1, le=100_000, description="length of each video")
    fps: float = Field(25.0, gt=0, le=240, description="frames per second of the files")
    formats: tuple[Literal["mp4", "gif"], ...] = Field(
        ("mp4",), min_length=1, strict=False, description="file formats: mp4, gif or both"
    )
    fresh_state: bool = Field(False, description="draw s_0 from N(0, I) instead of the learned one")
    content: int | None = Field(
        0,
        ge=0,
        description="training video whose content vector is used; null (CLI: fresh) = a fresh draw",
    )
    noise_scale: float = Field(1.0, ge=0, le=10, description="scale of the drawn noise xi_t")

    @field_validator("formats")
    @classmethod
    def _distinct_formats(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        """Each format once: a repeated one would name the same output file twice."""
        repeated = sorted({f for f in formats if formats.count(f) > 1})
        if repeated:
            raise ValueError(f"each format may be given once; repeated: {', '.join(repeated)}")
        return formats
