"""The Python client and `dyngen remote` against a real `dyngen serve` (API + worker process):
upload -> train -> wait -> synthesize -> download; an imported checkpoint synthesizes;
deletion frees the server's storage; /metrics moves after a job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from cli.client import ApiError, Client
from cli.main import cli
from tests.service.conftest import TINY_TRAIN, free_port
from tests.service.flows import decoded_frames
from tests.service.offline_model import offline_checkpoint
from tests.service.processes import service_env, serving

__all__ = ["offline_checkpoint"]  # the fixture, imported for these tests
SYNTH = {"num_videos": 1, "frames": 16, "fps": 10, "formats": ["mp4"]}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A `dyngen serve` for the module: its base URL and its storage folder."""
    tmp = tmp_path_factory.mktemp("serve")
    with serving(tmp, service_env(tmp), free_port()) as (base, _serve):
        yield base, tmp / "data" / "storage"


def stored(storage: Path) -> set[str]:
    """The files under the server's artifacts/."""
    root = storage / "artifacts"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def metrics(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{base}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_client_drives_the_whole_flow(
    service: tuple[str, Path], clip: Path, tmp_path: Path
) -> None:
    base, storage = service
    with Client(base) as dg:
        video = dg.upload(clip)
        seen: list[dict[str, object]] = []
        train = dg.train([video.id], TINY_TRAIN, seed=1)
        trained = dg.wait(train.id, on_progress=seen.append, timeout=300)
        assert trained.status == "succeeded", trained.error
        assert [p["epoch"] for p in seen][-1] == 3

        synth = dg.wait(dg.synthesize(str(trained.model_id), SYNTH).id, timeout=300)
        assert synth.status == "succeeded", synth.error
        mp4 = next(a for a in synth.artifacts if a.filename == "video-1.mp4")
        path = dg.download(mp4, tmp_path)
        assert path == tmp_path / "video-1.mp4" and not list(tmp_path.glob(".*.part"))
        assert decoded_frames(path.read_bytes()) == [(16, 16)] * 16

        # a download cut short resumes with a Range request from its partial file: a
        # corrupted partial proves the rest was appended (a whole resend would be right)
        whole = path.read_bytes()
        partial = tmp_path / ".again.mp4.part"
        partial.write_bytes(b"\xff" * (len(whole) // 2))
        with pytest.raises(ApiError) as mismatch:
            dg.download(mp4, tmp_path / "again.mp4")
        assert mismatch.value.code == "checksum_mismatch" and not partial.exists()
        partial.write_bytes(whole[: len(whole) // 2])
        assert dg.download(mp4, tmp_path / "again.mp4").read_bytes() == whole

        with pytest.raises(ApiError) as refused:
            dg.train(["vid_0a"])
        assert (refused.value.status, refused.value.code) == (404, "not_found")
        assert refused.value.details == {"id": "vid_0a"}

        # deleting the jobs and the model frees the server's storage
        outputs = {f"{a.id}/{a.filename}" for a in synth.artifacts}
        assert outputs <= stored(storage)
        dg.delete_job(synth.id)
        assert not outputs & stored(storage)
        dg.delete_job(trained.id)
        dg.delete_model(str(trained.model_id))
        assert stored(storage) == set()
        with pytest.raises(ApiError) as gone:
            dg.get_model(str(trained.model_id))
        assert gone.value.code == "not_found"


def test_an_imported_checkpoint_synthesizes_and_metrics_move(
    service: tuple[str, Path], offline_checkpoint: Path, tmp_path: Path
) -> None:
    base, _ = service
    before = metrics(base)
    done = {"type": "synthesize", "status": "succeeded"}
    with Client(base) as dg:
        model = dg.import_model(offline_checkpoint)
        assert model.source == "import" and model.config["image_size"] == 16
        job = dg.wait(dg.synthesize(model.id, SYNTH).id, timeout=300)
        assert job.status == "succeeded", job.error
        mp4 = next(a for a in job.artifacts if a.filename == "video-1.mp4")
        assert decoded_frames(dg.download(mp4, tmp_path).read_bytes()) == [(16, 16)] * 16
    after = metrics(base)

    def moved(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("dyngen_jobs", **done) == 1
    assert moved("dyngen_job_duration_seconds_count", **done) == 1
    assert moved("dyngen_upload_bytes_total", kind="model") == offline_checkpoint.stat().st_size
    route = {"method": "POST", "route": "/v1/jobs", "status": "202"}
    assert moved("dyngen_http_request_duration_seconds_count", **route) == 1
    assert after[("dyngen_queue_depth", frozenset())] == 0


def test_dyngen_remote_commands(service: tuple[str, Path], clip: Path, tmp_path: Path) -> None:
    base, _ = service
    (tmp_path / "train.json").write_text(json.dumps(TINY_TRAIN))
    (tmp_path / "synth.json").write_text(json.dumps(SYNTH))

    def remote(*args: str) -> str:
        result = CliRunner().invoke(cli, ["remote", "--url", base, *args])
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    video = remote("upload", str(clip))
    model = remote("wait", remote("train", video, "--config", str(tmp_path / "train.json")))
    synth = remote("synthesize", model, "--config", str(tmp_path / "synth.json"))
    assert remote("wait", synth) == "succeeded"
    out = tmp_path / "out"
    assert remote("download", synth, "--out", str(out), "--name", "video-1.mp4") == str(
        out / "video-1.mp4"
    )
    assert decoded_frames((out / "video-1.mp4").read_bytes()) == [(16, 16)] * 16

    refused = CliRunner().invoke(cli, ["remote", "--url", base, "wait", "job_0a"])
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == ["Error: not_found: no job with id 'job_0a'"]
    unreachable = CliRunner().invoke(
        cli, ["remote", "--url", "http://127.0.0.1:1", "upload", str(clip)]
    )
    assert unreachable.exit_code == 1 and "cannot reach the API" in unreachable.output
