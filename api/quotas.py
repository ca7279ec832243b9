"""Caps per API key (requests in progress, open uploads and event streams) and on probes at once.

The counts live in this API process only: behind a load balancer with N API processes a key
may hold N times its cap. That is the bound that matters here: each process's own pool,
threads and CPU.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError, error_response

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


class RequestQuota:
    """ASGI middleware: at most `limit` requests of one API key inside the app at once.

    The rest wait their turn in order, holding nothing but their socket, for up to
    `wait_seconds`, then answer 429. One key's flood of polls thus queues behind itself
    instead of filling the threads and the pool that every other key's requests need.
    Event streams, uploads and downloads, which have caps of their own and hold no
    connection while they last, are not counted.
    """

    def __init__(self, app: ASGIApp, limit: int, wait_seconds: float) -> None:
        self.app = app
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._users: Counter[str] = Counter()  # requests holding or awaiting each gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _long_lived(scope):
            await self.app(scope, receive, send)
            return
        bucket = _bucket(scope)
        gate = self._gates.setdefault(bucket, asyncio.Semaphore(self.limit))
        self._users[bucket] += 1
        try:
            if await self._admitted(gate):
                try:
                    await self.app(scope, receive, send)
                finally:
                    gate.release()
            else:
                await self._refusal()(scope, receive, send)
        finally:
            self._forget(bucket)

    async def _admitted(self, gate: asyncio.Semaphore) -> bool:
        try:
            # asyncio.timeout cancels the acquire itself: a permit is never won and then lost
            async with asyncio.timeout(self.wait_seconds):
                await gate.acquire()
        except TimeoutError:
            return False
        return True

    def _forget(self, bucket: str) -> None:
        # a key with nothing in flight leaves no gate behind: the map stays the size of the load
        self._users[bucket] -= 1
        if self._users[bucket] <= 0:
            del self._users[bucket]
            del self._gates[bucket]

    def _refusal(self) -> JSONResponse:
        message = (
            f"this API key has had {self.limit} requests in progress for {self.wait_seconds:g} s; "
            "slow down"
        )
        details = {"limit": self.limit, "wait_seconds": self.wait_seconds}
        return error_response(
            429, "too_many_requests", message, details, headers={"Retry-After": "1"}
        )


def _bucket(scope: Scope) -> str:
    """Whose request this is: a digest of its Authorization header (no database needed)."""
    header = dict(scope["headers"]).get(b"authorization", b"")
    return hashlib.sha256(header).hexdigest()


def _long_lived(scope: Scope) -> bool:
    """Event streams, uploads and downloads: capped elsewhere, and they hold no connection."""
    path = scope["path"].rstrip("/")
    if scope["method"] == "POST":
        return bool(path == "/v1/videos")
    accept = dict(scope["headers"]).get(b"accept", b"")
    if path.endswith("/events") and b"text/event-stream" in accept:
        return True
    return path.startswith("/v1/artifacts/") or path.endswith("/content")
