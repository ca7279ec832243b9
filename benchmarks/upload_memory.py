"""`make bench-upload`: the API's peak memory while an upload streams to the object store.

A real `dyngen api` with DYNGEN_STORAGE_URL on a moto S3 server receives, by curl, a small clip
and then the same clip followed by an MP4 `free` box of 1 GiB (a valid video the probe reads in
a moment). The API's peak RSS (VmHWM) after each, in a fresh process each time, shows whether
memory follows the upload's size (it must not: the upload goes to the store 8 MiB at a time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

FREE_BOX_HEADER = 8  # 32-bit size + b"free"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: object, what: str, timeout: float = 60) -> None:
    """Poll `check()` until true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def padded_clip(clip: Path, target: Path, total_bytes: int) -> Path:
    """`clip` followed by one MP4 `free` box, `total_bytes` in all (a box < 4 GiB)."""
    shutil.copyfile(clip, target)
    size = total_bytes - clip.stat().st_size
    assert FREE_BOX_HEADER < size < 2**32, "one 32-bit free box"
    block = b"\0" * (8 * 1024 * 1024)
    with target.open("ab") as f:
        f.write(size.to_bytes(4, "big") + b"free")
        left = size - FREE_BOX_HEADER
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    return target


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def dyngen(*argv: str) -> list[str]:
    """The dyngen console script beside this interpreter."""
    return [str(Path(sys.executable).with_name("dyngen")), *argv]


def upload_peak(env: dict[str, str], work: Path, path: Path) -> tuple[float, float, float]:
    """A fresh API receives `path`: (its peak RSS before, after, seconds the upload took)."""
    port = free_port()
    log = (work / f"api-{port}.log").open("wb")
    api = subprocess.Popen(
        dyngen("api", "--port", str(port)), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, "the API")
        before = peak_rss_mib(api.pid)
        began = time.perf_counter()
        curl = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"]
        done = subprocess.run(
            [*curl, "-F", f"file=@{path}", f"{base}/v1/videos"],
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - began
        if done.stdout != "201":
            tail = log.name and Path(log.name).read_text(errors="replace")[-3000:]
            raise SystemExit(f"upload of {path.name} answered {done.stdout}: {done.stderr}\n{tail}")
        return before, peak_rss_mib(api.pid), took
    finally:
        api.terminate()
        api.wait(30)
        log.close()


def start_moto(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server on a free port, and its URL."""
    port = free_port()
    log = (work / "moto.log").open("wb")
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    moto = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(endpoint).status_code < 500, "moto_server")
    return moto, endpoint


def service_env(work: Path, endpoint: str, bucket: str, limit: int) -> dict[str, str]:
    """The API's environment: SQLite, the bucket on moto, a limit above the big upload."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYNGEN_", "AWS_"))}
    return env | {
        "DYNGEN_DATA_DIR": str(work / "data"),
        "DYNGEN_STORAGE_URL": f"s3://{bucket}/bench",
        "DYNGEN_MAX_UPLOAD_BYTES": str(limit),
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "OMP_NUM_THREADS": "1",
    }


def main() -> None:
    """Print the table BENCHMARKS.md records."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="size of the big upload")
    args = parser.parse_args()
    big_bytes = int(args.gib * 1024**3)
    with tempfile.TemporaryDirectory(prefix="dyngen-bench-upload-") as tmp:
        work = Path(tmp)
        moto, endpoint = start_moto(work)
        try:
            import boto3

            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            env = service_env(work, endpoint, bucket, big_bytes + 1024**2)
            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench-secret",
            )
            s3.create_bucket(Bucket=bucket)
            subprocess.run(dyngen("migrate"), env=env, check=True, capture_output=True)
            small = work / "small.mp4"
            subprocess.run(dyngen("sample-clip", str(small)), env=env, check=True)
            big = padded_clip(small, work / "big.mp4", big_bytes)
            rows = [(p.name, p.stat().st_size, *upload_peak(env, work, p)) for p in (small, big)]
        finally:
            moto.kill()
            moto.wait(10)
    print("| upload | bytes | API peak RSS before | after | upload s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, size, before, after, took in rows:
        print(f"| {name} | {size} | {before:.0f} MiB | {after:.0f} MiB | {took:.1f} |")
    ratio = rows[1][3] / rows[0][3]
    print(f"\npeak RSS, big upload over small: {ratio:.2f}x")


if __name__ == "__main__":
    main()
