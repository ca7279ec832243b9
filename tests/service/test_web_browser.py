"""The page in real headless Chromium against a real `dyngen serve`: upload, train, watch, play.

Debian's chromium is driven by Playwright (`.ci/services.sh` installs it); without it these
tests skip. Screenshots land in $DYNGEN_SCREENSHOT_DIR (docs/screenshots to refresh the
README's pictures), else in a temporary folder, so a test run leaves the tree clean.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service.conftest import TINY_TRAIN, free_port, write_clip
from tests.service.flows import finished, ok, upload
from tests.service.processes import (
    run_cli,
    service_env,
    serving,
)

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "/usr/bin/chromium is missing (bash .ci/services.sh installs Debian's chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

SHOTS = Path(os.environ.get("DYNGEN_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="dyngen-shots-"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
# a <video>'s duration once its metadata loaded
DURATION = """v => new Promise(ok => v.readyState
    ? ok(v.duration) : v.addEventListener("loadedmetadata", () => ok(v.duration)))"""
# the tiny model of the service tests, typed into the advanced form (blank fields keep defaults)
TINY_FIELDS = {k: str(v) for k, v in TINY_TRAIN.items() if k != "image_size"}


@contextmanager
def start_serve(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    """A `dyngen serve` on a free port; its base URL."""
    with serving(tmp, env, free_port()) as (base, _):
        yield base


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An open-mode server shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("web")
    with start_serve(tmp, service_env(tmp)) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh tab on the page, its scripts started."""
    context = browser.new_context(viewport=WIDE)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.goto(server)
    tab.wait_for_selector("body[data-ready=true]")
    yield tab
    context.close()
    assert not errors, errors


# the currentTime of every video of the job view, and where the shared control says they are
VIDEO_TIMES = """() => [Number(document.getElementById("sync-seek").dataset.position),
    [...document.querySelectorAll("#job-videos video")].map(
    v => ({ time: v.currentTime, duration: v.duration, paused: v.paused }))]"""


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service tests' clip at 5 fps: 2 s, long enough to watch videos keep in step."""
    return write_clip(tmp_path_factory.mktemp("slow") / "slow.mp4", fps=5)


def upload_clip(page: Any, clip: Path) -> None:
    page.set_input_files("#file-input", str(clip))
    sync_api.expect(page.locator("[data-fact=frames]")).to_have_text("10")
    sync_api.expect(page.locator("#upload-progress")).to_have_js_property("value", 1)


def job_json(server: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server}/v1/jobs/{job_id}")
    response.raise_for_status()
    return dict(response.json())


def open_job(page: Any, job_id: str, kind: str = "train") -> None:
    page.get_by_role("button", name=f"{kind} {job_id}").click()
    page.wait_for_selector(f'#job-view[data-loaded="{job_id}"]')


def start_training(page: Any, **fields: str) -> str:
    """Fill the advanced form, submit; the new job's id."""
    page.get_by_label("Standard").check()
    page.locator("#train-advanced summary").click()
    advanced = page.locator("#train-fields")
    advanced.get_by_label("image_size", exact=True).select_option("16")
    for name, value in fields.items():
        field = advanced.get_by_label(name, exact=True)
        # a choice (method, resize...) is a <select>, the rest are inputs
        if field.evaluate("element => element.tagName === 'SELECT'"):
            field.select_option(value)
        else:
            field.fill(value)
    before = page.locator("#job-list li").count()
    page.get_by_role("button", name="Start training").click()
    sync_api.expect(page.locator("#job-list li")).to_have_count(before + 1)
    return str(page.locator("#job-list li").first.get_attribute("data-job-id"))


def record_progress(page: Any, job_id: str) -> None:
    """Keep, in the page, every value the job's progress bar shows."""
    page.evaluate(
        """(id) => { window.seenProgress = new Set();
        setInterval(() => { const bar = document.querySelector(`[data-job-id="${id}"] progress`);
        if (bar) window.seenProgress.add(bar.value); }, 20); }""",
        job_id,
    )


