"""`make bench-load`: the API under a storm of pollers, held streams and stalled uploads.

Starts the real processes on loopback (`dyngen api`, and `dyngen worker`) against PostgreSQL
and Redis, with the API's default pool and quotas. The default scenario (`storm`):

1. an idle run: `--pollers` clients polling `GET /v1/jobs/{id}` of a queued job, nothing else;
2. the storm: the worker trains the job while the same pollers run, `--streams` SSE streams
   are held open (spread over keys, within the per-key cap) and `--stalled` uploads send
   their headers and a little of their body, then nothing; a bystander key lists its videos
   and uploads a real clip all along;
3. prints the count of 500s (must be 0), of other statuses, whether the bystander was
   answered, the p99 of the polls beside the idle run's (a ratio: the machine is noisy), and
   the API process's peak RSS (VmHWM).

`--scenario classic` runs the older phases: a 1 GiB upload, then `--clients` pollers alone,
with uploads streaming, and with training beside.
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
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


# -- the storm scenario -----------------------------------------------------------------

STREAMS_PER_KEY = 16  # the API's default DYNGEN_MAX_STREAMS_PER_KEY
STALLED_PER_KEY = 2  # under the default DYNGEN_MAX_UPLOADS_PER_KEY of 4


@dataclass
class Storm:
    """What the storm (or the idle run) saw."""

    polls: list[float] = field(default_factory=list)  # seconds
    statuses: Counter[int] = field(default_factory=Counter)  # every answer, by status
    transport_errors: int = 0  # time-outs, resets: no answer at all
    streams_opened: int = 0  # SSE streams that got their 200
    streams_open: int = 0  # ... and were still open at the end
    stalls_sent: int = 0
    stream_events: int = 0
    stalled_unanswered: int = 0  # stalled uploads still waiting at the end (as they should)
    bystander: Counter[str] = field(default_factory=Counter)  # "ok" / "failed"
    bystander_worst: float = 0.0
    seconds: float = 0.0

    def p99(self) -> float:
        """The 99th percentile of poll latency, in ms."""
        return float(np.percentile(self.polls, 99)) * 1000

    def record(self, status: int) -> None:
        """Count one answer."""
        self.statuses[status] += 1


def _make_keys(svc: Service, count: int) -> list[tuple[str, str]]:
    """`count` API keys as (id, plain key), made directly in the schema."""
    from core.auth import create_api_key
    from core.db import session_factory, session_scope

    url = svc.env["DYNGEN_DATABASE_URL"]
    with session_scope(session_factory(url)) as session:
        made = [create_api_key(session=session, name=f"load-{i}") for i in range(count)]
        return [(row.id, plain) for row, plain in made]


def _queued_jobs(base: str, keys: list[str]) -> list[str]:
    """One queued training job per key (each uploads the clip first); their ids."""
    return [_job(base, key) for key in keys]


async def _storm_poller(client: httpx.AsyncClient, url: str, stop: float, tally: Storm) -> None:
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            response = await client.get(url)
        except httpx.HTTPError:
            tally.transport_errors += 1
            continue
        tally.polls.append(time.monotonic() - started)
        tally.record(response.status_code)


async def _hold_stream(
    base: str, key: str, job_id: str, release: asyncio.Event, tally: Storm
) -> None:
    """Open an SSE stream and read it until `release`; count it if it was still open then."""
    headers = {"authorization": f"Bearer {key}", "accept": "text/event-stream"}
    url = f"{base}/v1/jobs/{job_id}/events"
    async with httpx.AsyncClient(timeout=120) as client:
        try:
            async with client.stream("GET", url, headers=headers) as response:
                tally.record(response.status_code)
                if response.status_code == 200:
                    tally.streams_opened += 1
                    await _read_until(response, release, tally)
        except httpx.HTTPError:
            tally.transport_errors += 1


async def _read_until(response: httpx.Response, release: asyncio.Event, tally: Storm) -> None:
    async def read() -> None:
        async for line in response.aiter_lines():
            tally.stream_events += line.startswith("event:")

    reading = asyncio.create_task(read())
    await asyncio.wait(
        [reading, asyncio.create_task(release.wait())], return_when="FIRST_COMPLETED"
    )
    if not reading.done():
        tally.streams_open += 1  # still open when the storm ended: what it should be
        reading.cancel()


async def _stall_upload(port: int, key: str, release: asyncio.Event, tally: Storm) -> None:
    """Send an upload's headers and 64 KiB of its body, then nothing until `release`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/videos HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n"
        + f"Authorization: Bearer {key}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
        + b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        + b"\0" * 65536
    )
    await writer.drain()
    tally.stalls_sent += 1
    answer = asyncio.create_task(reader.read(64))
    await asyncio.wait([answer, asyncio.create_task(release.wait())], return_when="FIRST_COMPLETED")
    if answer.done():
        data = answer.result()
        tally.record(int(data.split()[1]) if data.startswith(b"HTTP/") else 0)
    else:
        tally.stalled_unanswered += 1
        answer.cancel()
    writer.close()


