"""The artifact store: a local directory; every file lands under a temp name, then is renamed."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from model.config import RESUME_FILE

CHUNK = 1024 * 1024
STAGED_PATTERN = "upload-*.part"
# A staged file is locked a moment after it is created; younger ones are left alone.
STAGING_GRACE_SECONDS = 2.0


class StagedFile:
    """A file being written under a temp name, hashed as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes = 0
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = path.open("xb")
        # The lock lives as long as the writing process: a file nobody holds it on was left
        # by an API that died mid-upload (`ArtifactStore.sweep_staging` deletes those).
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def write(self, data: bytes) -> None:
        """Append `data` to the file and the hash."""
        assert self._file is not None, "write after close"
        self._file.write(data)
        self._hash.update(data)
        self.bytes += len(data)

    def sync(self) -> None:
        """Flush the file to disk so the rename that follows publishes whole bytes."""
        assert self._file is not None, "sync after release"
        self._file.flush()
        os.fsync(self._file.fileno())

    def release(self) -> None:
        """Close the file, which drops its lock (after publishing or deleting it)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def sha256(self) -> str:
        """Hex sha256 of what was written."""
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Delete the temp file (still locked, so no sweeper races us), then close it."""
        self.path.unlink(missing_ok=True)
        self.release()


class ArtifactStore:
    """Files by key under one root directory; keys are relative paths the store chose."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def ensure(self) -> None:
        """Create the root and its temp directory."""
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the file with `key` lives; refuses keys that leave the root."""
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key {key!r} leaves the store")
        return path

    def stage(self) -> StagedFile:
        """A new temp file on the store's filesystem, so publishing it is a rename."""
        self.ensure()
        return StagedFile(self.tmp / f"upload-{uuid.uuid4().hex}.part")

    def publish(self, staged: StagedFile, key: str) -> None:
        """Rename a finished staged file to `key`."""
        staged.sync()
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        staged.release()

    def adopt(self, source: Path, key: str) -> tuple[int, str]:
        """Move a finished file into the store under `key`; returns its size and sha256."""
        digest = hashlib.sha256()
        with source.open("rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        # A move across filesystems is a copy: copy to a temp name first, then rename.
        shutil.move(source, partial)
        os.replace(partial, target)
        # a move keeps the source's age: the orphan check's grace counts from publication
        os.utime(target)
        return target.stat().st_size, digest.hexdigest()

    def delete(self, key: str) -> None:
        """Remove the file with `key`, if it is there."""
        self.path(key).unlink(missing_ok=True)

    def sweep_staging(self) -> int:
        """Delete staged uploads whose writer died (no lock held on them); returns how many."""
        removed = 0
        for path in self.tmp.glob(STAGED_PATTERN):
            if _orphaned(path):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def work_dir(self, job_id: str, attempt: int) -> Path:
        """An empty scratch directory inside the store for one attempt at a job's outputs
        (an attempt's own: a worker that lost its lease never clears its successor's)."""
        path = self.tmp / f"job-{job_id}-{attempt}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def drop_job_files(self, job_id: str) -> None:
        """Delete a finished job's resume state and every attempt's scratch directory."""
        self.drop_resume(job_id)
        for path in self.tmp.glob(f"job-{job_id}-*"):
            shutil.rmtree(path, ignore_errors=True)

    def resume_path(self, job_id: str) -> Path:
        """Where a training job keeps its resume state between attempts."""
        path = self.root / "resume" / job_id / RESUME_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def drop_resume(self, job_id: str) -> None:
        """Delete a job's resume state (it finished, failed or was cancelled)."""
        shutil.rmtree(self.root / "resume" / job_id, ignore_errors=True)

    def check(self) -> None:
        """Raise unless the store can be written (readiness probe)."""
        self.ensure()
        probe = self.tmp / f"ready-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()


def _orphaned(path: Path) -> bool:
    """Whether no live process holds the staged file's lock (and it is past its grace)."""
    try:
        if time.time() - path.stat().st_mtime < STAGING_GRACE_SECONDS:
            return False
        with path.open("rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
    except FileNotFoundError:
        return False
