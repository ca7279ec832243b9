"""Pieces several route modules share: query parameters and ORM-to-schema conversion."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from api.schemas import ArtifactRead, VideoRead
from core.job_view import artifact_json
from core.tables import Artifact, Video

ID_PATTERN = r"^[a-z]+_[0-9a-f]+$"
# Ids in paths are checked before any query: a NUL byte or a 5 kB id is a 422, not a DB error.
PathId = Annotated[str, Path(min_length=1, max_length=40, pattern=ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Cursor = Annotated[
    str | None,
    Query(max_length=40, pattern=r"^[a-z]+_[0-9a-f]+$", description="next_cursor of the last page"),
]

Inline = Annotated[
    bool,
    Query(description="videos and images: `Content-Disposition: inline`, for <video>/<img>"),
]


def video_read(video: Video) -> VideoRead:
    """The client's view of a video row."""
    return VideoRead(
        id=video.id,
        kind=video.kind if video.kind in ("mask", "image") else "video",
        filename=video.filename,
        frames=video.frames,
        fps=video.fps,
        width=video.width,
        height=video.height,
        bytes=video.bytes,
        sha256=video.sha256,
        content_url=f"/v1/videos/{video.id}/content",
        created_at=video.created_at,
    )


def artifact_read(artifact: Artifact) -> ArtifactRead:
    """The client's view of an artifact row."""
    return ArtifactRead.model_validate(artifact_json(artifact))
