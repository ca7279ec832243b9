"""The process's "stop soon" flag: set when the worker is told to shut down (a deploy, SIGTERM).

A running job sees it at its next epoch, saves its resume state and goes back to the queue;
that is an interruption, not a user's cancel, so the job is not ended.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Ask the running job to stop and give itself back (safe from a signal handler)."""
    _requested.set()


def requested() -> bool:
    """Whether this worker process is shutting down."""
    return _requested.is_set()
