"""`make bench-load`: the API under many polling clients, with and without training beside it.

Starts the real processes on loopback (`dyngen api`, and `dyngen worker` for the training
phase) against PostgreSQL and Redis, then:

1. streams a generated 1 GiB upload and reads the API process's peak RSS (VmHWM);
2. runs `--clients` concurrent clients polling `GET /v1/jobs/{id}` (and listing every
   `--list-every`-th request): alone, then while another client streams real video uploads
   with the job queued and no worker, then with uploads while the worker trains the job;
3. prints requests per second and poll latency percentiles of each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "flag.avi"
GIB = 1024**3
BLOCK = 1024**2
# small enough to train for a while on two CPU cores without starving the API of both
TRAIN = {
    "image_size": 32,
    "frames": 24,
    "chunk_length": 8,
    "base_channels": 8,
    "epochs": 100_000,
    "langevin_steps": 4,
}


@dataclass
class Tally:
    """What one phase measured."""

    polls: list[float] = field(default_factory=list)  # seconds
    lists: list[float] = field(default_factory=list)
    uploads: int = 0
    errors: int = 0
    seconds: float = 0.0

    def summary(self, name: str) -> str:
        """One line of figures."""
        total = len(self.polls) + len(self.lists)
        p50, p99 = (float(np.percentile(self.polls, q)) * 1000 for q in (50, 99))
        return (
            f"{name}: {total / self.seconds:.0f} req/s ({len(self.polls)} polls, "
            f"{len(self.lists)} lists, {self.uploads} uploads, {self.errors} errors in "
            f"{self.seconds:.0f} s); poll p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )


class Service:
    """The API (and optionally a worker) as child processes with their own environment."""

    def __init__(self, tmp: Path, upload_limit: int) -> None:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        self.schema = schema
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DYNGEN_")}
        self.env |= {
            "DYNGEN_DATA_DIR": str(tmp / "data"),
            "DYNGEN_DATABASE_URL": f"{PG_BASE}?options=-csearch_path%3D{schema}",
            "DYNGEN_BROKER_URL": REDIS,
            # a queue of our own: other workers on this Redis never see the benchmark's jobs
            "DYNGEN_QUEUE_NAME": f"bench-{schema}",
            "DYNGEN_AUTH": "apikey",
            "DYNGEN_PORT": str(self.port),
            "DYNGEN_LOG_LEVEL": "warning",
            "DYNGEN_MAX_UPLOAD_BYTES": str(upload_limit),
            "DYNGEN_DEVICE": "cpu",
            "OMP_NUM_THREADS": "1",
        }
        self.children: list[subprocess.Popen[bytes]] = []

    def dyngen(self, *argv: str) -> str:
        """Run a dyngen command to completion; its stdout."""
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dyngen")), *argv],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        """Start a dyngen command in the background, its output in a log file."""
        log = (self.tmp / f"{argv[0]}.log").open("wb")
        child = subprocess.Popen(
            [str(Path(sys.executable).with_name("dyngen")), *argv],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.children.append(child)
        return child

    def stop(self) -> None:
        """Stop every child, then drop the schema."""
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        with create_engine(PG_BASE).begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def service(upload_limit: int) -> Iterator[tuple[Service, subprocess.Popen[bytes], str]]:
    """A migrated schema, an API key and a running API: (service, api process, key)."""
    with tempfile.TemporaryDirectory(prefix="dyngen-load-") as tmp:
        svc = Service(Path(tmp), upload_limit)
        with create_engine(PG_BASE).begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {svc.schema}"))
        try:
            svc.dyngen("migrate")
            key = svc.dyngen("apikey", "create", "bench").splitlines()[-1]
            api = svc.start("api")
            _wait_ready(svc.base, api)
            yield svc, api, key
        finally:
            svc.stop()


def _wait_ready(base: str, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError("the API exited on start")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not come up")


def _status_kib(pid: int, field_name: str) -> int:
    """A VmRSS / VmHWM figure of /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


