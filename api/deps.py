"""What routes are handed: the app's services, a database session, the caller's identity."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError
from api.quotas import KeySlots, ProbeGate
from core.auth import authenticate
from core.db import session_scope
from core.queue import JobQueue
from core.settings import Settings
from core.storage import Store

log = logging.getLogger("dyngen.api")


@dataclass
class Services:
    """Everything built once per app: settings, sessions, storage, the job queue, quotas."""

    settings: Settings
    sessions: sessionmaker[Session]
    store: Store
    queue: JobQueue
    uploads: KeySlots
    streams: KeySlots
    probes: ProbeGate


def get_services(request: Request) -> Services:
    """The app's services (set by create_app)."""
    services: Services = request.app.state.services
    return services


def get_db(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    """A session per route call, closed when the route returns (before a body streams)."""
    session = services.sessions()
    try:
        yield session
    finally:
        _close(session)


def _close(session: Session) -> None:
    # A connection the database dropped meanwhile is already discarded by the pool and is
    # no error of this request's.
    try:
        session.close()
    except SQLAlchemyError as err:
        log.warning("closing a database session failed: %s", err)


ServicesDep = Annotated[Services, Depends(get_services)]
# Function scope: the connection goes back to the pool when the route returns, not when a
# download or an event stream it answered with ends.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


@dataclass(frozen=True)
class Caller:
    """Who is asking: an API key's id, or None for the open local mode's anonymous user."""

    owner_id: str | None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be `Bearer <API key>`")
    return token.strip()


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def get_caller(request: Request, services: ServicesDep) -> Caller:
    """Authenticate the request's API key; open mode lets a request without one through."""
    token = _bearer(request)
    if token is None:
        if services.settings.auth == "open":
            return Caller(None)
        raise _unauthorized("this server needs an API key: send `Authorization: Bearer <key>`")
    # a session of its own, closed at once: an upload that follows holds no connection
    with session_scope(services.sessions) as session:
        key = authenticate(session=session, key=token)
        key_id = None if key is None else key.id
    if key_id is None:
        raise _unauthorized("unknown or revoked API key")
    return Caller(key_id)


CallerDep = Annotated[Caller, Depends(get_caller)]
