"""A job's inputs as a worker reads them: rows through core, files fetched from the store into
the attempt's scratch, each named for the owner's error messages."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from core import checkpoints, models, videos
from core.errors import NotFound
from core.settings import mask_limits
from core.tables import Artifact, Video

if TYPE_CHECKING:
    from worker.runner import Run


class MissingInput(Exception):
    """Something the job names (a video, a model) was deleted after the job was created."""

    code = "missing_input"


def job_video(run: Run, session: Session, video_id: str) -> Video:
    """An upload the job names, still there and still its owner's."""
    try:
        return videos.get_video(session=session, owner_id=run.job.owner_id, video_id=video_id)
    except NotFound:
        raise MissingInput(f"video {video_id} was deleted after the job was created") from None


def training_inputs(run: Run, session: Session) -> tuple[list[Video], Video | None]:
    """A train job's videos and its mask upload (None for a mask it spells out, or none)."""
    rows = [job_video(run, session, v) for v in run.job.video_ids]
    spec = run.job.mask
    if spec is None or spec["kind"] != "upload":
        return rows, None
    return rows, job_video(run, session, spec["video_id"])


def fetch_video(run: Run, video: Video) -> Path:
    """The upload's file in the attempt's scratch."""
    try:
        path = run.store.fetch(video.storage_key, run.work_dir)
    except FileNotFoundError:  # an object store's; a local one's model/ reports itself
        raise MissingInput(f"the stored file of {video.kind} {video.id} is missing") from None
    run.names[str(path)] = f"{video.kind} {video.id}"
    return path


def job_mask(run: Run, mask_file: Video | None) -> Any:
    """The job's mask as model/ takes it: a mask upload's file, or the mask the job spells."""
    from model.masks import FileMask, MissingFramesMask, RegionsMask

    spec = run.job.mask
    if spec is None:
        return None
    if mask_file is not None:
        # read under the limits the upload was checked against
        limits = mask_limits(run.settings)
        return FileMask(
            path=str(fetch_video(run, mask_file)),
            max_bytes=limits.max_bytes,
            max_frames=limits.max_frames,
            max_side=limits.max_side,
        )
    cls = MissingFramesMask if spec["kind"] == "missing_frames" else RegionsMask
    return cls.model_validate(spec)


def model_checkpoint(run: Run, session: Session) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file the job samples from and the config it was trained with."""
    if run.job.checkpoint_id is not None:
        return _intermediate(run, session, run.job.checkpoint_id)
    assert run.job.model_id is not None, "a synthesize job names its model"
    try:
        model = models.get_model(
            session=session, owner_id=run.job.owner_id, model_id=run.job.model_id
        )
    except NotFound:
        raise MissingInput(f"model {run.job.model_id} no longer exists") from None
    artifact = session.get_one(Artifact, model.checkpoint_id)
    path = run.store.fetch(artifact.storage_key, run.work_dir)
    run.names[str(path)] = f"model {model.id}"
    return path, model.config


def _intermediate(run: Run, session: Session, artifact_id: str) -> tuple[Path, dict[str, Any]]:
    """A training's intermediate checkpoint file and that training's config."""
    try:
        artifact, training = checkpoints.usable_checkpoint(
            session=session, owner_id=run.job.owner_id, artifact_id=artifact_id
        )
    except NotFound:
        raise MissingInput(
            f"checkpoint {artifact_id} no longer exists (a training keeps only its newest few)"
        ) from None
    # a copy: the running training may prune the original while this job samples from it
    path = run.work_dir / "input" / artifact.filename
    path.parent.mkdir(exist_ok=True)
    try:
        shutil.copyfile(run.store.fetch(artifact.storage_key, run.work_dir), path)
    except FileNotFoundError:
        raise MissingInput(f"checkpoint {artifact_id} no longer exists") from None
    run.names[str(path)] = f"checkpoint {artifact_id}"
    return path, training.config
