"""`python -m benchmarks.api_extras`: a /metrics scrape against a jobs table of N finished
jobs, and POST /v1/models of a default-config checkpoint (issue 19).

Needs PostgreSQL on 127.0.0.1:5432 (database `test`; a scratch schema is made and dropped).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import torch
from fastapi.testclient import TestClient
from sqlalchemy import insert, text

import migrations
from api.app import create_app
from core.db import engine_for
from core.ids import new_id
from core.settings import Settings
from core.tables import Job, utcnow
from model.checkpoint import save_checkpoint
from model.config import TrainConfig
from model.networks import DynamicGenerator

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated schema of its own in PostgreSQL's `test` database, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = engine_for(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    try:
        migrations.upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def add_finished_jobs(url: str, count: int) -> None:
    """`count` finished training jobs of spread-out durations."""
    now = utcnow()
    rows = [
        {
            "id": new_id("job"),
            "type": "train",
            "status": "succeeded",
            "config": {},
            "video_ids": [],
            "started_at": now - timedelta(seconds=i % 5000),
            "finished_at": now,
        }
        for i in range(count)
    ]
    with engine_for(url).begin() as conn:
        conn.execute(insert(Job), rows)


def scrape_ms(client: TestClient, repeats: int = 5) -> float:
    """Mean time of a /metrics scrape, in milliseconds."""
    client.get("/metrics")
    began = time.perf_counter()
    for _ in range(repeats):
        assert client.get("/metrics").status_code == 200
    return (time.perf_counter() - began) / repeats * 1000


def import_seconds(client: TestClient, folder: Path) -> tuple[float, float]:
    """(MB, seconds) of POST /v1/models with a checkpoint of the default config."""
    config = TrainConfig.model_validate({})
    path = folder / "model.safetensors"
    model = DynamicGenerator(config)
    save_checkpoint(path, config, model, torch.zeros(1, config.state_dim), torch.zeros(1, 0))
    began = time.perf_counter()
    with path.open("rb") as f:
        response = client.post("/v1/models", files={"file": (path.name, f)})
    assert response.status_code == 201, response.text
    return path.stat().st_size / 1e6, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=url, auth="open")
        with TestClient(create_app(settings)) as client:
            total = 0
            for count in sorted(args.jobs):
                add_finished_jobs(url, count - total)
                total = count
                print(f"/metrics with {count} finished jobs: {scrape_ms(client):.0f} ms a scrape")
            size, seconds = import_seconds(client, Path(tmp))
            print(f"POST /v1/models, default-config checkpoint ({size:.1f} MB): {seconds:.2f} s")


if __name__ == "__main__":
    main()
