"""Running an `animate` job: the still (an image, or a video's frame), the model, the videos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core import admission
from core.db import session_scope
from model.animate_config import SOURCE_FRAME
from worker.inputs import fetch_video, job_video, model_checkpoint
from worker.progress import Reporter
from worker.runner import Run, publish_videos


def run_animate(run: Run, reporter: Reporter) -> None:
    """Fit the still's first frame, roll the model on, publish the videos with the job."""
    from model.animate import animate_image
    from model.animate_config import AnimateConfig
    from model.config import TrainConfig

    stored = dict(run.job.config)
    frame = stored.pop(SOURCE_FRAME, None)
    config = AnimateConfig.model_validate(stored)
    with session_scope(run.sessions) as session:
        checkpoint, model_fields = model_checkpoint(run, session)
        source = fetch_video(run, job_video(run, session, run.job.video_ids[0]))
    model_config = TrainConfig.model_validate(model_fields)
    admission.plan_animate_job(model_config=model_fields, config=config, settings=run.settings)
    still = _read_still(source, frame, model_config.image_size, model_config.resize, run)
    result = animate_image(
        checkpoint,
        still,
        config,
        run.work_dir,
        device=run.settings.device,
        on_progress=reporter.on_frames,
    )
    publish_videos(run, result)


def _read_still(path: Path, frame: Any, size: int, resize: str, run: Run) -> np.ndarray:
    """The image upload, or the named frame of the video upload, as the model's frames."""
    from model.stills import read_still, read_video_frame

    if frame is None:
        return read_still(path, size, resize, max_side=run.settings.max_video_side)
    return read_video_frame(path, int(frame), size, resize)
