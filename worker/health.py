"""The worker's health file, for `dyngen worker-health` (the compose healthcheck).

A `--pool solo` worker running a job answers no broker ping, so "does Celery answer" is the
wrong question. A thread in the worker writes the file every heartbeat while the worker is
idle, or while its job's lease heartbeats keep succeeding; a stopped or frozen process (or a
job that could not renew its lease for a whole lease) lets the file go stale.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from core.settings import Settings

log = logging.getLogger("dyngen.worker")

_lock = threading.Lock()
_job_alive_at: float | None = None  # monotonic time of the running job's last sign of life


def job_started() -> None:
    """A job began in this process: from now on its heartbeats say whether it is alive."""
    job_alive()


def job_alive() -> None:
    """The running job renewed its lease or wrote progress."""
    global _job_alive_at
    with _lock:
        _job_alive_at = time.monotonic()


def job_ended() -> None:
    """No job runs any more: the worker is idle."""
    global _job_alive_at
    with _lock:
        _job_alive_at = None


def healthy(lease_seconds: float) -> bool:
    """Idle, or running a job whose last sign of life is younger than a lease."""
    with _lock:
        alive_at = _job_alive_at
    return alive_at is None or time.monotonic() - alive_at < lease_seconds


def touch(path: Path) -> None:
    """Write the time into the file (a temp name, then a rename: readers never see half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(f"{time.time():.3f}\n")
    os.replace(temp, path)


def age(path: Path) -> float | None:
    """Seconds since the file was last written; None when there is none."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


class HealthBeat:
    """The thread that keeps the health file fresh while the worker is healthy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="health-beat", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            if healthy(self.settings.lease_seconds):
                try:
                    touch(self.settings.health_file)
                except OSError as err:
                    log.warning("could not write the health file (%s)", err)
            if self._stop.wait(self.settings.heartbeat_seconds):
                return
