"""The `animate` job end to end: `dyngen serve` (API and a real worker), a model trained over
HTTP, a still uploaded and animated, and a video's frame animated, the videos decoded."""

from __future__ import annotations

import io
from pathlib import Path

import av
import httpx
import numpy as np
from PIL import Image

from tests.service.conftest import TINY_TRAIN, free_port
from tests.service.flows import decoded_frames, download, finished, ok, upload
from tests.service.processes import Process, service_env, serving

ANIMATE = {"frames": 12, "num_videos": 2, "fps": 10, "formats": ["mp4"], "seed": 3, "steps": 20}


def first_frame(data: bytes) -> np.ndarray:
    """The first decoded frame of an encoded video, (H, W, 3) uint8."""
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return np.asarray(frame.to_ndarray(format="rgb24"))


def test_animate_a_still_and_a_videos_frame(tmp_path: Path, clip: Path) -> None:
    still = tmp_path / "still.png"
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    Image.fromarray(frames[9]).save(still)  # a frame past the 8 trained on
    env = service_env(tmp_path)
    with (
        serving(tmp_path, env, free_port()) as (base, serve),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        video_id = upload(http, clip)
        train = {"type": "train", "video_ids": [video_id], "config": TINY_TRAIN}
        trained = finished(http, ok(http.post("/v1/jobs", json=train), 202)["id"], 120, serve)
        assert trained["status"] == "succeeded", trained
        image_id = upload(http, still)
        assert ok(http.get(f"/v1/videos/{image_id}"))["kind"] == "image"
        body = {"type": "animate", "model_id": trained["model_id"], "config": ANIMATE}
        jobs = [
            ok(http.post("/v1/jobs", json=body | {"image_id": image_id}), 202),
            ok(http.post("/v1/jobs", json=body | {"video_id": video_id, "frame": 9}), 202),
        ]
        assert {job["type"] for job in jobs} == {"animate"}
        results = [finished(http, job["id"], 120, serve) for job in jobs]
        for job in results:
            assert job["status"] == "succeeded", job
            # a 3-epoch model fits little: the first frame's quality is the model tests' concern
            assert isinstance(job["metrics"]["first_frame_psnr"], float)
            videos = [a for a in job["artifacts"] if a["kind"] == "video"]
            assert len(videos) == 2 and {a["media_type"] for a in videos} == {"video/mp4"}
            firsts = [first_frame(download(http, a)) for a in videos]
            assert firsts[0].shape == (16, 16, 3)
            # both videos start at the fitted frame (up to the mp4's loss)
            assert np.abs(firsts[0].astype(int) - firsts[1]).mean() < 8
        assert results[1]["config"]["source_frame"] == 9
        listed = ok(http.get("/v1/jobs", params={"type": "animate"}))["items"]
        assert {j["id"] for j in listed} == {j["id"] for j in jobs}
        past = body | {"video_id": video_id, "frame": 10}
        refused = http.post("/v1/jobs", json=past)
        assert (
            refused.status_code == 422 and refused.json()["error"]["code"] == "frame_out_of_range"
        )
        wrong = http.post("/v1/jobs", json=body | {"image_id": video_id})
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "not_a_image"
        masked_run_with_a_mask_of_the_whole_clip(http, video_id, tmp_path, serve)
    assert "Traceback" not in serve.log.read_text(), serve.tail()


def masked_run_with_a_mask_of_the_whole_clip(
    http: httpx.Client, video_id: str, tmp_path: Path, serve: Process
) -> None:
    """A 10-frame mask of the 10-frame clip, trained on 4 frames from frame 2 every 2nd: the
    mask is aligned, and the job returns the clip beside its inpainted version."""
    occluded = np.zeros((10, 16, 16), np.uint8)
    occluded[:, 4:10, 4:10] = 1
    np.save(tmp_path / "mask.npy", occluded)
    mask_id = upload(http, tmp_path / "mask.npy")
    config = TINY_TRAIN | {"frames": 4, "start": 2, "every": 2, "chunk_length": 4}
    body = {
        "type": "train",
        "video_ids": [video_id],
        "config": config,
        "mask": {"kind": "upload", "video_id": mask_id},
    }
    job = finished(http, ok(http.post("/v1/jobs", json=body), 202)["id"], 120, serve)
    assert job["status"] == "succeeded", job
    kinds = {a["kind"]: a for a in job["artifacts"]}
    assert {"recovered_video", "side_by_side_video", "inpainting_grid"} <= set(kinds)
    assert decoded_frames(download(http, kinds["side_by_side_video"])) == [(34, 16)] * 4
