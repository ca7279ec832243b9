"""A job's progress, one shape from the learner's epoch report (or a synthesis's frame count)
to the job row's columns, its history event and the API's `progress`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from model.outputs import json_safe

# the progress the job row keeps (and GET /v1/jobs/{id} shows); events keep all of it
ROW_FIELDS = ("epoch", "epochs", "fraction", "loss", "eta_seconds")


class EpochLike(Protocol):
    """What a training reports after an epoch (model.training.EpochReport)."""

    @property
    def epoch(self) -> int: ...
    @property
    def epochs(self) -> int: ...
    @property
    def loss(self) -> float: ...
    @property
    def mse(self) -> float: ...
    @property
    def psnr(self) -> float: ...
    @property
    def seconds(self) -> float: ...
    @property
    def eta_seconds(self) -> float: ...


def finite(value: float | None) -> float | None:
    """JSON (and PostgreSQL) have no NaN or infinity: those become null (as json_safe says)."""
    safe: float | None = json_safe(value)
    return None if safe is None else float(safe)


@dataclass(frozen=True)
class JobProgress:
    """How far a running job got: epochs for a training, frames for a synthesis."""

    fraction: float
    epoch: int | None = None
    epochs: int | None = None
    loss: float | None = None
    eta_seconds: float | None = None
    mse: float | None = None
    psnr: float | None = None
    seconds: float | None = None
    frames: int | None = None
    of_frames: int | None = None
    attempt: int | None = None

    @classmethod
    def after_epoch(cls, report: EpochLike, attempt: int | None = None) -> JobProgress:
        """A training's progress after one epoch."""
        return cls(
            fraction=report.epoch / max(report.epochs, 1),
            epoch=report.epoch,
            epochs=report.epochs,
            loss=finite(report.loss),
            eta_seconds=finite(report.eta_seconds),
            mse=finite(report.mse),
            psnr=finite(report.psnr),
            seconds=finite(report.seconds),
            attempt=attempt,
        )

    @classmethod
    def in_frames(cls, done: int, total: int, attempt: int | None = None) -> JobProgress:
        """A synthesis's (or an animation's) progress in frames."""
        return cls(fraction=done / max(total, 1), frames=done, of_frames=total, attempt=attempt)

    def columns(self) -> dict[str, Any]:
        """The job row's progress columns."""
        return {name: getattr(self, name) for name in ROW_FIELDS}

    def event(self) -> dict[str, Any]:
        """The history event's data: the row's fields, then epochs' or frames' own."""
        extra = ("frames", "of_frames") if self.frames is not None else ("mse", "psnr", "seconds")
        data = self.columns() | {name: getattr(self, name) for name in extra}
        return data | ({} if self.attempt is None else {"attempt": self.attempt})


def row_progress(row: Any) -> dict[str, Any]:
    """A job row's progress as clients see it."""
    return {name: getattr(row, name) for name in ROW_FIELDS}
