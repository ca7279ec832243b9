"""The artifact store in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...).

Keys are the same as the local store's, under the URL's prefix. Objects appear whole or not
at all (a multipart upload is invisible until completed), so publishing is complete-then-row
as with the local rename. What must be a local file (a probe's input, a job's inputs and
outputs, resume state while training) lives in this machine's scratch directory; nothing is
shared between machines but the bucket.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core.storage import (
    Leftover,
    Staged,
    StagedFile,
    StorageUnavailable,
    file_sha256,
    scratch_leftovers,
    sweep_staged_files,
)
from model.config import RESUME_FILE

log = logging.getLogger("dyngen.storage")
PART_BYTES = 8 * 1024 * 1024  # S3 wants parts of 5 MiB or more (but the last)
# Completing or copying a large object takes the server minutes (AWS documents it): those
# calls wait this long for an answer, however short the usual timeout.
SLOW_CALL_SECONDS = 600.0
STAGING = "tmp/"


@dataclass(frozen=True)
class S3Location:
    """A bucket and the key prefix inside it, from `s3://bucket/prefix`."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """The location an `s3://bucket[/prefix]` URL names; ValueError for anything else."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"a storage URL looks like s3://bucket/prefix, not {url!r}")
        prefix = parsed.path.strip("/")
        return cls(parsed.netloc, f"{prefix}/" if prefix else "")


@dataclass(frozen=True)
class S3Options:
    """How the store talks to the server."""

    timeout_seconds: float = 10.0
    retries: int = 3
    public_endpoint: str | None = None  # where clients reach the store (presigned URLs)
    staging_grace_seconds: float = 3600.0  # unfinished uploads older than this are aborted
    presign_seconds: int = 900  # how long a presigned download URL works


def _storage_errors() -> tuple[type[BaseException], ...]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, Boto3Error)


@contextlib.contextmanager
def storage_call(what: str) -> Iterator[None]:
    """Turn the S3 client's failures into StorageUnavailable naming what was being done."""
    try:
        yield
    except _storage_errors() as err:
        if not _missing(err):  # a lookup of something absent is an answer, not a failure
            log.warning("object store: could not %s: %s", what, err)
        raise StorageUnavailable(
            f"the object store is unavailable (could not {what}); try again later"
        ) from err


def _missing(err: BaseException) -> bool:
    """Whether the S3 error says the object is not there."""
    cause = err.__cause__ if isinstance(err, StorageUnavailable) else err
    response = getattr(cause, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}


def s3_client(endpoint: str | None, options: S3Options, read_timeout: float = 0) -> Any:
    """A boto3 S3 client: endpoint and credentials from the standard AWS_* variables."""
    import boto3
    from botocore.config import Config

    custom = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        connect_timeout=options.timeout_seconds,
        read_timeout=max(read_timeout, options.timeout_seconds),
        retries={"max_attempts": options.retries, "mode": "standard"},
        signature_version="s3v4",
        # MinIO, moto and most self-hosted servers answer path-style requests only
        s3={"addressing_style": "path" if custom else "auto"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


class S3Staged:
    """An upload streamed to a multipart upload part by part, with a local copy to probe.

    The multipart upload begins with the first part, at the key `name` gave (the key it will
    be published at: completing it publishes it) or else at a staging key (then publishing
    copies it)."""

    def __init__(self, store: S3Store) -> None:
        self._store = store
        self._local = StagedFile(store.uploads / f"upload-{uuid.uuid4().hex}.part")
        self.path = self._local.path
        self.key = store.full(f"{STAGING}upload-{uuid.uuid4().hex}.part")
        self.upload_id: str | None = None
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._sealed = False

    def name(self, key: str) -> None:
        """Upload to `key`, the store key it will be published at (before the first part)."""
        if self.upload_id is None:
            self.key = self._store.full(key)

    def _begin(self) -> str:
        if self.upload_id is None:
            with storage_call("start an upload"):
                created = self._store.client.create_multipart_upload(
                    Bucket=self._store.bucket, Key=self.key
                )
            self.upload_id = str(created["UploadId"])
        return self.upload_id

    @property
    def bytes(self) -> int:
        """Bytes received so far."""
        return self._local.bytes

    @property
    def sha256(self) -> str:
        """Hex sha256 of what was received."""
        return self._local.sha256

    def write(self, data: builtins.bytes) -> None:
        """Append `data`; a full part goes to the store at once (memory holds one part)."""
        assert not self._sealed, "write after sync"
        self._local.write(data)
        self._buffer += data
        if len(self._buffer) >= PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        upload_id = self._begin()
        number = len(self._parts) + 1
        with storage_call("store an upload's part"):
            sent = self._store.client.upload_part(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(self._buffer),
            )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})
        self._buffer.clear()

    def sync(self) -> None:
        """Send the last part (the upload is whole in the store, not yet visible)."""
        if not self._sealed:
            self._local.sync()
            if self._buffer or not self._parts:
                self._send_part()
            self._sealed = True

    def complete(self) -> None:
        """Make the staged object visible (at its staging key)."""
        self.sync()
        with storage_call("finish an upload"):
            self._store.slow_client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self._parts},
            )

    def abort(self) -> None:
        """Drop the multipart upload; a store that is down keeps it until the staging sweep."""
        if self.upload_id is None:
            return
        with contextlib.suppress(StorageUnavailable), storage_call("abort an upload"):
            self._store.client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self.key, UploadId=self.upload_id
            )

    def release(self) -> None:
        """Delete the local copy (the probe is done with it)."""
        self._local.discard()

    def discard(self) -> None:
        """Give the upload up: abort it in the store, delete the local copy."""
        self.abort()
        self.release()


