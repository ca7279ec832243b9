"""One catalogue of error codes: every model error class's code is in it, with its status."""

from __future__ import annotations

import importlib
import pkgutil

import model
from core.error_codes import CATALOGUE, refusal
from model.errors import DyngenError, VideoTooLong


def _subclasses(cls: type[DyngenError]) -> list[type[DyngenError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_model_error_code_is_catalogued() -> None:
    for info in pkgutil.iter_modules(model.__path__):
        importlib.import_module(f"model.{info.name}")  # errors are defined beside their readers
    classes = [DyngenError, *_subclasses(DyngenError)]
    missing = {c.__name__: c.code for c in classes if c.code not in CATALOGUE}
    assert not missing, f"add these codes to core/error_codes.py: {missing}"
    assert all(entry.status in (400, 409, 413, 422) for entry in CATALOGUE.values())


def test_a_refusal_takes_the_catalogues_status_and_the_errors_code() -> None:
    refused = refusal(VideoTooLong, "too long", details={"limit": 3})
    assert (refused.status, refused.code, refused.message) == (422, "video_too_long", "too long")
