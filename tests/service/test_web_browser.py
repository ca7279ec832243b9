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

import httpx
import pytest

from tests.service.conftest import TINY_TRAIN, free_port
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


def upload_clip(page: Any, clip: Path) -> None:
    page.set_input_files("#file-input", str(clip))
    sync_api.expect(page.locator("[data-fact=frames]")).to_have_text("10")
    sync_api.expect(page.locator("#upload-progress")).to_have_js_property("value", 1)


def start_training(page: Any, **fields: str) -> str:
    """Fill the advanced form, submit; the new job's id."""
    page.get_by_label("Standard").check()
    page.locator("#train-advanced summary").click()
    advanced = page.locator("#train-fields")
    advanced.get_by_label("image_size", exact=True).select_option("16")
    for name, value in fields.items():
        advanced.get_by_label(name, exact=True).fill(value)
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


def badge(page: Any, job_id: str) -> Any:
    return page.locator(f'[data-job-id="{job_id}"] .badge')


def test_upload_train_watch_and_play_a_synthesis(page: Any, clip: Path) -> None:
    upload_clip(page, clip)
    clip_duration = page.locator("#clip-video").evaluate(DURATION)
    assert clip_duration > 0
    job_id = start_training(page, **(TINY_FIELDS | {"epochs": "40"}))
    record_progress(page, job_id)
    sync_api.expect(badge(page, job_id)).to_have_text("succeeded", timeout=120_000)
    seen = page.evaluate("[...window.seenProgress]")
    assert any(0 < value < 1 for value in seen), f"the bar never showed a partial epoch: {seen}"
    assert 1 in seen
    chart = page.locator(f'[data-job-id="{job_id}"] .loss-chart polyline')
    assert len(str(chart.get_attribute("points")).split()) > 1, "the loss chart did not grow"
    page.screenshot(path=SHOTS / "jobs-1280.png", full_page=True)

    page.get_by_role("button", name=f"train {job_id}").click()
    sync_api.expect(page.locator("#job-videos figure")).not_to_have_count(0)
    assert "reconstruction" in page.locator("#job-videos").inner_text()
    synth = page.locator("#synth-form")
    for name, value in {"num_videos": "1", "frames": "16", "fps": "10"}.items():
        synth.get_by_label(name, exact=True).fill(value)
    synth.get_by_role("button", name="Synthesize").click()
    view = page.locator("#job-view[data-status=succeeded]")
    sync_api.expect(page.locator("#job-title")).to_contain_text("Synthesis", timeout=10_000)
    sync_api.expect(view).to_be_visible(timeout=60_000)
    video = page.locator("#job-videos video").first
    duration = video.evaluate(DURATION)
    assert duration > 0
    played = video.evaluate(
        """v => new Promise(ok => { v.currentTime = 0; v.play();
        setTimeout(() => ok(v.currentTime), 700); })"""
    )
    assert played > 0, "the synthesized video did not advance"
    page.screenshot(path=SHOTS / "job-1280.png", full_page=True)
    page.set_viewport_size(NARROW)
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


def test_cancel_a_running_training_and_retry_it(page: Any, clip: Path) -> None:
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
