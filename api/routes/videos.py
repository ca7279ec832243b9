"""/v1/videos: upload, list, read, download, delete."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, Services, ServicesDep, SessionDep
from api.idempotency import IdempotencyKeyHeader, run_once
from api.metrics import count_upload
from api.probe import probe_upload
from api.routes.common import Cursor, Inline, Limit, PathId, video_read
from api.routes.files import file_responses, stored_response
from api.schemas import Page, VideoRead
from api.uploads import Upload, multipart_file_body, receive_upload
from core import videos
from core.ids import new_id

router = APIRouter(prefix="/v1/videos", tags=["videos"])
# what the content route serves: see _content_type
CONTENT_TYPES = ("video/*", "image/*", "application/octet-stream")

UPLOAD_BODY = multipart_file_body("a video, an image, or a mask as .npy / .mat")


@router.post("", status_code=201, openapi_extra=UPLOAD_BODY, response_model=VideoRead)
async def upload_video(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> VideoRead | Response:
    """Stream a video to storage, probe it (frames, fps, size) and record it."""
    # The file is received and probed before the database is touched: a slow or stalled
    # client holds one of its key's upload slots, never a pooled connection.
    slot = services.uploads.take(caller.owner_id)
    video_id = new_id("vid")
    try:
        upload, probe = await _receive_and_probe(request, services, video_id)
    finally:
        slot.release()
    recorded = False

    def record() -> VideoRead:
        nonlocal recorded
        recorded = True  # from here _record owns the staged file
        video = _record(video_id, upload, probe, caller.owner_id, services, session)
        count_upload(request, "video", video.bytes)
        return video

    # the request's fingerprint: the file's sha256 and the form's fields (the file name)
    fields = {"sha256": upload.staged.sha256, "filename": upload.filename}
    try:
        return await run_in_threadpool(
            run_once,
            services,
            caller.owner_id,
            idempotency_key,
            route="POST /v1/videos",
            request=fields,
            status_code=201,
            answer=record,
        )
    finally:
        if not recorded:  # a replay or a refused key: the upload is not kept
            await run_in_threadpool(upload.staged.discard)


def _video_key(video_id: str, suffix: str) -> str:
    return f"videos/{video_id}{suffix}"


async def _receive_and_probe(
    request: Request, services: Services, video_id: str
) -> tuple[Upload, videos.Probe]:
    settings = services.settings
    upload = await receive_upload(
        request,
        services.store,
        settings.max_upload_bytes,
        settings.upload_idle_seconds,
        key_for=lambda suffix: _video_key(video_id, suffix),
    )
    try:
        probe = await run_in_threadpool(_gated_probe, upload, services)
    except BaseException:
        await run_in_threadpool(upload.staged.discard)
        raise
    return upload, probe


def _gated_probe(upload: Upload, services: Services) -> videos.Probe:
    """Probe within the cap on concurrent probes (503 past it)."""
    # Entered and left in the decoding thread: a client that hangs up mid-probe does not
    # free the place while the decoder still runs.
    services.probes.enter()
    try:
        return probe_upload(upload.staged.path, upload.suffix, services.settings)
    finally:
        services.probes.leave()


def _record(
    video_id: str,
    upload: Upload,
    probe: videos.Probe,
    owner_id: str | None,
    services: ServicesDep,
    session: SessionDep,
) -> VideoRead:
    key = _video_key(video_id, upload.suffix)
    services.store.publish(upload.staged, key)
    try:
        video = videos.add_video(
            session=session,
            video_id=video_id,
            owner_id=owner_id,
            filename=upload.filename,
            storage_key=key,
            probe=probe,
            size=upload.staged.bytes,
            sha256=upload.staged.sha256,
        )
        session.commit()
    except BaseException:
        services.store.delete(key)
        raise
    return video_read(video)


@router.get("")
def list_videos(
    caller: CallerDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[VideoRead]:
    """The caller's videos, newest first."""
    rows, next_cursor = videos.list_videos(
        session=session, owner_id=caller.owner_id, limit=limit, cursor=cursor
    )
    return Page[VideoRead](items=[video_read(v) for v in rows], next_cursor=next_cursor)


@router.get("/{video_id}")
def get_video(video_id: PathId, caller: CallerDep, session: SessionDep) -> VideoRead:
    """One video."""
    return video_read(
        videos.get_video(session=session, owner_id=caller.owner_id, video_id=video_id)
    )


@router.get(
    "/{video_id}/content",
    response_class=Response,
    responses=file_responses(*CONTENT_TYPES),
)
def video_content(
    video_id: PathId,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    session: SessionDep,
    inline: Inline = False,
) -> Response:
    """The uploaded bytes, as sent."""
    video = videos.get_video(session=session, owner_id=caller.owner_id, video_id=video_id)
    return stored_response(
        request,
        services.store,
        services.settings,
        video.storage_key,
        sha256=video.sha256,
        filename=video.filename,
        media_type=_content_type(video.filename),
        inline=inline,
    )


def _content_type(filename: str) -> str:
    """A video or image type guessed from the name; anything else is plain bytes."""
    guessed = mimetypes.guess_type(filename)[0] or ""
    return guessed if guessed.startswith(("video/", "image/")) else "application/octet-stream"


@router.delete("/{video_id}", status_code=204, response_class=Response)
def delete_video(
    video_id: PathId, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> Response:
    """Delete a video and its bytes (409 while an unfinished job uses it)."""
    key = videos.delete_video(session=session, owner_id=caller.owner_id, video_id=video_id)
    session.commit()
    services.store.delete(key)
    return Response(status_code=204)
