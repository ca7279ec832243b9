"""Caps on what a request may hold open: uploads and event streams per API key, probes at once.

The counts live in this API process only: behind a load balancer with N API processes a key
may hold N times its cap. That is the bound that matters here: each process's own pool,
threads and CPU.
"""

from __future__ import annotations

import threading
from collections import Counter

from api.errors import ApiError

OPEN_MODE = "(open mode)"  # the one caller of a server without API keys
PROBE_RETRY_SECONDS = 5


class Slot:
    """One unit of a quota, held until `release` (which may be called more than once)."""

    def __init__(self, owner: KeySlots, key: str) -> None:
        self._owner = owner
        self._key = key
        self._released = False

    def release(self) -> None:
        """Give the unit back; later calls do nothing."""
        if not self._released:
            self._released = True
            self._owner.give_back(self._key)


class KeySlots:
    """At most `limit` things of one kind open per API key; the next one is 429."""

    def __init__(self, what: str, code: str, limit: int) -> None:
        self.what = what
        self.code = code
        self.limit = limit
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, owner_id: str | None) -> Slot:
        """A slot for this key, or ApiError 429 when it already holds `limit`."""
        key = owner_id or OPEN_MODE
        with self._lock:
            if self._held[key] >= self.limit:
                raise self._refusal()
            self._held[key] += 1
        return Slot(self, key)

    def give_back(self, key: str) -> None:
        """Called by Slot.release."""
        with self._lock:
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]

    def held(self, owner_id: str | None) -> int:
        """How many this key holds now."""
        with self._lock:
            return self._held[owner_id or OPEN_MODE]

    def _refusal(self) -> ApiError:
        return ApiError(
            429,
            self.code,
            f"this API key already has {self.limit} {self.what} open on this server; "
            "wait for one to finish",
            details={"limit": self.limit},
            headers={"Retry-After": "1"},
        )


class ProbeGate:
    """At most `limit` uploads decoded at once in this process; the next is refused, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    def enter(self) -> None:
        """Take a place, or ApiError 503 with Retry-After when all are busy."""
        if not self._free.acquire(blocking=False):
            raise ApiError(
                503,
                "probes_busy",
                f"this server is already checking {self.limit} uploads; try again shortly",
                details={"limit": self.limit},
                headers={"Retry-After": str(PROBE_RETRY_SECONDS)},
            )

    def leave(self) -> None:
        """Give the place back."""
        self._free.release()