class S3Store:
    """Files by key in a bucket; this machine's scratch space under `root`."""

    def __init__(self, location: S3Location, scratch: Path, options: S3Options) -> None:
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.root = scratch
        self.uploads = scratch / "uploads"
        self.options = options
        # when this process first saw each unfinished upload: some servers (moto) report a
        # fixed date as its start, so the server's word alone never makes one old enough
        self._seen_uploads: dict[str, float] = {}
        self.client = s3_client(None, options)
        self._presigner = (
            s3_client(options.public_endpoint, options) if options.public_endpoint else self.client
        )

    @functools.cached_property
    def slow_client(self) -> Any:
        """A client for calls the server may take minutes to answer (complete, copy)."""
        return s3_client(None, self.options, read_timeout=SLOW_CALL_SECONDS)

    def full(self, key: str) -> str:
        """The object key of the store key `key`."""
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"storage key {key!r} leaves the store")
        return f"{self.prefix}{key}"

    def ensure(self) -> None:
        """Create the local scratch directories."""
        self.uploads.mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)

    def stage(self) -> Staged:
        """Begin a multipart upload (and the local copy the probe reads)."""
        self.ensure()
        return S3Staged(self)

    def publish(self, staged: Staged, key: str) -> None:
        """Complete the upload at `key` (copied there if it was staged elsewhere); on failure
        nothing is left behind."""
        assert isinstance(staged, S3Staged), "staged by this store"
        copied = staged.key != self.full(key)
        try:
            staged.complete()
            if copied:
                with storage_call("publish an upload"):
                    source = {"Bucket": self.bucket, "Key": staged.key}
                    self.slow_client.copy(source, self.bucket, self.full(key))
        except BaseException:
            staged.abort()
            if copied:
                with contextlib.suppress(StorageUnavailable):
                    self._delete_object(staged.key)
            staged.release()
            raise
        if copied:
            with contextlib.suppress(StorageUnavailable):
                self._delete_object(staged.key)  # else the staging sweep deletes it later
        staged.release()

    def adopt(self, source: Path, key: str) -> tuple[int, str]:
        """Upload a finished file to `key` (multipart when large) and delete it locally."""
        sha256 = file_sha256(source)
        size = source.stat().st_size
        # the transfer manager aborts its multipart upload when a part fails
        with storage_call("store a job's output"):
            self.client.upload_file(str(source), self.bucket, self.full(key))
        source.unlink(missing_ok=True)
        return size, sha256

    def _delete_object(self, object_key: str) -> None:
        with storage_call("delete a stored file"):
            self.client.delete_object(Bucket=self.bucket, Key=object_key)

    def delete(self, key: str) -> None:
        """Remove the object with `key` (no error if it is not there)."""
        self._delete_object(self.full(key))

    def discard(self, key: str) -> None:
        """Remove an artifact's object (there are no folders to tidy)."""
        self.delete(key)

    def local_file(self, key: str) -> Path | None:
        """None: the bytes are served by the store itself (presigned URLs)."""
        return None

    def exists(self, key: str) -> bool:
        """Whether the object with `key` is there."""
        try:
            with storage_call("look up a stored file"):
                self.client.head_object(Bucket=self.bucket, Key=self.full(key))
        except StorageUnavailable as err:
            if _missing(err):
                return False
            raise
        return True

    def presigned_url(self, key: str, *, disposition: str, media_type: str) -> str:
        """A time-limited GET URL of `key` that answers with these headers."""
        params = {
            "Bucket": self.bucket,
            "Key": self.full(key),
            "ResponseContentDisposition": disposition,
            "ResponseContentType": media_type,
        }
        with storage_call("sign a download"):
            url: str = self._presigner.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=self.options.presign_seconds
            )
        return url

    def fetch(self, key: str, work_dir: Path) -> Path:
        """Download `key` into the attempt's scratch folder (once); its local path.
        FileNotFoundError when the store has no such object (as a local store's file)."""
        target = work_dir / ".inputs" / key
        if not target.exists():
            try:
                self._download(key, target, "fetch a job's input")
            except StorageUnavailable as err:
                if _missing(err):
                    raise FileNotFoundError(f"{key}: no such file in the store") from None
                raise
        return target

    def _download(self, key: str, target: Path, what: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with storage_call(what):
                self.client.download_file(self.bucket, self.full(key), str(partial))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def sweep_staging(self) -> int:
        """Delete local staged copies whose writer died, and uploads unfinished for longer
        than the grace period (their API died mid-stream); returns how many."""
        removed = sweep_staged_files(self.uploads) if self.uploads.exists() else 0
        cutoff = time.time() - self.options.staging_grace_seconds
        # every unfinished upload under the prefix: an API's, or a worker's that died mid-part
        with storage_call("list unfinished uploads"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    began = self._began(upload)
                    if time.time() - began >= self.options.staging_grace_seconds:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        for key, mtime in self.stored_keys(STAGING):
            if mtime < cutoff:
                self.delete(key)
                removed += 1
        return removed

    def _began(self, upload: dict[str, Any]) -> float:
        """When an unfinished upload began: the later of the server's word and first sight."""
        seen = self._seen_uploads.setdefault(upload["UploadId"], time.time())
        return max(float(upload["Initiated"].timestamp()), seen)

    def work_dir(self, job_id: str, attempt: int) -> Path:
        """An empty local folder for one attempt's inputs and outputs."""
        path = self.root / "jobs" / f"job-{job_id}-{attempt}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def drop_job_files(self, job_id: str) -> None:
        """Delete a finished job's resume state and this machine's scratch of it; a store
        that is down keeps the state until the orphan check."""
        try:
            self.drop_resume(job_id)
        except StorageUnavailable as err:
            log.warning("job %s: resume state left in the store (%s)", job_id, err)
        for path in (self.root / "jobs").glob(f"job-{job_id}-*"):
            shutil.rmtree(path, ignore_errors=True)

    def _resume_key(self, job_id: str) -> str:
        return f"resume/{job_id}/{RESUME_FILE}"

    def resume_path(self, job_id: str) -> Path:
        """A local copy of the job's resume state from the store (absent when it has none)."""
        path = self.root / "resume" / job_id / RESUME_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._download(self._resume_key(job_id), path, "read a job's resume state")
        except StorageUnavailable as err:
            if not _missing(err):
                raise
            path.unlink(missing_ok=True)  # the store is the truth: no state, no resume
        return path

    def save_resume(self, job_id: str) -> None:
        """Upload the local resume state, so another machine can continue the job."""
        path = self.root / "resume" / job_id / RESUME_FILE
        if path.exists():
            with storage_call("save a job's resume state"):
                self.client.upload_file(str(path), self.bucket, self.full(self._resume_key(job_id)))

    def drop_resume(self, job_id: str) -> None:
        """Delete a job's resume state, in the store and here."""
        shutil.rmtree(self.root / "resume" / job_id, ignore_errors=True)
        self.delete(self._resume_key(job_id))

    def stored_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Every object's key under `prefix` and when it was written."""
        with storage_call("list stored files"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.full(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :], item["LastModified"].timestamp()

    def job_leftovers(self) -> Iterator[Leftover]:
        """Resume state in the store, and attempts' scratch folders on this machine."""
        for key, mtime in list(self.stored_keys("resume/")):
            job_id = key.split("/")[1]
            yield Leftover(job_id, mtime, functools.partial(self.delete, key))
        yield from scratch_leftovers(self.root / "jobs")

    def check(self) -> None:
        """Raise unless an object can be written and deleted (readiness probe)."""
        key = f"{STAGING}ready-{uuid.uuid4().hex}"
        with storage_call("write a probe object"):
            self.client.put_object(Bucket=self.bucket, Key=self.full(key), Body=b"ok")
        self.delete(key)