async def _bystander(base: str, key: str, stop: float, tally: Storm) -> None:
    """Another key going about its business: lists its videos, uploads and deletes a clip."""
    data = VIDEO.read_bytes()
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        while True:  # one round at least, however late it starts
            started = time.monotonic()
            try:
                listed = await client.get("/v1/videos?limit=5")
                made = await client.post("/v1/videos", files={"file": (VIDEO.name, data)})
                ok = listed.status_code == 200 and made.status_code == 201
                tally.record(listed.status_code)
                tally.record(made.status_code)
                if ok:
                    await client.delete(f"/v1/videos/{made.json()['id']}")
            except httpx.HTTPError:
                ok = False
            tally.bystander["ok" if ok else "failed"] += 1
            tally.bystander_worst = max(tally.bystander_worst, time.monotonic() - started)
            if time.monotonic() >= stop:
                return
            await asyncio.sleep(0.5)


async def storm_phase(
    svc: Service, owner: str, job_id: str, crowd: list[tuple[str, str]], args: argparse.Namespace
) -> Storm:
    """`args.seconds` of pollers and the bystander; with a `crowd` (key, job id), amid the
    held streams and stalled uploads, which are all open before the clock starts."""
    tally = Storm()
    release = asyncio.Event()
    holders = [
        asyncio.create_task(c) for c in _crowd(svc, owner, job_id, crowd, release, tally, args)
    ]
    await _settle(tally, len(holders), args)
    limits = httpx.Limits(max_connections=args.pollers, max_keepalive_connections=args.pollers)
    headers = {"authorization": f"Bearer {owner}"}
    started = time.monotonic()
    stop = started + args.seconds
    async with httpx.AsyncClient(
        base_url=svc.base, headers=headers, limits=limits, timeout=60
    ) as client:
        url = f"/v1/jobs/{job_id}"
        tasks = [_storm_poller(client, url, stop, tally) for _ in range(args.pollers)]
        bystander = [_bystander(svc.base, crowd[0][0], stop, tally)] if crowd else []
        await asyncio.gather(*tasks, *bystander)
    tally.seconds = time.monotonic() - started
    release.set()
    await asyncio.gather(*holders)
    return tally


