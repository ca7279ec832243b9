"""Stored files the database doesn't know: found and deleted after a grace period.

Every terminal path deletes its own files, but a process can die between publishing a
file and committing its row (an upload, a job's outputs) or before it cleans a finished
job's scratch. The sweeper runs this now and then; the grace period covers the moment
between a publish and its commit.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.job_states import TERMINAL
from core.storage import Leftover, Store
from core.tables import Artifact, Job, Video

log = logging.getLogger("dyngen.worker")
BATCH = 500  # keys per IN (...) query


def sweep_orphans(*, session: Session, store: Store, grace_seconds: float) -> int:
    """Delete files without rows, and finished jobs' leftovers, older than the grace period;
    returns how many files or folders went."""
    cutoff = time.time() - grace_seconds
    removed = _unrecorded_files(session, store, cutoff)
    removed += _finished_job_leftovers(session, store, cutoff)
    if removed:
        log.info("orphan check: deleted %d stored file(s) or folder(s) without a row", removed)
    return removed


def _unrecorded_files(session: Session, store: Store, cutoff: float) -> int:
    """Uploads under videos/ and outputs under artifacts/ that no row names."""
    keys = [
        key
        for prefix in ("videos/", "artifacts/")
        for key, mtime in store.stored_keys(prefix)
        if mtime < cutoff
    ]
    known = _known_keys(session, keys)
    removed = 0
    for key in keys:
        if key not in known:
            store.discard(key)
            removed += 1
    return removed


def _known_keys(session: Session, keys: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        for table in (Video, Artifact):
            stmt = select(table.storage_key).where(table.storage_key.in_(batch))
            known.update(session.scalars(stmt))
    return known


def _finished_job_leftovers(session: Session, store: Store, cutoff: float) -> int:
    """Resume state and scratch folders of jobs that ended (or no longer exist)."""
    found: dict[str, list[Leftover]] = {}
    for leftover in store.job_leftovers():
        found.setdefault(leftover.job_id, []).append(leftover)
    ended = _ended_jobs(session, list(found))
    removed = 0
    for job_id in ended:
        for leftover in found[job_id]:
            if leftover.mtime < cutoff:
                leftover.drop()
                removed += 1
    return removed


def _ended_jobs(session: Session, job_ids: list[str]) -> set[str]:
    """Of these ids, those whose job is finished or gone."""
    live: set[str] = set()
    for start in range(0, len(job_ids), BATCH):
        batch = job_ids[start : start + BATCH]
        stmt = select(Job.id).where(Job.id.in_(batch), Job.status.not_in(TERMINAL))
        live.update(session.scalars(stmt))
    return set(job_ids) - live
