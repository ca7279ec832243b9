"""The deployment files: docker compose accepts them, with what docs/design.md 4 says."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.service.processes import ROOT


def _compose() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    pytest.skip(
        "neither docker-compose nor `docker compose` is installed (apt-get install docker-compose)"
    )


def test_compose_file_validates_with_every_part() -> None:
    yaml = pytest.importorskip("yaml")
    command = [*_compose(), "-f", str(ROOT / "docker-compose.yml"), "--profile", "gpu"]
    command += ["--profile", "flower", "config"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"postgres", "redis", "migrate", "api", "worker", "worker-gpu", "flower"} <= set(
        services
    )
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "api", "worker"))
    api = services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert any(
        str(p.get("published", p) if isinstance(p, dict) else p).startswith("8000")
        for p in api["ports"]
    )
    assert api["environment"]["DYNGEN_AUTH"] == "apikey"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    # no filesystem shared: the API and the workers meet in MinIO's bucket, created at start
    assert not any(services[s].get("volumes") for s in ("api", "worker", "worker-gpu"))
    for name in ("api", "worker", "worker-gpu"):
        env = services[name]["environment"]
        assert env["DYNGEN_STORAGE_URL"].startswith("s3://")
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
        bucket = services[name]["depends_on"]["create-bucket"]
        assert bucket["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["minio"]
    assert "mc mb" in " ".join(services["create-bucket"]["command"])


def test_compose_config_quiet() -> None:
    done = subprocess.run(
        [*_compose(), "config", "-q"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_image_installs_the_pinned_torch_from_its_index_alone() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin is not None, "pyproject.toml pins torch"
    assert f"ARG TORCH_VERSION={pin.group(1)}\n" in dockerfile
    # --index-url, not --extra-index-url: an index without the build fails the image
    assert 'pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"' in dockerfile
    assert "--extra-index-url" not in dockerfile
