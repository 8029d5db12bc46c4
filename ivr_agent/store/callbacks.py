"""Callback requests (table `callbacks`, migration 4): add, list, close.

`add_callback` takes a `Db` (the service's shared writer: the insert runs under its write lock)
or a bare connection opened with `isolation_level=None` (CLI, tests: one autocommit INSERT).
"""

from __future__ import annotations

import sqlite3
from typing import Final

import aiosqlite

from ivr_agent.errors import IvrAgentError, StorageError
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db

REASONS: Final = ("after_hours", "complaint", "other")
STATUSES: Final = ("open", "done", "cancelled")

_COLS: Final = (
    "id, call_id, caller_number, reason, due_at, status, note, created_by, created_at, "
    "closed_by, closed_at"
)


class CallbackError(IvrAgentError, ValueError):
    """A callback request that cannot be stored or changed; the message says why."""


_INSERT: Final = (
    "INSERT INTO callbacks (call_id, caller_number, reason, due_at, note, created_by, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


async def add_callback(
    db_or_conn: Db | aiosqlite.Connection,
    *,
    call_id: str,
    caller_number: str,
    reason: str,
    due_at: float,
    note: str,
    created_by: str,
    at: float,
) -> int:
    """Store an open callback request; returns its id."""
    if reason not in REASONS:
        raise CallbackError(f"callback reason {reason!r}: one of {', '.join(REASONS)}")
    if not caller_number.strip():
        raise CallbackError("callback without a caller number")
    params = (call_id, caller_number, reason, utc_text(due_at), note, created_by, utc_text(at))
    try:
        if isinstance(db_or_conn, Db):
            async with db_or_conn.write() as conn:
                cur = await conn.execute(_INSERT, params)
        else:
            cur = await db_or_conn.execute(_INSERT, params)
    except sqlite3.Error as err:
        raise StorageError(f"cannot store callback request: {err}") from err
    if cur.lastrowid is None:  # pragma: no cover - sqlite always sets it after an INSERT
        raise StorageError("callback insert returned no id")
    return int(cur.lastrowid)


async def list_callbacks(
    conn: aiosqlite.Connection,
    *,
    status: str | None = None,
    overdue_at: float | None = None,
    limit: int = 100,
) -> list[dict[str, object]]:
    """Callback requests, oldest due first. `overdue_at`: only those due at or before it."""
    where: list[str] = []
    params: list[object] = []
    if status is not None:
        if status not in STATUSES:
            raise CallbackError(f"callback status {status!r}: one of {', '.join(STATUSES)}")
        where.append("status = ?")
        params.append(status)
    if overdue_at is not None:
        where.append("due_at <= ?")
        params.append(utc_text(overdue_at))
    sql = f"SELECT {_COLS} FROM callbacks"  # a fixed column list; values are bound
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY due_at, id LIMIT ?"
    params.append(max(1, min(limit, 10_000)))
    try:
        cur = await conn.execute(sql, params)
        rows = await cur.fetchall()
    except sqlite3.Error as err:
        raise StorageError(f"cannot list callback requests: {err}") from err
    names = [c.strip() for c in _COLS.split(",")]
    return [dict(zip(names, tuple(row), strict=True)) for row in rows]


async def set_callback_status(
    db_or_conn: Db | aiosqlite.Connection,
    id: int,  # the agreed signature (shadows the builtin)
    status: str,
    *,
    by: str,
    at: float,
    note: str = "",
) -> None:
    """Close (done/cancelled) or reopen a callback request. Unknown id -> CallbackError."""
    if status not in STATUSES:
        raise CallbackError(f"callback status {status!r}: one of {', '.join(STATUSES)}")
    closed = status != "open"
    sql = (
        "UPDATE callbacks SET status = ?, closed_by = ?, closed_at = ?,"
        " note = CASE WHEN ? = '' THEN note WHEN note = '' THEN ? ELSE note || char(10) || ? END"
        " WHERE id = ?"
    )
    params = (status, by if closed else "", utc_text(at) if closed else None, note, note, note, id)
    try:
        if isinstance(db_or_conn, Db):
            async with db_or_conn.write() as conn:
                cur = await conn.execute(sql, params)
        else:
            cur = await db_or_conn.execute(sql, params)
    except sqlite3.Error as err:
        raise StorageError(f"cannot update callback request {id}: {err}") from err
    if cur.rowcount == 0:
        raise CallbackError(f"no callback request {id}")
