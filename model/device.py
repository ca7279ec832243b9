"""Choosing where tensors live."""

from __future__ import annotations

import torch

from model.errors import DyngenError


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when present, else cpu; asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DyngenError("--device cuda asked for, but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise DyngenError(f"device {name!r}: expected auto, cpu or cuda")
    return torch.device(name)
