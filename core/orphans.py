"""Stored files the database doesn't know: found and deleted after a grace period.

Every terminal path deletes its own files, but a process can die between publishing a
file and committing its row (an upload, a job's outputs) or before it cleans a finished
job's scratch. The sweeper runs this now and then; the grace period covers the moment
between a publish and its commit.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.jobs import TERMINAL
from core.storage import ArtifactStore
from core.tables import Artifact, Job, Video

log = logging.getLogger("dyngen.worker")
BATCH = 500  # keys per IN (...) query


def sweep_orphans(*, session: Session, store: ArtifactStore, grace_seconds: float) -> int:
    """Delete files without rows, and finished jobs' leftovers, older than the grace period;
    returns how many files or folders went."""
    cutoff = time.time() - grace_seconds
    removed = _unrecorded_files(session, store, cutoff)
    removed += _finished_job_dirs(session, store, cutoff)
    if removed:
        log.info("orphan check: deleted %d stored file(s) or folder(s) without a row", removed)
    return removed


def _old(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _unrecorded_files(session: Session, store: ArtifactStore, cutoff: float) -> int:
    """Uploads under videos/ and outputs under artifacts/ that no row names."""
    files = [p for p in _files(store.root / "videos", store.root / "artifacts") if _old(p, cutoff)]
    keys = {p.relative_to(store.root).as_posix(): p for p in files}
    known = _known_keys(session, list(keys))
    removed = 0
    for key, path in keys.items():
        if key not in known:
            path.unlink(missing_ok=True)
            removed += 1
            if path.parent.parent == store.root / "artifacts":
                _remove_if_empty(path.parent)
    return removed


def _files(*roots: Path) -> Iterable[Path]:
    for root in roots:
        if root.exists():
            yield from (p for p in root.rglob("*") if p.is_file())


def _known_keys(session: Session, keys: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        for table in (Video, Artifact):
            stmt = select(table.storage_key).where(table.storage_key.in_(batch))
            known.update(session.scalars(stmt))
    return known


def _finished_job_dirs(session: Session, store: ArtifactStore, cutoff: float) -> int:
    """Resume state and scratch folders of jobs that ended (or no longer exist)."""
    found: dict[str, list[Path]] = {}
    resume = store.root / "resume"
    if resume.exists():
        for path in resume.iterdir():
            found.setdefault(path.name, []).append(path)
    if store.tmp.exists():
        for path in store.tmp.glob("job-*-*"):
            found.setdefault(path.name[len("job-") :].rsplit("-", 1)[0], []).append(path)
    ended = _ended_jobs(session, list(found))
    removed = 0
    for job_id, paths in found.items():
        if job_id in ended:
            for path in paths:
                if _old(path, cutoff):
                    shutil.rmtree(path, ignore_errors=True)
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


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        folder.rmdir()
