"""The artifact store: a local directory; every file lands under a temp name, then is renamed.

`Store` is what the API and the workers use of a store; `ArtifactStore` (here) keeps files in a
local directory, `core.objectstore.S3Store` in an S3-compatible bucket (`core.stores` picks).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from core.errors import ServiceError
from model.config import RESUME_FILE

CHUNK = 1024 * 1024
STAGED_PATTERN = "upload-*.part"
# A staged file is locked a moment after it is created; younger ones are left alone.
STAGING_GRACE_SECONDS = 2.0


class StorageUnavailable(ServiceError):
    """The store could not be reached or refused an operation (the API answers 503)."""

    status = 503
    code = "storage_unavailable"


@dataclass(frozen=True)
class Leftover:
    """A job's resume state or scratch folder: when it was last written, and how to drop it."""

    job_id: str
    mtime: float
    drop: Callable[[], None]


class Staged(Protocol):
    """An upload being received: hashed as it grows, readable locally for the probe."""

    path: Path

    @property
    def bytes(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def name(self, key: str) -> None: ...

    def write(self, data: builtins.bytes) -> None: ...

    def sync(self) -> None: ...

    def discard(self) -> None: ...


class Store(Protocol):
    """What the API and the workers need of a store (a local directory or a bucket)."""

    root: Path  # local: the store; object store: this machine's scratch space

    def ensure(self) -> None: ...

    def stage(self) -> Staged: ...

    def publish(self, staged: Staged, key: str) -> None: ...

    def adopt(self, source: Path, key: str) -> tuple[int, str]: ...

    def delete(self, key: str) -> None: ...

    def discard(self, key: str) -> None: ...

    def local_file(self, key: str) -> Path | None: ...

    def fetch(self, key: str, work_dir: Path) -> Path: ...

    def sweep_staging(self) -> int: ...

    def work_dir(self, job_id: str, attempt: int) -> Path: ...

    def drop_job_files(self, job_id: str) -> None: ...

    def resume_path(self, job_id: str) -> Path: ...

    def save_resume(self, job_id: str) -> None: ...

    def drop_resume(self, job_id: str) -> None: ...

    def stored_keys(self, prefix: str) -> Iterator[tuple[str, float]]: ...

    def job_leftovers(self) -> Iterator[Leftover]: ...

    def check(self) -> None: ...


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

    def name(self, key: str) -> None:
        """Nothing to do: a local file gets its key when it is renamed."""

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

    def publish(self, staged: Staged, key: str) -> None:
        """Rename a finished staged file to `key`."""
        assert isinstance(staged, StagedFile), "staged by this store"
        staged.sync()
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        staged.release()

    def adopt(self, source: Path, key: str) -> tuple[int, str]:
        """Move a finished file into the store under `key`; returns its size and sha256."""
        sha256 = file_sha256(source)
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        # A move across filesystems is a copy: copy to a temp name first, then rename.
        shutil.move(source, partial)
        os.replace(partial, target)
        # a move keeps the source's age: the orphan check's grace counts from publication
        os.utime(target)
        return target.stat().st_size, sha256

    def delete(self, key: str) -> None:
        """Remove the file with `key`, if it is there."""
        self.path(key).unlink(missing_ok=True)

    def discard(self, key: str) -> None:
        """Delete an artifact's file and its folder (artifacts/<id>/) once empty."""
        self.delete(key)
        folder = self.path(key).parent
        if folder.parent == self.root / "artifacts":
            with contextlib.suppress(OSError):  # not empty, or already gone
                folder.rmdir()

    def local_file(self, key: str) -> Path | None:
        """The file to serve for `key` (always local here)."""
        return self.path(key)

    def fetch(self, key: str, work_dir: Path) -> Path:
        """Where a job reads the file with `key`: in place, nothing is copied."""
        return self.path(key)

    def sweep_staging(self) -> int:
        """Delete staged uploads whose writer died (no lock held on them); returns how many."""
        return sweep_staged_files(self.tmp)

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

    def save_resume(self, job_id: str) -> None:
        """Nothing to do: the resume state is written in the store itself."""

    def drop_resume(self, job_id: str) -> None:
        """Delete a job's resume state (it finished, failed or was cancelled)."""
        shutil.rmtree(self.root / "resume" / job_id, ignore_errors=True)

    def stored_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Every file's key under `prefix` (e.g. "videos/") and when it was last written."""
        folder = self.root / prefix
        if not folder.exists():
            return
        for path in folder.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                if path.is_file():
                    yield path.relative_to(self.root).as_posix(), path.stat().st_mtime

    def job_leftovers(self) -> Iterator[Leftover]:
        """Jobs' resume folders and attempts' scratch folders."""
        resume = self.root / "resume"
        if resume.exists():
            yield from _folders(resume.iterdir(), lambda p: p.name)
        if self.tmp.exists():
            yield from _folders(self.tmp.glob("job-*-*"), scratch_job_id)

    def check(self) -> None:
        """Raise unless the store can be written (readiness probe)."""
        self.ensure()
        probe = self.tmp / f"ready-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in CHUNK blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def scratch_job_id(folder: Path) -> str:
    """The job id in an attempt's scratch folder name (job-<id>-<attempt>)."""
    return folder.name[len("job-") :].rsplit("-", 1)[0]


def _folders(paths: Iterator[Path], job_id: Callable[[Path], str]) -> Iterator[Leftover]:
    for path in paths:
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue
        drop = functools.partial(shutil.rmtree, path, ignore_errors=True)
        yield Leftover(job_id(path), mtime, drop)


def scratch_leftovers(root: Path) -> Iterator[Leftover]:
    """Attempts' scratch folders (job-<id>-<attempt>) directly under `root`."""
    if root.exists():
        yield from _folders(root.glob("job-*-*"), scratch_job_id)


def sweep_staged_files(folder: Path) -> int:
    """Delete staged uploads in `folder` whose writer died; returns how many."""
    removed = 0
    for path in folder.glob(STAGED_PATTERN):
        if _orphaned(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


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
