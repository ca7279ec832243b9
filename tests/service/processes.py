"""Running the service's real processes for end-to-end tests, and a client that drives them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def dyngen_command() -> list[str]:
    """The installed console script beside this interpreter."""
    script = Path(sys.executable).with_name("dyngen")
    if not script.exists():
        pytest.skip(f"{script} is missing: install the project (`make install`)")
    return [str(script)]


def celery_command() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.app"]


class Process:
    """A child process with its own process group and a log file to show when things fail."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )

    def tail(self, lines: int = 40) -> str:
        """The end of its output."""
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def text(self) -> str:
        """All its output so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM its group, then SIGKILL what is left."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._file.close()


def service_env(tmp: Path, **values: str) -> dict[str, str]:
    """The environment of the test's processes: its own data dir, quick heartbeats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNGEN_")}
    env |= {
        "DYNGEN_DATA_DIR": str(tmp / "data"),
        "DYNGEN_HEARTBEAT_SECONDS": "1",
        "DYNGEN_LEASE_SECONDS": "5",
        "DYNGEN_CANCEL_POLL_SECONDS": "0.2",
        "DYNGEN_DEVICE": "cpu",
        "DYNGEN_RESUME_EVERY": "20",
        "OMP_NUM_THREADS": "1",
    }
    return env | {f"DYNGEN_{k.upper()}": v for k, v in values.items()}


def run_cli(argv: list[str], env: dict[str, str]) -> str:
    """Run a dyngen command to completion; its stdout."""
    done = subprocess.run(
        dyngen_command() + argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(what: str, check: Callable[[], Any], timeout: float, *watched: Process) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` (and show logs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in watched:
            if process.proc.poll() is not None:
                pytest.fail(
                    f"{process.log.name} exited while waiting for {what}:\n{process.tail()}"
                )
        result = check()
        if result:
            return result
        time.sleep(0.1)
    logs = "\n\n".join(f"--- {p.log.name}\n{p.tail()}" for p in watched)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}")


@contextmanager
def running(*processes: Process) -> Iterator[None]:
    """Stop the processes however the test ends."""
    try:
        yield
    finally:
        for process in processes:
            process.stop()


def ready(base_url: str) -> Callable[[], bool]:
    """A check that /readyz answers 200."""

    def check() -> bool:
        try:
            return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


@contextmanager
def serving(tmp: Path, env: dict[str, str], port: int) -> Iterator[tuple[str, Process]]:
    """A `dyngen serve` on `port` with its data under `tmp`, ready: its base URL and process."""
    serve = Process(
        [*dyngen_command(), "serve", "--port", str(port), "--data-dir", str(tmp / "data")],
        env,
        tmp / "serve.log",
    )
    base = f"http://127.0.0.1:{port}"
    with running(serve):
        wait_for("dyngen serve to be ready", ready(base), 60, serve)
        yield base, serve
