"""Streaming a multipart upload straight into the store, refusing oversize bodies early.

Starlette's form parser spools the whole file before the route runs, so a 10 GB upload
would fill the disk before anyone could say no. This parser writes the `file` part to a
staged file chunk by chunk and stops reading the moment the limit is passed. Every byte of
the body counts toward the limit (other parts are parsed and dropped, never stored), the
body must end with its closing boundary, and a client that stops sending is dropped.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from api.errors import ApiError
from core.storage import Staged, Store

FORM_OVERHEAD = 64 * 1024  # headers, boundaries and small fields around the file part
SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")


@dataclass
class Upload:
    """A received file, staged (not yet published) in the store."""

    staged: Staged
    filename: str

    @property
    def suffix(self) -> str:
        """The filename's extension if it is a plain one, else ''."""
        return safe_suffix(self.filename)


def safe_suffix(filename: str) -> str:
    """The filename's extension if it is a plain one, else ''."""
    suffix = PurePosixPath(filename).suffix.lower()
    return suffix if SAFE_SUFFIX.match(suffix) else ""


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    is_file: bool = False


def clean_filename(raw: str | None) -> str:
    """The base name a client gave, without directories or control characters."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"\\/').strip()
    # "." and ".." name directories, not files: never hand them back as a download's name
    return name[:200] if name.strip(".") else "upload"


class _FileReceiver:
    """Callbacks for python-multipart that route the `file` part's bytes to a staged file."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.part = _PartState()
        self.filename: str | None = None
        self.pending: list[bytes] = []  # file bytes parsed from the current chunk
        self.received = 0
        self.found = False
        self.ended = False  # the closing boundary was parsed

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self.part.header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self.part.header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.ended = True

    def _part_begin(self) -> None:
        self.part = _PartState()

    def _header_end(self) -> None:
        self.part.headers[bytes(self.part.header_field).lower()] = bytes(self.part.header_value)
        self.part.header_field.clear()
        self.part.header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("latin-1")
        if name == "file" and not self.found:
            self.part.is_file = True
            self.found = True
            self.filename = clean_filename(options.get(b"filename", b"").decode("utf-8", "replace"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            self.received += end - start
            if self.received > self.limit:
                raise _TooLarge()
            self.pending.append(bytes(data[start:end]))


class _TooLarge(Exception):
    pass


def too_large(limit: int) -> ApiError:
    """The 413 of an upload over the configured limit."""
    return ApiError(
        413,
        "upload_too_large",
        f"the upload is larger than this server's limit of {limit} bytes",
        details={"limit_bytes": limit},
    )


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "upload the video as multipart/form-data with a `file` part "
            "(curl -F file=@clip.mp4 ...)",
        )
    return options[b"boundary"]


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise too_large(limit)


async def receive_upload(
    request: Request,
    store: Store,
    limit: int,
    idle_seconds: float,
    key_for: Callable[[str], str] | None = None,
) -> Upload:
    """Stream the request's `file` part into a staged file; 4xx for anything but one file.
    `key_for(suffix)` names the key it will be published at, once the file's name is known
    (an object store then uploads it there directly, instead of copying it at publication)."""
    boundary = _boundary(request)
    _check_declared_length(request, limit)
    receiver = _FileReceiver(limit)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    staged = await run_in_threadpool(store.stage)
    try:
        chunks = _chunks(request, limit, idle_seconds)
        await _pump(chunks, parser, receiver, staged, key_for)
    except BaseException:
        await run_in_threadpool(staged.discard)
        raise
    if not receiver.found:
        await run_in_threadpool(staged.discard)
        raise ApiError(422, "missing_file", "the form has no `file` part; send -F file=@clip.mp4")
    if staged.bytes == 0:
        await run_in_threadpool(staged.discard)
        raise ApiError(422, "empty_file", "the uploaded file is empty")
    try:
        await run_in_threadpool(staged.sync)  # an object store: the last part is sent
    except BaseException:
        await run_in_threadpool(staged.discard)
        raise
    return Upload(staged, receiver.filename or "upload")


def _write_all(staged: Staged, blocks: list[bytes]) -> None:
    for block in blocks:
        staged.write(block)


async def _chunks(request: Request, limit: int, idle_seconds: float) -> AsyncIterator[bytes]:
    """The body's chunks; 413 past `limit` plus the form's overhead, 408 when the client stalls."""
    stream = request.stream().__aiter__()
    total = 0
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), idle_seconds)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _stalled(idle_seconds) from None
        total += len(chunk)
        # The whole body counts: other parts are parsed and dropped, but still read.
        if total > limit + FORM_OVERHEAD:
            raise _TooLarge()
        yield chunk


def _stalled(idle_seconds: float) -> ApiError:
    return ApiError(
        408,
        "upload_stalled",
        f"the upload sent nothing for {idle_seconds:g} s and was dropped",
        details={"idle_seconds": idle_seconds},
    )


def _unterminated() -> ApiError:
    return ApiError(
        400,
        "malformed_multipart",
        "the multipart body ended without its closing boundary (the upload was cut short?)",
    )


async def _pump(
    chunks: AsyncIterator[bytes],
    parser: MultipartParser,
    receiver: _FileReceiver,
    staged: Staged,
    key_for: Callable[[str], str] | None,
) -> None:
    """Feed the body to the parser and its file bytes to disk, one network chunk at a time."""
    try:
        async for chunk in chunks:
            parser.write(chunk)
            if key_for is not None and receiver.found:
                staged.name(key_for(safe_suffix(receiver.filename or "")))
                key_for = None
            if receiver.pending:
                blocks, receiver.pending = receiver.pending, []
                await run_in_threadpool(_write_all, staged, blocks)
        parser.finalize()
    except _TooLarge:
        raise too_large(receiver.limit) from None
    except MultipartParseError as err:
        message = f"the multipart body is malformed: {err}"
        raise ApiError(400, "malformed_multipart", message) from None
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the upload was interrupted") from None
    if not receiver.ended:
        raise _unterminated()


def multipart_file_body(description: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes one file as multipart form field `file`."""
    file = {"type": "string", "format": "binary", "description": description}
    schema = {"type": "object", "required": ["file"], "properties": {"file": file}}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }
