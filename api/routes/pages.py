"""The web page at `/` and an offline `/docs`: every asset comes from the installed packages."""

from __future__ import annotations

import json
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from core.job_states import TERMINAL, JobStatus, JobType

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
# only its bundled Swagger UI files are used, not its app class
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS = "/docs-assets"
router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The page: upload, train, watch jobs, play their videos."""
    # no-cache: a page from an older install never pairs with a newer API
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/ui/job-states.js")
def job_states() -> Response:
    """The job statuses and types as an ES module, from core's enums (the page imports it)."""
    lines = [
        f"export const STATUSES = {json.dumps([s.value for s in JobStatus])};",
        f"export const TERMINAL = new Set({json.dumps(sorted(TERMINAL))});",
        f"export const TYPES = {json.dumps([t.value for t in JobType])};",
        # by name, so the page writes Status.SUCCEEDED where it would restate "succeeded"
        f"export const Status = Object.freeze({json.dumps({s.name: s.value for s in JobStatus})});",
        f"export const Type = Object.freeze({json.dumps({t.name: t.value for t in JobType})});",
    ]
    return Response(
        "\n".join(lines) + "\n",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/docs")
def docs() -> HTMLResponse:
    """Swagger UI with its scripts and styles served from here, so it works with no internet."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="dyngen API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )


def install_pages(app: FastAPI) -> None:
    """Serve the page, its assets under /ui and Swagger UI's under /docs-assets."""
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI), name="docs-assets")