def record_chart(page: Any) -> None:
    """Keep, in the page, how many points the job view's loss line had, as it changes."""
    page.evaluate(
        """() => { window.chartPoints = [];
        setInterval(() => { const line = document.querySelector("#job-chart .series.loss");
        const n = Number(line?.dataset.points ?? 0);
        if (n !== window.chartPoints.at(-1)) window.chartPoints.push(n); }, 20); }"""
    )


def assert_fits(page: Any) -> None:
    """Nothing on the page is wider than the viewport (no sideways scrolling at 390 px)."""
    wide = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
        .filter(n => n.scrollWidth > n.clientWidth + 1
            && getComputedStyle(n).overflow === "visible")
        .map(n => `${n.tagName}#${n.id} ${n.scrollWidth} px`)"""
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{width} px wide: {', '.join(wide)}"


def assert_labelled(page: Any) -> None:
    """Every control, video, canvas and chart shown has a name a screen reader can say."""
    nameless = page.evaluate(
        """() => [...document.querySelectorAll(
            "input, select, textarea, button, video, canvas, svg[role=img], img")]
        .filter(n => n.getClientRects().length)
        .filter(n => !(n.labels?.length || n.getAttribute("aria-label")
            || n.getAttribute("aria-labelledby") || n.getAttribute("alt")
            || (n.tagName === "BUTTON" && n.textContent.trim())))
        .map(n => n.outerHTML.slice(0, 80))"""
    )
    assert not nameless, nameless


def badge(page: Any, job_id: str) -> Any:
    return page.locator(f'[data-job-id="{job_id}"] .badge')


def test_upload_train_watch_and_play_a_synthesis(page: Any, clip: Path) -> None:
    upload_clip(page, clip)
    clip_duration = page.locator("#clip-video").evaluate(DURATION)
    assert clip_duration > 0
    job_id = start_training(page, **(TINY_FIELDS | {"epochs": "40"}))
    record_progress(page, job_id)
    open_job(page, job_id)
    record_chart(page)
    sync_api.expect(badge(page, job_id)).to_have_text("succeeded", timeout=120_000)
    seen = page.evaluate("[...window.seenProgress]")
    assert any(0 < value < 1 for value in seen), f"the bar never showed a partial epoch: {seen}"
    assert 1 in seen
    grew = page.evaluate("window.chartPoints")
    assert len(set(grew)) > 2 and grew == sorted(grew), f"the chart did not grow: {grew}"
    for series in ("loss", "psnr"):
        line = page.locator(f"#job-chart .series.{series}")
        assert int(str(line.get_attribute("data-points"))) > 1, series
        assert len(str(line.get_attribute("points")).split()) > 1, series
        compact = page.locator(f'#job-list [data-job-id="{job_id}"] .series.{series}')
        assert int(str(compact.get_attribute("data-points"))) > 1, series
    page.screenshot(path=SHOTS / "jobs-1280.png", full_page=True)

    sync_api.expect(page.locator("#job-view[data-status=succeeded]")).to_be_visible()
    sync_api.expect(page.locator("#job-videos figure")).not_to_have_count(0)
    assert "reconstruction" in page.locator("#job-videos").inner_text()
    synth = page.locator("#synth-form")
    for name, value in {"num_videos": "1", "frames": "16", "fps": "10"}.items():
        synth.get_by_label(name, exact=True).fill(value)
    synth.get_by_role("button", name="Synthesize").click()
    view = page.locator("#job-view[data-status=succeeded]")
    sync_api.expect(page.locator("#job-title")).to_contain_text("Synthesis", timeout=10_000)
    sync_api.expect(view).to_be_visible(timeout=60_000)
    video = page.locator('#job-videos figure[data-caption^="synthesis"] video').first
    duration = video.evaluate(DURATION)
    assert duration > 0
    page.get_by_role("button", name="Play", exact=True).click()
    played = video.evaluate("v => new Promise(ok => setTimeout(() => ok(v.currentTime), 700))")
    assert played > 0, "the synthesized video did not advance"
    page.get_by_role("button", name="Pause", exact=True).click()
    page.screenshot(path=SHOTS / "job-1280.png", full_page=True)
    page.set_viewport_size(NARROW)
    assert_fits(page)
    page.screenshot(path=SHOTS / "job-390.png", full_page=True)


def test_a_validation_error_shows_at_its_field(page: Any, clip: Path) -> None:
    upload_clip(page, clip)
    page.locator("#train-advanced summary").click()
    epochs = page.locator("#train-fields").get_by_label("epochs", exact=True)
    epochs.fill("0")
    page.get_by_role("button", name="Start training").click()
    error = page.locator('#train-form [data-error-for="config.epochs"]')
    sync_api.expect(error).to_contain_text("greater than or equal to 1")
    sync_api.expect(epochs).to_have_attribute("aria-invalid", "true")
    sync_api.expect(epochs).to_be_focused()
    page.screenshot(path=SHOTS / "validation-1280.png", full_page=True)


def test_cancel_a_running_training_and_retry_it(page: Any, server: str, clip: Path) -> None:
    upload_clip(page, clip)
    job_id = start_training(page, **(TINY_FIELDS | {"epochs": "20000"}))
    text = page.locator(f'[data-job-id="{job_id}"] .progress-text')
    sync_api.expect(text).to_contain_text("epoch", timeout=60_000)
    page.get_by_role("button", name=f"cancel {job_id}").click()
    sync_api.expect(badge(page, job_id)).to_have_text("cancelled", timeout=30_000)
    page.get_by_role("button", name=f"retry {job_id}").click()
    again = page.locator("#job-list li").first
    sync_api.expect(again).not_to_have_attribute("data-job-id", job_id)
    again_id = str(again.get_attribute("data-job-id"))
    page.get_by_role("button", name=f"cancel {again_id}").click()
    sync_api.expect(badge(page, again_id)).to_have_text("cancelled", timeout=30_000)
    assert_same_request(job_json(server, job_id), job_json(server, again_id))


def assert_same_request(first: dict[str, Any], again: dict[str, Any]) -> None:
    """A retry is a new job asking for exactly what the first asked for."""
    assert again["id"] != first["id"]
    for field in ("type", "video_ids", "config", "mask", "seed"):
        assert again[field] == first[field], field


def draw_box(page: Any, left: float, top: float, right: float, bottom: float) -> None:
    """Drag the mouse over the mask canvas between two points given in fractions of it."""
    page.locator("#mask-canvas").scroll_into_view_if_needed()  # the mouse acts in the viewport
    area = page.locator("#mask-canvas").bounding_box()
    page.mouse.move(area["x"] + left * area["width"], area["y"] + top * area["height"])
    page.mouse.down()
    page.mouse.move(area["x"] + right * area["width"], area["y"] + bottom * area["height"], steps=5)
    page.mouse.up()


def test_boxes_drawn_on_a_frame_train_a_masked_job_shown_recovered_and_in_sync(
    page: Any, server: str, slow_clip: Path
) -> None:
    upload_clip(page, slow_clip)
    page.get_by_label("Boxes drawn on a frame").check()
    frame = page.locator("#mask-frame")
    frame.fill("4")  # a later frame to draw on
    sync_api.expect(page.locator("#mask-frame-label")).to_have_text("Frame shown: 4")
    draw_box(page, 0.25, 0.5, 0.75, 0.875)
    boxes = page.locator("#mask-boxes li")
    sync_api.expect(boxes).to_have_count(1)
    sync_api.expect(boxes.first).to_contain_text("25%, 50%, 50% wide, 37.5% high, every frame")
    # by keyboard: type a box, add it, then remove it again
    page.get_by_label("Left %").fill("10")
    page.get_by_label("Frames the next box covers").fill("1-2")
    page.locator("#mask-box-add").focus()
    page.keyboard.press("Enter")
    sync_api.expect(boxes).to_have_count(2)
    sync_api.expect(boxes.nth(1)).to_contain_text("frames 1, 2")
    page.get_by_role("button", name="Remove box 2").focus()
    page.keyboard.press("Enter")
    sync_api.expect(boxes).to_have_count(1)
    assert_labelled(page)
    page.screenshot(path=SHOTS / "mask-1280.png", full_page=True)
    page.set_viewport_size(NARROW)
    page.locator("#mask-fieldset").screenshot(path=SHOTS / "mask-390.png")
    page.set_viewport_size(WIDE)

    job_id = start_training(page, **(TINY_FIELDS | {"epochs": "5"}))
    job = job_json(server, job_id)
    assert job["mask"] == {
        "kind": "regions",
        "boxes": [{"x": 0.25, "y": 0.5, "width": 0.5, "height": 0.375, "frames": None}],
    }
    sync_api.expect(badge(page, job_id)).to_have_text("succeeded", timeout=180_000)
    open_job(page, job_id)
    captions = page.locator("#job-videos figcaption")
    sync_api.expect(captions.nth(0)).to_have_text("training clip")
    sync_api.expect(captions.nth(1)).to_contain_text("occluded clip")
    sync_api.expect(captions.nth(2)).to_contain_text("recovered video")
    sync_api.expect(page.locator("#job-videos .occluded .hole")).to_have_count(1)
    hidden = page.locator("#job-report [data-metric=occluded_fraction]")
    sync_api.expect(hidden).to_contain_text("% of the pixels")
    names = page.locator("#job-downloads a").all_inner_texts()
    assert {"recovered.mp4", "reconstruction.mp4", "model.safetensors"} <= set(names), names
    assert_labelled(page)
    assert_videos_keep_in_step(page)
    page.screenshot(path=SHOTS / "masked-job-page-1280.png", full_page=True)
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_timeout(700)  # the README's picture: mid-play, the boxes over the clip
    page.locator("#job-view").screenshot(path=SHOTS / "masked-job-1280.png")
    page.set_viewport_size(NARROW)
    assert_fits(page)
    page.screenshot(path=SHOTS / "masked-job-390.png", full_page=True)


def assert_videos_keep_in_step(page: Any) -> None:
    """One Play drives every video; seeking moves them all; they stay within 0.15 s."""
    videos = page.locator("#job-videos video")
    for index in range(videos.count()):
        assert videos.nth(index).evaluate(DURATION) > 1.0  # 8 or 10 frames at 5 fps
    page.get_by_role("button", name="Play", exact=True).click()
    positions = []
    for _ in range(6):
        page.wait_for_timeout(250)
        position, times = page.evaluate(VIDEO_TIMES)
        positions.append(position)
        for t in times:  # each where the control is; a shorter one holds its last frame
            assert abs(t["time"] - min(position, t["duration"])) < 0.15, (position, times)
            if position < t["duration"] - 0.1 or position >= t["duration"]:
                assert t["paused"] == (position >= t["duration"]), (position, times)
    assert len(set(positions)) == len(positions), f"the control did not move: {positions}"
    page.get_by_role("button", name="Pause", exact=True).focus()
    page.keyboard.press("Space")
    seek = page.get_by_label("Position in all the videos")
    seek.fill("500")  # halfway
    position, times = page.evaluate(VIDEO_TIMES)
    longest = max(t["duration"] for t in times)
    assert abs(position - longest / 2) < 0.01
    for t in times:
        assert t["paused"] and abs(t["time"] - min(longest / 2, t["duration"])) < 0.01, times
    seek.press("Home")  # the slider by keyboard: back to the start, every video with it
    assert all(t["time"] == 0 and t["paused"] for t in page.evaluate(VIDEO_TIMES)[1])


def test_a_failed_masked_training_is_retried_with_the_same_config(
    page: Any, server: str, clip: Path
) -> None:
    upload_clip(page, clip)
    page.get_by_label("Missing frames", exact=True).check()
    # every one of the 8 trained frames missing: admission can't see it, the worker refuses it
    page.get_by_label("Missing frames (the clip's").fill("0-3, 4-7")
    job_id = start_training(page, **TINY_FIELDS)
    assert job_json(server, job_id)["mask"] == {"kind": "missing_frames", "frames": list(range(8))}
    sync_api.expect(badge(page, job_id)).to_have_text("failed", timeout=60_000)
    open_job(page, job_id)
    sync_api.expect(page.locator("#job-summary")).to_contain_text("the mask hides every pixel")
    page.get_by_role("button", name="Retry with the same config").click()
    again = page.locator("#job-list li").first
    sync_api.expect(again).not_to_have_attribute("data-job-id", job_id)
    again_id = str(again.get_attribute("data-job-id"))
    assert_same_request(job_json(server, job_id), job_json(server, again_id))
    sync_api.expect(badge(page, again_id)).to_have_text("failed", timeout=60_000)


def test_a_mask_file_is_uploaded_and_its_job_trains_with_it(
    page: Any, server: str, clip: Path, tmp_path: Path
) -> None:
    hidden = np.zeros((8, 16, 16), np.uint8)  # the 8 training frames, 1 = occluded
    hidden[:, 4:12, 4:12] = 1
    np.save(tmp_path / "hole.npy", hidden)
    upload_clip(page, clip)
    page.get_by_label("A mask file").check()
    page.get_by_label("Mask file:").set_input_files(str(tmp_path / "hole.npy"))
    sync_api.expect(page.locator("#mask-file-status")).to_contain_text("8 frames of 16 × 16, ready")
    job_id = start_training(page, **(TINY_FIELDS | {"epochs": "20000"}))
    mask = job_json(server, job_id)["mask"]
    assert mask["kind"] == "upload"
    upload = httpx.get(f"{server}/v1/videos/{mask['video_id']}").json()
    assert (upload["kind"], upload["filename"], upload["frames"]) == ("mask", "hole.npy", 8)
    page.get_by_role("button", name=f"cancel {job_id}").click()
    sync_api.expect(badge(page, job_id)).to_have_text("cancelled", timeout=60_000)


def test_a_mask_field_mistake_shows_at_the_field(page: Any, clip: Path) -> None:
    upload_clip(page, clip)
    page.get_by_label("Missing frames", exact=True).check()
    field = page.get_by_label("Missing frames (the clip's")
    field.fill("3, five")
    page.get_by_role("button", name="Start training").click()
    error = page.locator('#train-form [data-error-for="mask.frames"]')
    sync_api.expect(error).to_contain_text('"five" is not a frame number')
    sync_api.expect(field).to_be_focused()
    field.fill("3")
    page.get_by_label("Quick preview (LDS, seconds)").check()
    page.get_by_role("button", name="Start training").click()  # the API refuses LDS with a mask
    sync_api.expect(page.locator('#train-form [data-error-for="mask"]')).to_contain_text("lds")


def test_docs_render_with_nothing_leaving_localhost(browser: Any, server: str) -> None:
    context = browser.new_context(viewport=WIDE)
    tab = context.new_page()
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    tab.goto(f"{server}/docs")
    sync_api.expect(tab.locator(".swagger-ui .info .title")).to_contain_text("dyngen")
    sync_api.expect(tab.locator(".opblock").first).to_be_visible()
    context.close()
    outside = [url for url in requested if not url.startswith(f"{server}/")]
    assert requested and not outside, outside


def test_apikey_mode_asks_for_the_key_once_and_sends_it_as_a_header(
    browser: Any, tmp_path: Path, clip: Path
) -> None:
    env = service_env(tmp_path, auth="apikey")
    run_cli(["migrate"], env)
    key = run_cli(["apikey", "create", "web"], env).strip()
    with start_serve(tmp_path, env) as base:
        assert httpx.get(f"{base}/v1/jobs").status_code == 401
        context = browser.new_context(viewport=NARROW)
        tab = context.new_page()
        sent: list[tuple[str, str, str | None]] = []
        tab.on("request", lambda r: sent.append((r.method, r.url, r.headers.get("authorization"))))
        tab.goto(base)
        dialog = tab.get_by_role("dialog")
        tab.get_by_label("Your API key").fill("dgk_not-a-key")
        tab.get_by_role("button", name="Use this key").click()
        sync_api.expect(dialog).to_contain_text("refused")
        tab.get_by_label("Your API key").fill(key)
        tab.get_by_role("button", name="Use this key").click()
        tab.wait_for_selector("body[data-ready=true]")
        upload_clip(tab, clip)
        tab.screenshot(path=SHOTS / "upload-390.png", full_page=True)
        tab.reload()  # the key outlives a reload of the tab: no second prompt
        tab.wait_for_selector("body[data-ready=true]")
        sync_api.expect(dialog).to_be_hidden()
        context.close()
    assert not [url for _, url, _ in sent if key in url], "the key went into a URL"
    with_key = [(method, url) for method, url, auth in sent if auth == f"Bearer {key}"]
    assert ("POST", f"{base}/v1/videos") in with_key, sent


def train_over_http(server: str, clip: Path) -> dict[str, Any]:
    """A tiny model trained through the API (the page's training is tested above)."""
    with httpx.Client(base_url=server, timeout=10) as http:
        body = {"type": "train", "video_ids": [upload(http, clip)], "config": TINY_TRAIN}
        trained = finished(http, ok(http.post("/v1/jobs", json=body), 202)["id"], 120)
    assert trained["status"] == "succeeded", trained
    return trained


def test_a_still_image_is_uploaded_and_animated_with_a_trained_model(
    page: Any, server: str, clip: Path, tmp_path: Path
) -> None:
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    Image.fromarray(frames[9]).save(tmp_path / "still.png")  # a frame past the 8 trained on
    trained = train_over_http(server, clip)
    page.reload()  # the page lists the models there are when it starts
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("#file-input", str(tmp_path / "still.png"))
    sync_api.expect(page.locator("#clip-image")).to_be_visible()
    sync_api.expect(page.locator("[data-fact=frames]")).to_have_text("1")
    sync_api.expect(page.locator("#clip-video")).to_be_hidden()
    sync_api.expect(page.get_by_label("Still image", exact=True)).to_contain_text("still.png")
    page.get_by_label("Trained model", exact=True).select_option(trained["model_id"])
    page.get_by_label("Frames per video").fill("12")
    page.get_by_label("Videos", exact=True).fill("2")
    page.locator("#animate-advanced summary").click()
    page.locator("#animate-fields").get_by_label("steps", exact=True).fill("20")
    assert_labelled(page)
    page.locator("#animate").screenshot(path=SHOTS / "animate-form-1280.png")
    before = page.locator("#job-list li").count()
    page.get_by_role("button", name="Animate", exact=True).click()
    sync_api.expect(page.locator("#job-list li")).to_have_count(before + 1)
    job_id = str(page.locator("#job-list li").first.get_attribute("data-job-id"))
    job = job_json(server, job_id)
    assert (job["type"], job["model_id"]) == ("animate", trained["model_id"])
    assert (job["config"]["frames"], job["config"]["num_videos"], job["config"]["steps"]) == (
        12,
        2,
        20,
    )
    sync_api.expect(badge(page, job_id)).to_have_text("succeeded", timeout=120_000)
    sync_api.expect(page.locator(f'[data-job-id="{job_id}"] progress')).to_have_js_property(
        "value", 1
    )
    open_job(page, job_id, "animate")
    sync_api.expect(page.locator("#job-title")).to_have_text(f"Animation job {job_id}")
    sync_api.expect(page.locator("#job-videos figcaption").first).to_have_text(
        "the still image animated"
    )
    still = page.locator('#job-videos figure[data-caption="the still image animated"] img')
    assert (
        still.evaluate(
            "i => new Promise(ok => i.complete ? ok(i.naturalWidth) : i.onload ="
            " () => ok(i.naturalWidth))"
        )
        > 0
    )
    videos = page.locator('#job-videos figure[data-caption^="animation"] video')
    sync_api.expect(videos).to_have_count(2)
    assert all(videos.nth(i).evaluate(DURATION) > 0 for i in range(2))
    page.get_by_role("button", name="Play", exact=True).click()
    played = videos.first.evaluate(
        "v => new Promise(ok => setTimeout(() => ok(v.currentTime), 300))"
    )
    assert played > 0, "the animation did not play"
    page.get_by_role("button", name="Pause", exact=True).click()
    psnr = page.locator("#job-report [data-metric=first_frame_psnr]")
    sync_api.expect(psnr).to_contain_text("dB PSNR")
    names = set(page.locator("#job-downloads a").all_inner_texts())
    assert {"video-1.mp4", "video-2.mp4"} <= names, names
    assert_labelled(page)
    page.screenshot(path=SHOTS / "animate-job-1280.png", full_page=True)
    page.set_viewport_size(NARROW)
    assert_fits(page)


def test_an_object_is_removed_with_boxes_drawn_and_shown_beside_the_clip(
    page: Any, server: str, slow_clip: Path
) -> None:
    upload_clip(page, slow_clip)
    page.get_by_label("Remove an object:").check()
    # removing an object needs a mask: boxes are offered, and none drawn is refused at them
    sync_api.expect(page.get_by_label("Boxes drawn on a frame")).to_be_checked()
    sync_api.expect(page.locator("#purpose-help")).to_be_visible()
    page.get_by_role("button", name="Start training").click()
    refusal = page.locator('#train-form [data-error-for="mask.boxes"]')
    sync_api.expect(refusal).to_contain_text("at least one box")
    draw_box(page, 0.25, 0.25, 0.625, 0.625)
    sync_api.expect(page.locator("#mask-boxes li")).to_have_count(1)
    whole_clip = {k: v for k, v in TINY_FIELDS.items() if k != "frames"}
    job_id = start_training(page, **(whole_clip | {"epochs": "5"}))
    job = job_json(server, job_id)
    # the inpainting defaults: the whole 10-frame clip, stretched, recovery's sigma
    config = job["config"]
    assert (config["frames"], config["resize"], config["sigma"]) == (10, "stretch", 0.5)
    assert job["mask"]["kind"] == "regions"
    sync_api.expect(badge(page, job_id)).to_have_text("succeeded", timeout=180_000)
    open_job(page, job_id)
    side = page.locator('#job-videos figure[data-caption^="original | cleaned"] video')
    sync_api.expect(side).to_have_count(1)
    assert side.evaluate(DURATION) > 1.0  # 10 frames at 5 fps
    assert (
        side.evaluate(
            "v => new Promise(ok => v.readyState >= 1 ? ok(v.videoWidth)"
            " : v.addEventListener('loadedmetadata', () => ok(v.videoWidth)))"
        )
        == 34
    )
    sync_api.expect(page.locator("#job-videos .occluded .hole")).to_have_count(1)
    names = set(page.locator("#job-downloads a").all_inner_texts())
    assert {"side_by_side.mp4", "recovered.mp4", "inpainting.png"} <= names, names
    assert_labelled(page)
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_timeout(700)
    page.locator("#job-view").screenshot(path=SHOTS / "inpaint-job-1280.png")
    page.set_viewport_size(NARROW)
    assert_fits(page)


def test_an_object_is_removed_with_an_uploaded_mask_of_the_whole_clip(
    page: Any, server: str, clip: Path, tmp_path: Path
) -> None:
    hidden = np.zeros((10, 16, 16), np.uint8)  # the whole 10-frame clip, 1 = the object
    hidden[:, 4:12, 4:12] = 1
    np.save(tmp_path / "object.npy", hidden)
    upload_clip(page, clip)
    page.get_by_label("Remove an object:").check()
    page.get_by_label("A mask file").check()
    page.get_by_label("Mask file:").set_input_files(str(tmp_path / "object.npy"))
    sync_api.expect(page.locator("#mask-file-status")).to_contain_text("10 frames of 16 × 16")
    whole_clip = {k: v for k, v in TINY_FIELDS.items() if k != "frames"}
    job_id = start_training(page, **(whole_clip | {"epochs": "20000"}))
    job = job_json(server, job_id)
    assert (job["config"]["frames"], job["config"]["resize"]) == (10, "stretch")
    assert job["mask"]["kind"] == "upload"
    page.get_by_role("button", name=f"cancel {job_id}").click()
    sync_api.expect(badge(page, job_id)).to_have_text("cancelled", timeout=60_000)