async def _gibibyte() -> AsyncIterator[bytes]:
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
    block = b"\0" * BLOCK
    for _ in range(GIB // BLOCK):
        yield block
    yield b"\r\n--b--\r\n"


async def big_upload(base: str, key: str, pid: int) -> str:
    """Stream 1 GiB to POST /v1/videos; the API's RSS before, its peak and the time taken."""
    before = _status_kib(pid, "VmHWM")
    started = time.monotonic()
    headers = {"authorization": f"Bearer {key}", "content-type": "multipart/form-data; boundary=b"}
    async with httpx.AsyncClient(timeout=600) as client:
        response = await client.post(f"{base}/v1/videos", content=_gibibyte(), headers=headers)
    seconds = time.monotonic() - started
    peak = _status_kib(pid, "VmHWM")
    code = response.json().get("error", {}).get("code", response.status_code)
    return (
        f"1 GiB upload: answered {response.status_code} ({code}) after {seconds:.1f} s "
        f"({GIB / seconds / 1024**2:.0f} MiB/s); API peak RSS (VmHWM) {before / 1024:.0f} MiB "
        f"before, {peak / 1024:.0f} MiB after"
    )


async def _poller(
    client: httpx.AsyncClient, job_id: str, stop: float, tally: Tally, list_every: int
) -> None:
    count = 0
    while time.monotonic() < stop:
        count += 1
        listing = count % list_every == 0
        url = "/v1/jobs?limit=20" if listing else f"/v1/jobs/{job_id}"
        started = time.monotonic()
        try:
            response = await client.get(url)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        elapsed = time.monotonic() - started
        if not ok:
            tally.errors += 1
        (tally.lists if listing else tally.polls).append(elapsed)


async def _uploader(client: httpx.AsyncClient, stop: float, tally: Tally) -> None:
    data = VIDEO.read_bytes()
    while time.monotonic() < stop:
        response = await client.post("/v1/videos", files={"file": (VIDEO.name, data)})
        if response.status_code == 201:
            tally.uploads += 1
            # keep the store small: the upload was the load, not the point
            await client.delete(f"/v1/videos/{response.json()['id']}")
        else:
            tally.errors += 1


async def load_phase(
    base: str,
    key: str,
    job_id: str,
    clients: int,
    seconds: float,
    list_every: int,
    uploads: bool = True,
) -> Tally:
    """`clients` pollers (and one uploader) for `seconds`."""
    tally = Tally()
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:
        started = time.monotonic()
        stop = started + seconds
        pollers = [_poller(client, job_id, stop, tally, list_every) for _ in range(clients)]
        await asyncio.gather(*pollers, *([_uploader(client, stop, tally)] if uploads else []))
        tally.seconds = time.monotonic() - started
    return tally


def _job(base: str, key: str) -> str:
    """Upload the real clip and queue a training job on it; its id."""
    headers = {"authorization": f"Bearer {key}"}
    video = httpx.post(
        f"{base}/v1/videos", files={"file": (VIDEO.name, VIDEO.read_bytes())}, headers=headers
    ).json()
    body = {"type": "train", "video_ids": [video["id"]], "config": TRAIN}
    job = httpx.post(f"{base}/v1/jobs", json=body, headers=headers)
    job.raise_for_status()
    return str(job.json()["id"])


def _wait_running(base: str, key: str, job_id: str, worker: subprocess.Popen[bytes]) -> int:
    """Wait until the worker has trained an epoch; the epoch it reached."""
    headers = {"authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited")
        job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] == "running" and job["progress"]["epoch"]:
            return int(job["progress"]["epoch"])
        time.sleep(0.5)
    raise RuntimeError("the job did not start training")


def _epoch(base: str, key: str, job_id: str) -> int:
    job = httpx.get(f"{base}/v1/jobs/{job_id}", headers={"authorization": f"Bearer {key}"})
    return int(job.json()["progress"]["epoch"] or 0)


def main() -> None:
    """Run the phases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each load phase")
    parser.add_argument("--list-every", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.clients} polling clients", flush=True)
    with service(upload_limit=GIB + BLOCK) as (svc, api, key):
        print(asyncio.run(big_upload(svc.base, key, api.pid)), flush=True)
        job_id = _job(svc.base, key)
        quiet = asyncio.run(
            load_phase(svc.base, key, job_id, args.clients, args.seconds, args.list_every, False)
        )
        print(quiet.summary("polls alone, no uploads"), flush=True)
        idle = asyncio.run(
            load_phase(svc.base, key, job_id, args.clients, args.seconds, args.list_every)
        )
        print(idle.summary("with uploads, no training"), flush=True)
        worker = svc.start("worker")
        first = _wait_running(svc.base, key, job_id, worker)
        busy = asyncio.run(
            load_phase(svc.base, key, job_id, args.clients, args.seconds, args.list_every)
        )
        epochs = _epoch(svc.base, key, job_id) - first
        print(busy.summary("with uploads and training"), flush=True)
        print(f"the worker trained {epochs} epochs during the training phase", flush=True)
        # cancel, so the worker's warm shutdown need not wait for 100000 epochs
        httpx.post(
            f"{svc.base}/v1/jobs/{job_id}/cancel", headers={"authorization": f"Bearer {key}"}
        )
        print(f"API peak RSS over the whole run: {_status_kib(api.pid, 'VmHWM') / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
