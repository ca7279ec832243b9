"""`dyngen serve` and `make run` as a user starts and stops them (issue 20, items 1 and 7)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.service.conftest import free_port
from tests.service.processes import (
    ROOT,
    Process,
    dyngen_command,
    ready,
    running,
    service_env,
    wait_for,
)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def test_sigterm_stops_serve_and_its_worker(tmp_path: Path) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to list a process group")
    port = free_port()
    serve = Process(
        [*dyngen_command(), "serve", "--port", str(port)],
        service_env(tmp_path),
        tmp_path / "serve.log",
    )
    with running(serve), _reaped_group(serve.proc.pid):
        wait_for("dyngen serve to be ready", ready(f"http://127.0.0.1:{port}"), 60, serve)
        # serve and its embedded worker (its own session: the group's id is serve's pid)
        wait_for("the embedded worker", lambda: len(group_members(serve.proc.pid)) >= 2, 30)
        children = [pid for pid in group_members(serve.proc.pid) if pid != serve.proc.pid]
        os.kill(serve.proc.pid, signal.SIGTERM)  # serve alone, as `kill PID` or docker stop
        serve.proc.wait(30)
        assert serve.proc.returncode == -signal.SIGTERM, serve.tail()
        # nothing of serve's is left: not the worker, nor anything the worker started
        deadline = time.monotonic() + 5
        while group_members(serve.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(serve.proc.pid) == [], serve.tail()
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
    assert "Traceback" not in serve.text(), serve.tail()


@contextmanager
def _reaped_group(pgid: int) -> Iterator[None]:
    """Kill whatever of the group outlives the test (an orphan, if the test fails)."""
    try:
        yield
    finally:
        if group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _held_port() -> socket.socket:
    """A socket listening on a free port, as another program holding it would."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


def test_a_taken_port_is_one_line_naming_the_port_and_the_variable(tmp_path: Path) -> None:
    with _held_port() as holder:
        port = holder.getsockname()[1]
        env = service_env(tmp_path, port=str(port))
        done = subprocess.run(
            [*dyngen_command(), "serve"], env=env, cwd=ROOT, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "DYNGEN_PORT" in lines[0]
    assert not (tmp_path / "data").exists()  # refused before a database or worker was started


def test_make_run_honours_dyngen_port(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = Path(sys.executable).parent.parent
    with _held_port() as holder:
        port = holder.getsockname()[1]
        env = service_env(tmp_path, port=str(port))
        # -o: take the installed venv as it is (this test is about the port, not installing)
        done = subprocess.run(
            ["make", "-s", "-o", f"{venv}/.installed-stamp", "run", f"VENV={venv}"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and f":{port} " in errors[0] and "DYNGEN_PORT" in errors[0], done.stderr
