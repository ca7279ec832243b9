"""Query helpers shared by core's modules: ownership filters and cursor pages."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")


def owned(column: InstrumentedAttribute[Any], owner_id: str | None) -> ColumnElement[bool]:
    """Rows of `owner_id`; None is the open local mode's anonymous owner."""
    return column.is_(None) if owner_id is None else column == owner_id


def page(
    session: Session,
    stmt: Select[T],
    id_column: InstrumentedAttribute[str],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """Newest first, `limit` rows after `cursor` (ids sort by creation time: an id is a cursor)."""
    if cursor is not None:
        stmt = stmt.where(id_column < cursor)
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, str(getattr(rows[-1], id_column.key))
