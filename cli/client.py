"""A typed Python client of the dyngen API, on httpx.

    from cli.client import Client

    with Client("http://127.0.0.1:8000", api_key=None) as dg:
        video = dg.upload("clip.mp4")
        job = dg.wait(dg.train([video.id], {"epochs": 30}).id, on_progress=print)
        ...

Every call returns the API's own response models (api/schemas.py); a refusal raises
`ApiError` carrying the JSON error's status, code, message and details.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from api.schemas import ArtifactRead, JobEventRead, JobRead, ModelRead, Page, VideoRead
from core.job_states import JobType
from core.storage import file_sha256

CHUNK = 1024 * 1024
RECONNECTS, RECONNECT_SECONDS = 10, 2.0  # a dropped event stream: tries in a row, and pause
ProgressCallback = Callable[[dict[str, Any]], None]


class ApiError(Exception):
    """A request the API refused: its HTTP status and the error's code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class Client:
    """One API (base URL and key); use it as a context manager or call `close`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # downloads from an object store answer 307 to a presigned URL; httpx drops the
        # Authorization header when a redirect leaves the API's origin
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=True,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    # videos
    def upload(self, path: str | Path) -> VideoRead:
        """Upload a video (or mask file), streamed from disk."""
        return VideoRead.model_validate(self._send_file("/v1/videos", Path(path)))

    def get_video(self, video_id: str) -> VideoRead:
        """One uploaded video."""
        return VideoRead.model_validate(self._json("GET", f"/v1/videos/{video_id}"))

    def delete_video(self, video_id: str) -> None:
        """Delete an upload (409 `video_in_use` while an unfinished job uses it)."""
        self._json("DELETE", f"/v1/videos/{video_id}")

    # jobs
    def create_job(self, body: dict[str, Any]) -> JobRead:
        """Queue a job from a raw body (`type` train or synthesize)."""
        return JobRead.model_validate(self._json("POST", "/v1/jobs", json=body))

    def train(
        self,
        video_ids: list[str],
        config: dict[str, Any] | None = None,
        *,
        seed: int = 0,
        mask: dict[str, Any] | None = None,
    ) -> JobRead:
        """Queue a training job on uploaded videos."""
        body: dict[str, Any] = {"type": JobType.TRAIN, "video_ids": video_ids, "seed": seed}
        if config is not None:
            body["config"] = config
        if mask is not None:
            body["mask"] = mask
        return self.create_job(body)

    def synthesize(
        self, model_id: str, config: dict[str, Any] | None = None, *, seed: int = 0
    ) -> JobRead:
        """Queue a synthesis job from a model."""
        body: dict[str, Any] = {"type": JobType.SYNTHESIZE, "model_id": model_id, "seed": seed}
        if config is not None:
            body["config"] = config
        return self.create_job(body)

    def get_job(self, job_id: str) -> JobRead:
        """One job: status, progress, error, artifacts."""
        return JobRead.model_validate(self._json("GET", f"/v1/jobs/{job_id}"))

    def list_jobs(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[JobRead]:
        """One page of jobs, newest first (pass `next_cursor` back as `cursor`)."""
        params = {"status": status, "type": type, "limit": limit, "cursor": cursor}
        found = self._json("GET", "/v1/jobs", params={k: v for k, v in params.items() if v})
        return Page[JobRead].model_validate(found)

    def cancel(self, job_id: str) -> JobRead:
        """Cancel a queued job, or ask a running one to stop after its epoch."""
        return JobRead.model_validate(self._json("POST", f"/v1/jobs/{job_id}/cancel"))

    def delete_job(self, job_id: str) -> None:
        """Delete a finished job and its artifacts (its model stays)."""
        self._json("DELETE", f"/v1/jobs/{job_id}")

    def events(
        self, job_id: str, after: int = 0, *, timeout: float | None = None
    ) -> Iterator[JobEventRead]:
        """The job's events from `after` on, live (server-sent events) until it ends; a
        dropped stream is resumed from the last event seen. TimeoutError past `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            try:
                for event in self._stream_events(job_id, after, deadline):
                    after, failures = event.id, 0
                    yield event
                return
            except httpx.TransportError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"job {job_id} has not ended in {timeout} s") from None
                # the server restarted or a proxy cut the stream: resume where it stopped
                failures += 1
                if failures > RECONNECTS:
                    raise
                time.sleep(RECONNECT_SECONDS)

    def wait(
        self,
        job_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> JobRead:
        """Follow the job until it ends; `on_progress` gets each progress event's data.
        TimeoutError if it still runs after `timeout` seconds."""
        for event in self.events(job_id, timeout=timeout):
            if event.kind == "progress" and on_progress is not None:
                on_progress(event.data)
        return self.get_job(job_id)

    # models
    def import_model(self, path: str | Path) -> ModelRead:
        """Import a checkpoint written by `dyngen train` (model.safetensors)."""
        return ModelRead.model_validate(self._send_file("/v1/models", Path(path)))

    def get_model(self, model_id: str) -> ModelRead:
        """One model and its checkpoint."""
        return ModelRead.model_validate(self._json("GET", f"/v1/models/{model_id}"))

    def list_models(self, *, limit: int = 50, cursor: str | None = None) -> Page[ModelRead]:
        """One page of models, newest first."""
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return Page[ModelRead].model_validate(self._json("GET", "/v1/models", params=params))

    def delete_model(self, model_id: str) -> None:
        """Delete a model and its checkpoint (409 `model_in_use` while a synthesis uses it)."""
        self._json("DELETE", f"/v1/models/{model_id}")

    # artifacts
    def download(self, artifact: ArtifactRead, path: str | Path) -> Path:
        """Download an artifact to `path` (a folder: under its own name). The bytes land in
        `.NAME.part` first and are renamed once their sha256 checks out; a download cut
        short resumes from that partial file with a Range request."""
        target = Path(path)
        if target.is_dir():
            target = target / artifact.filename
        partial = target.with_name(f".{target.name}.part")
        self._fetch(artifact.url, partial)
        if file_sha256(partial) != artifact.sha256:
            partial.unlink()
            raise ApiError(0, "checksum_mismatch", f"{artifact.url}: the bytes don't match")
        os.replace(partial, target)
        return target

    # plumbing
    def _fetch(self, url: str, partial: Path) -> None:
        """Append the rest of the file to `partial` (all of it where the server sends 200)."""
        have = partial.stat().st_size if partial.exists() else 0
        # no If-Range: an artifact never changes, the sha256 check catches a bad partial,
        # and an object store's ETag (an MD5) would never match ours
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.http.stream("GET", url, headers=headers) as response:
            if response.status_code == 416:  # the partial file is already whole
                return
            _raise_for_error(response, read=True)
            mode = "ab" if response.status_code == 206 else "wb"
            with partial.open(mode) as f:
                for block in response.iter_bytes(CHUNK):
                    f.write(block)

    def _stream_events(
        self, job_id: str, after: int, deadline: float | None
    ) -> Iterator[JobEventRead]:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
        # keep-alives come every 15 s; a deadline sooner than a minute ends the read then
        read = 60.0 if deadline is None else min(60.0, max(0.1, deadline - time.monotonic()))
        timeout = httpx.Timeout(self.http.timeout.connect, read=read)
        url = f"/v1/jobs/{job_id}/events"
        with self.http.stream("GET", url, headers=headers, timeout=timeout) as response:
            _raise_for_error(response, read=True)
            kind = None
            for line in response.iter_lines():
                if deadline is not None and time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the deadline passed")  # see `events`
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind == "end":
                    return
                elif line.startswith("data: "):
                    yield JobEventRead.model_validate(json.loads(line.removeprefix("data: ")))

    def _send_file(self, url: str, path: Path) -> Any:
        with path.open("rb") as f:  # httpx streams the open file in chunks
            return self._json("POST", url, files={"file": (path.name, f)})

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.http.request(method, url, **kwargs)
        _raise_for_error(response)
        return response.json() if response.content else None


def _raise_for_error(response: httpx.Response, *, read: bool = False) -> None:
    """ApiError for a 4xx or 5xx, from the API's JSON error where there is one."""
    if response.status_code < 400:
        return
    if read:
        response.read()
    try:
        error = response.json()["error"]
        code, message, details = error["code"], error["message"], error.get("details")
    except (ValueError, KeyError, TypeError):  # not our JSON error: a proxy's page, say
        code = f"http_{response.status_code}"
        message, details = response.text[:200] or code, None
    raise ApiError(response.status_code, code, message, details)
