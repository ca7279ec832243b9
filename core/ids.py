"""Identifiers that sort by creation time, so an id is also a pagination cursor."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """A fresh id like `job_0640f3a1b2c4d8e9f0a1b2c3d`: prefix, microseconds, randomness."""
    return f"{prefix}_{time.time_ns() // 1000:013x}{secrets.token_hex(6)}"
