"""Engines and sessions: one engine per database URL per process, sessions owned at the edges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_MS = 30_000
PG_TCP_USER_TIMEOUT_MS = 15_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes; the busy timeout makes writers queue
    # instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class PoolLimits:
    """How many connections an engine keeps and how long a checkout waits for one."""

    size: int = 5
    overflow: int = 10
    timeout: float = 30.0


@lru_cache(maxsize=8)
def engine_for(url: str, connect_timeout: float = 3.0, pool: PoolLimits | None = None) -> Engine:
    """The process's engine for `url`, built on first use."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre-ping replaces connections that died while pooled; keepalives and the TCP user
    # timeout make a connection to a vanished server fail in seconds instead of hanging.
    connect_args = {
        "connect_timeout": max(1, round(connect_timeout)),
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
    }
    pool = pool or PoolLimits()
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args=connect_args,
        pool_size=pool.size,
        max_overflow=pool.overflow,
        pool_timeout=pool.timeout,
    )


@lru_cache(maxsize=8)
def session_factory(
    url: str, connect_timeout: float = 3.0, pool: PoolLimits | None = None
) -> sessionmaker[Session]:
    """Sessions on the engine for `url`; objects stay readable after commit."""
    return sessionmaker(engine_for(url, connect_timeout, pool), expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends cleanly and rolls back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
