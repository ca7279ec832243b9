"""A real S3 server for the object-store tests: moto's standalone server on a free port."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import free_port, port_open

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "dyngen-test",
    "AWS_SECRET_ACCESS_KEY": "dyngen-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    """`python -m moto.server` in a process of its own, killed by `stop`."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self._log = log.open("wb")
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"moto_server did not start; see {log}")
            time.sleep(0.1)

    @property
    def endpoint(self) -> str:
        """Its URL."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Kill it (everything it stored is gone)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@dataclass
class Bucket:
    """A fresh bucket on a server, the storage URL naming it, and a client to look inside."""

    name: str
    endpoint: str
    client: Any

    @property
    def url(self) -> str:
        """DYNGEN_STORAGE_URL of a store under the prefix `dyngen` of this bucket."""
        return f"s3://{self.name}/dyngen"

    def keys(self, prefix: str = "") -> list[str]:
        """The store keys (without the store's prefix) of every object under `prefix`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=f"dyngen/{prefix}"
        )
        found = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(key.removeprefix("dyngen/") for key in found)

    def unfinished_uploads(self) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted."""
        listed = self.client.list_multipart_uploads(Bucket=self.name)
        return [upload["Key"] for upload in listed.get("Uploads", [])]


def new_bucket(endpoint: str) -> Bucket:
    """Create a bucket with a unique name on the server at `endpoint`."""
    import boto3

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    name = f"dyngen-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return Bucket(name, endpoint, client)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the session."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def point_at(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Aim this process's AWS variables (and the processes it starts) at `endpoint`."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket on the session's server, the AWS variables pointing at it."""
    point_at(monkeypatch, moto_server.endpoint)
    return new_bucket(moto_server.endpoint)
