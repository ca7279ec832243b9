"""Reading the metadata of our safetensors files: format and version checked before any tensor."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError, safe_open

from model.errors import CheckpointError


def read_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's metadata, read without its tensors; CheckpointError if it has none."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="np") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({err})") from None


def checked_metadata(path: Path, expected_format: str, version: str) -> dict[str, str]:
    """The file's metadata, if it is a safetensors file of `expected_format` and `version`."""
    metadata = read_metadata(path)
    if metadata.get("format") != expected_format:
        raise CheckpointError(f"{path}: not a {expected_format} file")
    if metadata.get("format_version") != version:
        raise CheckpointError(
            f"{path}: format version {metadata.get('format_version')}, this dyngen reads {version}"
        )
    return metadata
