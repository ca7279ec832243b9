"""Uploaded videos (and mask files): their rows and their bytes in the store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from core.job_states import ACTIVE
from core.query import owned, page
from core.tables import Job, Video


@dataclass(frozen=True)
class Probe:
    """What probing an upload found."""

    kind: str  # "video" or "mask" (a .npy / .mat array)
    frames: int
    fps: float | None
    width: int
    height: int


def add_video(
    *,
    session: Session,
    video_id: str,
    owner_id: str | None,
    filename: str,
    storage_key: str,
    probe: Probe,
    size: int,
    sha256: str,
) -> Video:
    """The row of an upload already published in the store."""
    video = Video(
        id=video_id,
        owner_id=owner_id,
        kind=probe.kind,
        filename=filename,
        storage_key=storage_key,
        frames=probe.frames,
        fps=probe.fps,
        width=probe.width,
        height=probe.height,
        bytes=size,
        sha256=sha256,
    )
    session.add(video)
    session.flush()
    return video


def get_video(*, session: Session, owner_id: str | None, video_id: str) -> Video:
    """The caller's video, or NotFound."""
    stmt = select(Video).where(Video.id == video_id, owned(Video.owner_id, owner_id))
    video = session.scalar(stmt)
    if video is None:
        raise NotFound("video", video_id)
    return video


def list_videos(
    *, session: Session, owner_id: str | None, limit: int, cursor: str | None = None
) -> tuple[list[Video], str | None]:
    """The caller's videos, newest first."""
    stmt = select(Video).where(owned(Video.owner_id, owner_id))
    return page(session, stmt, Video.id, limit=limit, cursor=cursor)


def delete_video(*, session: Session, owner_id: str | None, video_id: str) -> str:
    """Remove a video's row unless an unfinished job needs it; returns its storage key.

    The caller deletes the bytes after committing, so a failed commit loses nothing.
    """
    video = get_video(session=session, owner_id=owner_id, video_id=video_id)
    active = session.scalars(
        select(Job).where(owned(Job.owner_id, owner_id), Job.status.in_(ACTIVE))
    )
    for job in active:
        mask_video = (job.mask or {}).get("video_id")
        if video_id in job.video_ids or video_id == mask_video:
            raise Conflict(
                f"video {video_id} is used by job {job.id}, which is {job.status}",
                code="video_in_use",
                details={"job_id": job.id},
            )
    session.delete(video)
    session.flush()
    return video.storage_key
