"""A train job with `purpose: inpaint` end to end: `dyngen serve` (API and a real worker), the
defaults `dyngen inpaint` applies resolved by the API, the clip beside its cleaned version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np

from tests.conftest import ROOT
from tests.service.conftest import TINY_TRAIN, assert_error, free_port
from tests.service.flows import decoded_frames, download, finished, ok, upload
from tests.service.processes import service_env, serving

# frames left unset: an inpainting job takes the whole clip
TINY_INPAINT = {k: v for k, v in TINY_TRAIN.items() if k != "frames"}


def test_an_inpaint_job_gets_the_inpaint_defaults_and_the_side_by_side_video(
    tmp_path: Path, clip: Path
) -> None:
    occluded = np.zeros((10, 16, 16), np.uint8)  # an object over the whole 10-frame clip
    occluded[:, 4:10, 4:10] = 1
    np.save(tmp_path / "object.npy", occluded)
    env = service_env(tmp_path)
    with (
        serving(tmp_path, env, free_port()) as (base, serve),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        video_id = upload(http, clip)
        mask = {"kind": "upload", "video_id": upload(http, tmp_path / "object.npy")}
        body = {"type": "train", "purpose": "inpaint", "video_ids": [video_id], "mask": mask}
        unmasked = {k: v for k, v in body.items() if k != "mask"}
        assert_error(http.post("/v1/jobs", json=unmasked), 422, "validation_error")
        queued = ok(http.post("/v1/jobs", json=body | {"config": TINY_INPAINT}), 202)
        config = queued["config"]
        # the whole clip, stretched, recovery's sigma; the fields the body set stay
        assert (config["frames"], config["resize"], config["sigma"]) == (10, "stretch", 0.5)
        assert (config["epochs"], config["chunk_length"]) == (3, 4)
        job = finished(http, queued["id"], 180, serve)
        assert job["status"] == "succeeded", job
        kinds = {a["kind"]: a for a in job["artifacts"]}
        assert {"recovered_video", "side_by_side_video", "inpainting_grid"} <= set(kinds)
        assert kinds["side_by_side_video"]["filename"] == "side_by_side.mp4"
        # original | 2-pixel white line | cleaned, every frame of the clip
        assert decoded_frames(download(http, kinds["side_by_side_video"])) == [(34, 16)] * 10
        unset = ok(http.post("/v1/jobs", json=body | {"config": {"image_size": 16}}), 202)
        assert unset["config"]["epochs"] == 100  # the measured default for this use
        ok(http.post(f"/v1/jobs/{unset['id']}/cancel"), 202)
        assert finished(http, unset["id"], 60, serve)["status"] == "cancelled"
    assert "Traceback" not in serve.log.read_text(), serve.tail()


def test_the_api_resolves_the_inpaint_defaults_without_loading_torch() -> None:
    """The API imports model/inpaint_config.py, not model/inpaint.py (which trains)."""
    code = "import sys, api.app, core.admission; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True,
        text=True,
    )  # fmt: skip
    assert out.stdout.strip() == "False", out.stderr
