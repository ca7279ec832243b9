"""Serving stored bytes: Range (by Starlette), a sha256 ETag, conditional requests."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import FileResponse

from api.errors import ApiError


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


def file_response(
    request: Request, path: Path, *, sha256: str, filename: str, media_type: str
) -> Response:
    """The file, a 206 part of it, or 304 when the client's copy is current."""
    if not path.is_file():
        raise ApiError(410, "content_gone", "the stored file is missing from the server's storage")
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, filename=filename, headers=headers)
