"""The catalogue of error codes that name a problem with a model/ input: each model error
class carries its `code` (model/errors.py and beside it), and this maps the code to the HTTP
status the API answers with and to what the CLI says it means. A job that fails on one keeps
the same code in `error.code`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ServiceError
from model.errors import DyngenError


@dataclass(frozen=True)
class ErrorCode:
    """One code: its HTTP status at the API and a line saying what it means."""

    status: int
    meaning: str


CATALOGUE: dict[str, ErrorCode] = {
    "invalid_input": ErrorCode(422, "the input can't be used"),
    "invalid_video": ErrorCode(422, "not a readable video, or too few or too small frames"),
    "video_too_long": ErrorCode(422, "more frames than this server accepts"),
    "video_too_large": ErrorCode(422, "frames wider or taller than this server accepts"),
    "video_too_costly": ErrorCode(422, "decoding would pass this server's pixel or time bound"),
    "invalid_image": ErrorCode(422, "not a readable still image"),
    "image_too_large": ErrorCode(422, "an image wider or taller than this server accepts"),
    "invalid_mask": ErrorCode(422, "a mask that can't be read or doesn't fit the video"),
    "mask_too_large": ErrorCode(422, "a mask file whose arrays unpack past the limit"),
    "invalid_checkpoint": ErrorCode(422, "not a dyngen model file, or a damaged one"),
    "unsupported_checkpoint_version": ErrorCode(422, "a model file of another format version"),
    "checkpoint_mismatch": ErrorCode(422, "tensors that don't match the model's config"),
    "training_diverged": ErrorCode(422, "the loss became NaN or infinite"),
}


def entry(code: str) -> ErrorCode:
    """The catalogue's entry of a code; KeyError for a code a model error forgot to register."""
    return CATALOGUE[code]


def refusal(
    error: DyngenError | type[DyngenError], message: str | None = None, *, details: Any = None
) -> ServiceError:
    """The API's answer to a model error (or error class): its code, the status the catalogue
    gives it, and its text (or `message`, e.g. without a staged file's path)."""
    text = message if message is not None else str(error)
    refused = ServiceError(text, details=details, code=error.code)
    refused.status = entry(error.code).status
    return refused
