"""One progress shape from a training's epoch report (or a synthesis's frames) to the row,
the event and the API."""

from __future__ import annotations

import math

from core.progress import ROW_FIELDS, JobProgress
from model.training import EpochReport


def test_an_epoch_becomes_the_row_columns_and_the_event() -> None:
    report = EpochReport(3, 10, math.nan, 0.5, 9.0, 1.5, 4.5, 10.5)
    progress = JobProgress.after_epoch(report, attempt=2)
    assert progress.columns() == {
        "epoch": 3, "epochs": 10, "fraction": 0.3, "loss": None, "eta_seconds": 10.5
    }  # fmt: skip
    assert progress.event() == progress.columns() | {
        "mse": 0.5, "psnr": 9.0, "seconds": 1.5, "attempt": 2
    }  # fmt: skip


def test_frames_carry_no_epoch_fields() -> None:
    event = JobProgress.in_frames(30, 120, attempt=1).event()
    assert event == dict.fromkeys(ROW_FIELDS) | {
        "fraction": 0.25, "frames": 30, "of_frames": 120, "attempt": 1
    }  # fmt: skip
