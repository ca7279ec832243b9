"""POST /v1/models: a checkpoint trained offline, streamed in, checked, then recorded."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import Services
from api.errors import ApiError
from api.metrics import count_upload
from api.uploads import Upload, multipart_file_body, receive_upload
from core.deletion import delete_files
from core.error_codes import refusal
from core.ids import new_id
from core.tables import Artifact, TrainedModel
from model.errors import CheckpointError

SUFFIX = ".safetensors"
IMPORT_BODY = multipart_file_body("model.safetensors as `dyngen train` writes it")


async def import_model(
    request: Request, owner_id: str | None, services: Services, session: Session
) -> TrainedModel:
    """Receive, check and record an uploaded checkpoint; 4xx naming what is wrong with it."""
    settings = services.settings
    slot = services.uploads.take(owner_id)
    try:
        upload = await receive_upload(
            request, services.store, settings.max_model_bytes, settings.upload_idle_seconds
        )
    finally:
        slot.release()
    try:
        config = await run_in_threadpool(_gated_check, upload, services)
        model = await run_in_threadpool(_record, upload, config, owner_id, services, session)
    finally:
        await run_in_threadpool(upload.staged.discard)  # a no-op once it was published
    count_upload(request, "model", upload.staged.bytes)
    return model


def _gated_check(upload: Upload, services: Services) -> dict[str, object]:
    """The checkpoint's config, checked within the cap on concurrent probes (503 past it)."""
    if not upload.filename.lower().endswith(SUFFIX):
        raise ApiError(
            422,
            "invalid_checkpoint",
            f"send the checkpoint as a {SUFFIX} file (model.safetensors from `dyngen train`)",
        )
    from model.importing import inspect_checkpoint  # torch loads on the first import only

    services.probes.enter()
    try:
        config = inspect_checkpoint(upload.staged.path, upload.filename)
    except CheckpointError as err:
        raise refusal(err) from None
    finally:
        services.probes.leave()
    return config.model_dump(mode="json")


def _record(
    upload: Upload,
    config: dict[str, object],
    owner_id: str | None,
    services: Services,
    session: Session,
) -> TrainedModel:
    """Publish the file, then its artifact and model rows; the file goes again if they fail."""
    artifact_id = new_id("art")
    key = f"artifacts/{artifact_id}/model{SUFFIX}"
    services.store.publish(upload.staged, key)
    try:
        model = _add_rows(session, upload, artifact_id, key, config, owner_id)
        session.commit()
    except BaseException:
        delete_files(services.store, [key])
        raise
    return model


def _add_rows(
    session: Session,
    upload: Upload,
    artifact_id: str,
    key: str,
    config: dict[str, object],
    owner_id: str | None,
) -> TrainedModel:
    """The checkpoint's artifact row (of no job) and the model row naming it."""
    artifact = Artifact(
        id=artifact_id,
        owner_id=owner_id,
        job_id=None,
        kind="checkpoint",
        filename=upload.filename,
        media_type="application/octet-stream",
        storage_key=key,
        bytes=upload.staged.bytes,
        sha256=upload.staged.sha256,
    )
    session.add(artifact)
    session.flush()
    model = TrainedModel(
        id=new_id("mdl"),
        owner_id=owner_id,
        job_id=None,
        source="import",
        checkpoint_id=artifact_id,
        config=config,
        metrics={"imported_from": upload.filename},
    )
    session.add(model)
    session.flush()
    return model
