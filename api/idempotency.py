"""The `Idempotency-Key` header of POST /v1/jobs and POST /v1/videos.

The first request with a key runs and its answer is kept (24 h by default); a retry with the
same key and the same request gets that answer again (`Idempotent-Replayed: true`), with a
different request 422 `idempotency_key_reused`, and while the first is still running 409
`idempotency_key_in_progress`. A request that fails gives its key back, so a retry runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from api.deps import Services
from api.errors import ApiError
from core.db import session_scope
from core.errors import Conflict, Invalid
from core.idempotency import complete_key, find_key, release_key, reserve_key

Answer = TypeVar("Answer", bound=BaseModel)
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="a retry with the same key and request returns the first answer (24 h)",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"


def fingerprint(route: str, request: Any) -> str:
    """The sha256 of the route and the request's content, in a canonical JSON form."""
    canonical = json.dumps([route, request], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Once:
    """One request's claim on its idempotency key."""

    def __init__(
        self, services: Services, owner_id: str | None, key: str, fingerprint: str
    ) -> None:
        self.services, self.owner_id, self.key, self.fingerprint = (
            services,
            owner_id,
            key,
            fingerprint,
        )

    def begin(self) -> JSONResponse | None:
        """None when this request runs; the first answer to replay; or raises 409 / 422."""
        for _ in range(2):  # a second go after an expired row was cleared away
            if self._reserve():
                return None
            replay = self._earlier()
            if replay is not None:
                return replay
        raise ApiError(409, "idempotency_key_in_progress", "the key was taken meanwhile; retry")

    def _reserve(self) -> bool:
        try:
            with session_scope(self.services.sessions) as session:
                reserve_key(
                    session=session,
                    owner_id=self.owner_id,
                    key=self.key,
                    fingerprint=self.fingerprint,
                )
            return True
        except IntegrityError:
            return False  # the unique (owner, key) constraint: another request has it

    def _earlier(self) -> JSONResponse | None:
        """The kept answer of the earlier request with the key (None if it just expired)."""
        ttl = self.services.settings.idempotency_ttl_seconds
        with session_scope(self.services.sessions) as session:
            row = find_key(session=session, owner_id=self.owner_id, key=self.key, ttl_seconds=ttl)
            if row is None:
                return None
            if row.fingerprint != self.fingerprint:
                raise Invalid(
                    "Idempotency-Key: this key was used with a different request; "
                    "use a new key for a new request",
                    code="idempotency_key_reused",
                    details=[{"field": "Idempotency-Key"}],
                )
            if row.status_code is None or row.response is None:
                raise Conflict(
                    "Idempotency-Key: the first request with this key is still being answered; "
                    "retry shortly",
                    code="idempotency_key_in_progress",
                )
            content = json.loads(row.response)
            status = row.status_code
        return JSONResponse(content, status_code=status, headers={REPLAYED_HEADER: "true"})

    def keep(self, status_code: int, answer: BaseModel) -> None:
        """Store the answer for the key's retries."""
        with session_scope(self.services.sessions) as session:
            complete_key(
                session=session,
                owner_id=self.owner_id,
                key=self.key,
                status_code=status_code,
                response=answer.model_dump_json(),
            )

    def abandon(self) -> None:
        """Give the key back: the request failed, a retry should run."""
        with session_scope(self.services.sessions) as session:
            release_key(session=session, owner_id=self.owner_id, key=self.key)


def run_once(
    services: Services,
    owner_id: str | None,
    key: str | None,
    *,
    route: str,
    request: Any,
    status_code: int,
    answer: Callable[[], Answer],
) -> Answer | JSONResponse:
    """`answer()`, unless an earlier request with the key was answered: then that answer."""
    if key is None:
        return answer()
    once = Once(services, owner_id, key, fingerprint(route, request))
    if (replay := once.begin()) is not None:
        return replay
    try:
        result = answer()
    except BaseException:
        once.abandon()
        raise
    once.keep(status_code, result)
    return result
