"""/v1/artifacts: downloads of what jobs produced."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import CallerDep, ServicesDep, SessionDep
from api.routes.common import Inline, PathId
from api.routes.files import file_responses, stored_response
from core.artifacts import get_artifact
from model.outputs import MEDIA_TYPES

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])
ARTIFACT_TYPES = tuple(sorted(set(MEDIA_TYPES.values())))


@router.get(
    "/{artifact_id}",
    response_class=Response,
    responses=file_responses(*ARTIFACT_TYPES),
)
def download_artifact(
    artifact_id: PathId,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    session: SessionDep,
    inline: Inline = False,
) -> Response:
    """The file (supports Range), or with an object store a redirect to (or JSON `url` of) a
    presigned URL; If-None-Match against its sha256 ETag."""
    artifact = get_artifact(session=session, owner_id=caller.owner_id, artifact_id=artifact_id)
    return stored_response(
        request,
        services.store,
        services.settings,
        artifact.storage_key,
        sha256=artifact.sha256,
        filename=artifact.filename,
        media_type=artifact.media_type,
        inline=inline,
    )
