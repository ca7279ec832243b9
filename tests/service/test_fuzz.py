"""Schemathesis over the OpenAPI spec, against the real app on a real database, with a key.

Every operation gets schema-valid requests (with made-up ids, then with the ids of real
objects) and schema-breaking ones; no response may be a 500, and every response must match
what the spec declares (status code, content type, headers, body).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from core.settings import Settings
from tests.service.conftest import TINY_TRAIN, RecordingQueue, new_key, upload
from tests.service.factories import finished_training

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
EXAMPLES = 25  # per operation and mode: about 900 requests, 10-20 s a database on an idle machine


@pytest.mark.timeout(600)  # a hang, not a speed target (speed lives in benchmarks)
def test_the_spec_holds_under_fuzzing(
    settings: Settings, queue: RecordingQueue, clip: Path, tmp_path: Path
) -> None:
    secured = settings.model_copy(update={"auth": "apikey"})
    app = create_app(secured, queue=queue)
    key = {"Authorization": f"Bearer {new_key(secured)}"}
    ids = _seed(app, key, secured, clip, tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        real = {name: v for name, v in ids.items() if f"{{{name}}}" in operation.path}
        _fuzz(operation, GenerationMode.POSITIVE, key)
        _fuzz(operation, GenerationMode.NEGATIVE, key)
        if real:
            _fuzz(operation, GenerationMode.POSITIVE, key, real)


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    key: dict[str, str],
    path_parameters: dict[str, str] | None = None,
) -> None:
    """Up to EXAMPLES generated requests to one operation, each response checked."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        # The event stream follows a job until it ends; fuzzed requests read the JSON page.
        if case.headers and "accept" in {h.lower() for h in case.headers}:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "accept"}
        response = case.call(headers=key)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # an operation without parameters or body has no schema-breaking request to make
        if mode is not GenerationMode.NEGATIVE:
            raise
    except Exception as err:
        err.add_note(f"operation: {operation.label} ({mode.value})")
        raise


def _seed(
    app: object, key: dict[str, str], settings: Settings, clip: Path, tmp_path: Path
) -> dict[str, str]:
    """A video, a queued job and a finished model with its checkpoint: their ids by name."""
    from fastapi.testclient import TestClient

    from core.auth import authenticate
    from core.db import session_factory, session_scope

    with TestClient(app) as client:  # type: ignore[arg-type]
        video = upload(client, clip, **key)
        body = {"type": "train", "video_ids": [video["id"]], "config": TINY_TRAIN}
        job = client.post("/v1/jobs", json=body, headers=key)
        assert job.status_code == 202, job.text
    with session_scope(session_factory(settings.db_url)) as session:
        owner = authenticate(session=session, key=key["Authorization"].split()[1])
        assert owner is not None
        owner_id = owner.id
    _, model_id, checkpoint = finished_training(settings, tmp_path, owner_id=owner_id)
    return {
        "video_id": video["id"],
        "job_id": job.json()["id"],
        "model_id": model_id,
        "artifact_id": checkpoint.id,
    }
