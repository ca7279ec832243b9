"""The Python client's every call, with API keys, against the API served by uvicorn."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.app import create_app
from cli.client import ApiError, Client
from core.settings import Settings
from tests.service.conftest import TINY_TRAIN, RecordingQueue, live_server, new_key
from tests.service.offline_model import offline_checkpoint

__all__ = ["offline_checkpoint"]  # the fixture, imported for these tests


def test_every_call_with_a_key(
    settings: Settings, queue: RecordingQueue, clip: Path, offline_checkpoint: Path
) -> None:
    secured = settings.model_copy(update={"auth": "apikey"})
    alice, bob = new_key(secured, "alice"), new_key(secured, "bob")
    with live_server(create_app(secured, queue=queue)) as port:
        base = f"http://127.0.0.1:{port}"
        with Client(base) as nobody, pytest.raises(ApiError) as refused:
            nobody.list_jobs()
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")

        with Client(base, api_key=alice) as dg, Client(base, api_key=bob) as other:
            video = dg.upload(clip)
            assert dg.get_video(video.id).frames == video.frames == 10
            job = dg.train([video.id], TINY_TRAIN)
            assert queue.sent == [(job.id, "train")]
            assert [j.id for j in dg.list_jobs(status="queued", type="train").items] == [job.id]
            with pytest.raises(TimeoutError):  # nobody runs it: the test's queue sends nothing
                dg.wait(job.id, timeout=1)
            assert dg.list_jobs(status="running").items == []
            with pytest.raises(ApiError) as in_use:
                dg.delete_video(video.id)
            assert in_use.value.code == "video_in_use"
            with pytest.raises(ApiError) as unfinished:
                dg.delete_job(job.id)
            assert unfinished.value.code == "job_not_finished"
            assert dg.cancel(job.id).status == "cancelled"
            assert dg.wait(job.id, timeout=30).status == "cancelled"  # already over: at once
            dg.delete_job(job.id)
            dg.delete_video(video.id)

            model = dg.import_model(offline_checkpoint)
            assert [m.id for m in dg.list_models().items] == [model.id]
            with pytest.raises(ApiError) as hidden:
                other.get_model(model.id)
            assert hidden.value.code == "not_found"
            assert other.list_models().items == []
            synth = dg.synthesize(model.id, {"num_videos": 1, "frames": 8})
            with pytest.raises(ApiError) as used:
                dg.delete_model(model.id)
            assert used.value.code == "model_in_use"
            assert used.value.details == {"job_id": synth.id}
            dg.cancel(synth.id)
            dg.delete_model(model.id)
            assert dg.list_models().items == []
