"""Serving stored bytes: Range (by Starlette), a sha256 ETag, conditional requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from api.errors import ApiError
from api.schemas import ErrorBody
from core.settings import Settings
from core.storage import Store

# what a browser may show in place; anything else (a checkpoint, a JSON report) stays a download
INLINE_TYPES = ("video/", "image/")
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def file_responses(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a download route serving these media types."""
    content: dict[str, Any] = {m: {"schema": {}} if "json" in m else _BINARY for m in media_types}
    return {
        200: {"description": "the file", "content": content},
        206: {
            "description": "the byte range asked for (several: multipart/byteranges)",
            "content": content | {"multipart/byteranges": _BINARY},
        },
        304: {"description": "the client's copy (If-None-Match) is current"},
        307: {"description": "with an object store: the file's presigned URL (Location)"},
        410: {"model": ErrorBody, "description": "the stored file is gone"},
        416: {"model": ErrorBody, "description": "the range lies past the end of the file"},
    }


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


def _check_range(request: Request, path: Path, etag: str) -> None:
    """Refuse a bad Range in the JSON error shape (Starlette would answer in plain text)."""
    http_range = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if http_range is None or (if_range is not None and if_range != etag):
        return  # no range, or one that will be ignored: the whole file is sent
    size = path.stat().st_size
    try:
        FileResponse._parse_range_header(http_range, size)
    except MalformedRangeHeader as err:
        message = f"the Range header is malformed: {err.content}"
        raise ApiError(400, "malformed_range", message) from None
    except RangeNotSatisfiable:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"the range starts past the end of the {size}-byte file",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


def file_response(
    request: Request,
    path: Path,
    *,
    sha256: str,
    filename: str,
    media_type: str,
    inline: bool = False,
) -> Response:
    """The file, a 206 part of it, or 304 when the client's copy is current."""
    if not path.is_file():
        raise ApiError(410, "content_gone", "the stored file is missing from the server's storage")
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    _check_range(request, path, etag)
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        headers=headers,
        content_disposition_type=_disposition_type(media_type, inline),
    )


def _disposition_type(media_type: str, inline: bool) -> str:
    # inline: a page's <video> or <img> shows it in place; the name still names a download
    return "inline" if inline and media_type.startswith(INLINE_TYPES) else "attachment"


def content_disposition(filename: str, kind: str) -> str:
    """The Content-Disposition header Starlette's FileResponse sends for this name."""
    quoted = quote(filename)
    if quoted != filename:
        return f"{kind}; filename*=utf-8''{quoted}"
    return f'{kind}; filename="{filename}"'


def stored_response(
    request: Request,
    store: Store,
    settings: Settings,
    key: str,
    *,
    sha256: str,
    filename: str,
    media_type: str,
    inline: bool = False,
) -> Response:
    """A stored file: served from a local store, or a presigned URL of the object store."""
    path = store.local_file(key)
    if path is not None:
        return file_response(
            request, path, sha256=sha256, filename=filename, media_type=media_type, inline=inline
        )
    return presigned_response(
        request,
        store,
        settings,
        key,
        sha256=sha256,
        disposition=content_disposition(filename, _disposition_type(media_type, inline)),
        media_type=media_type,
    )


def presigned_response(
    request: Request,
    store: Store,
    settings: Settings,
    key: str,
    *,
    sha256: str,
    disposition: str,
    media_type: str,
) -> Response:
    """304, or a redirect to (or JSON naming) a presigned URL answering with these headers."""
    from core.objectstore import S3Store

    assert isinstance(store, S3Store), "only the object store presigns"
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if not store.exists(key):
        raise ApiError(410, "content_gone", "the stored file is missing from the server's storage")
    url = store.presigned_url(key, disposition=disposition, media_type=media_type)
    if settings.presign_downloads == "url":
        body = {"url": url, "expires_in": settings.presign_seconds, "etag": etag}
        return JSONResponse(body, headers=headers)
    return RedirectResponse(url, status_code=307, headers=headers)