async def _settle(tally: Storm, holders: int, args: argparse.Namespace) -> None:
    """Wait (up to a minute) until every stream answered and every stalled upload was sent."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if tally.streams_opened + tally.stalls_sent + sum(tally.statuses.values()) >= holders:
            return
        await asyncio.sleep(0.2)


def _crowd(
    svc: Service,
    owner: str,
    job_id: str,
    crowd: list[tuple[str, str]],
    release: asyncio.Event,
    tally: Storm,
    args: argparse.Namespace,
) -> list[Coroutine[Any, Any, None]]:
    """The held streams and the stalled uploads, spread over keys within the quotas."""
    if not crowd:
        return []
    # The owner follows the training job up to its cap; the others follow their own jobs.
    followers = [(owner, job_id)] * STREAMS_PER_KEY + [
        pair for pair in crowd[1:] for _ in range(STREAMS_PER_KEY // 4)
    ]
    streams = [
        _hold_stream(svc.base, key, job, release, tally) for key, job in followers[: args.streams]
    ]
    uploaders = [key for key, _ in crowd[1:] for _ in range(STALLED_PER_KEY)]
    stalled = [_stall_upload(svc.port, key, release, tally) for key in uploaders[: args.stalled]]
    return [*streams, *stalled]


def storm(args: argparse.Namespace) -> None:
    """The default scenario: the idle run, then the storm with training beside."""
    print(
        f"{os.cpu_count()} CPUs; {args.pollers} pollers, {args.streams} SSE streams, "
        f"{args.stalled} stalled uploads, {args.seconds:.0f} s a run",
        flush=True,
    )
    with service(upload_limit=512 * 1024**2) as (svc, api, owner):
        job_id = _job(svc.base, owner)
        # key 0 is the bystander; the rest hold streams and stalled uploads
        others = [plain for _, plain in _make_keys(svc, 1 + max(1, args.stalled // 2))]
        jobs = _queued_jobs(svc.base, others[1:])
        crowd = [(others[0], ""), *zip(others[1:], jobs, strict=True)]
        idle = asyncio.run(storm_phase(svc, owner, job_id, [], args))
        print(
            f"idle run: {len(idle.polls)} polls, statuses {dict(idle.statuses)}, "
            f"{idle.transport_errors} transport errors; poll p99 {idle.p99():.0f} ms",
            flush=True,
        )
        worker = svc.start("worker")
        first = _wait_running(svc.base, owner, job_id, worker)
        busy = asyncio.run(storm_phase(svc, owner, job_id, crowd, args))
        epochs = _epoch(svc.base, owner, job_id) - first
        _report_storm(idle, busy, epochs, api.pid)
        for key, job in [(owner, job_id), *crowd[1:]]:
            httpx.post(
                f"{svc.base}/v1/jobs/{job}/cancel", headers={"authorization": f"Bearer {key}"}
            )


def _report_storm(idle: Storm, busy: Storm, epochs: int, pid: int) -> None:
    errors_5xx = {s: n for s, n in busy.statuses.items() if s >= 500}
    print(
        f"storm: {len(busy.polls)} polls in {busy.seconds:.0f} s, statuses {dict(busy.statuses)}, "
        f"{busy.transport_errors} transport errors\n"
        f"  500s: {busy.statuses.get(500, 0)} (all 5xx: {errors_5xx or 0})\n"
        f"  SSE streams opened {busy.streams_opened}, open to the end {busy.streams_open} "
        f"({busy.stream_events} events)\n"
        f"  stalled uploads still waiting at the end: {busy.stalled_unanswered}\n"
        f"  bystander key: {dict(busy.bystander)} rounds (list + upload), worst round "
        f"{busy.bystander_worst:.1f} s\n"
        f"  poll p99 {busy.p99():.0f} ms vs idle {idle.p99():.0f} ms: "
        f"x{busy.p99() / idle.p99():.1f}\n"
        f"  the worker trained {epochs} epochs meanwhile\n"
        f"API peak RSS (VmHWM): {_status_kib(pid, 'VmHWM') / 1024:.0f} MiB",
        flush=True,
    )


def main() -> None:
    """Run the chosen scenario and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["storm", "classic"], default="storm")
    parser.add_argument("--pollers", type=int, default=500)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--stalled", type=int, default=50)
    parser.add_argument("--clients", type=int, default=32, help="classic: polling clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each load phase")
    parser.add_argument("--list-every", type=int, default=5, help="classic: list every n-th")
    args = parser.parse_args()
    if args.scenario == "storm":
        storm(args)
    else:
        classic(args)


def classic(args: argparse.Namespace) -> None:
    """The older phases: a 1 GiB upload, then pollers alone, with uploads, with training."""
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
