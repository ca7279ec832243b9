"""What a run wrote: file descriptions, result records, and JSON written atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.files import atomic_path


@dataclass(frozen=True)
class OutputFile:
    """One file a run wrote."""

    kind: str
    path: Path
    media_type: str


@dataclass
class SynthesisResult:
    """What a synthesis run wrote and measured."""

    files: list[OutputFile]
    metrics: dict[str, object]


MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".gif": "image/gif",
    ".png": "image/png",
    ".json": "application/json",
    ".safetensors": "application/octet-stream",
}


def describe(kind: str, path: Path) -> OutputFile:
    """Describe a written file."""
    return OutputFile(kind, path, MEDIA_TYPES.get(path.suffix, "application/octet-stream"))


def json_safe(value: Any) -> Any:
    """Infinities and NaN as null, recursively, so the JSON is strict."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: Path, content: dict[str, Any]) -> Path:
    """Strict JSON written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_safe(content), indent=2) + "\n")
    return path
