"""The page, its assets and /docs come from this server; videos and images can show inline."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from core.job_states import TERMINAL
from core.settings import Settings
from tests.service.conftest import upload
from tests.service.factories import finished_training

STATIC = Path(__file__).resolve().parents[2] / "api" / "web" / "static"


def test_page_and_assets_are_served_with_no_outside_url(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in STATIC.iterdir():
        if path.suffix in (".js", ".css"):
            assert client.get(f"/ui/{path.name}").status_code == 200, path.name
    for path in STATIC.iterdir():
        # every URL the page loads is a path on this server: it works offline (SVG's
        # namespace is a name, never fetched)
        text = path.read_text().replace('"http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), path.name


def test_the_page_takes_job_statuses_from_core(client: TestClient) -> None:
    module = client.get("/ui/job-states.js")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    terminal = json.loads(re.search(r"TERMINAL = new Set\((.*)\);", module.text)[1])
    assert set(terminal) == {s.value for s in TERMINAL}
    app_js = (STATIC / "app.js").read_text()
    assert 'from "./job-states.js"' in app_js and '"succeeded", "failed"' not in app_js


def test_docs_load_swagger_ui_from_this_server(client: TestClient) -> None:
    html = client.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/docs-assets/") for s in sources), sources
    assert "url: '/openapi.json'" in html or '"url": "/openapi.json"' in html
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "/" not in client.get("/openapi.json").json()["paths"]  # the page is not API


def test_video_content_inline_keeps_its_name_and_ranges(client: TestClient, clip: Path) -> None:
    video = upload(client, clip)
    url = video["content_url"]
    attached = client.get(url)
    assert attached.headers["content-disposition"] == 'attachment; filename="clip.mp4"'
    shown = client.get(url, params={"inline": "1"})
    assert shown.headers["content-disposition"] == 'inline; filename="clip.mp4"'
    assert shown.headers["content-type"] == "video/mp4" and shown.content == attached.content
    part = client.get(url, params={"inline": "1"}, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == attached.content[:100]
    assert part.headers["content-disposition"].startswith("inline;")


def test_inline_leaves_other_artifacts_downloads(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    _, _, artifact = finished_training(settings, tmp_path)
    response = client.get(f"/v1/artifacts/{artifact.id}", params={"inline": "true"})
    # a checkpoint is no video or image: a browser still saves it under its name
    assert response.headers["content-disposition"] == 'attachment; filename="model.safetensors"'
