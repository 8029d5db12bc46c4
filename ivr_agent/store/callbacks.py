"""Callback requests (table `callbacks`, migrations 4 and 7): add, list, claim, close, release.

`add_callback` takes a `Db` (the service's shared writer: the insert runs under its write lock)
or a bare connection opened with `isolation_level=None` (CLI, tests: one autocommit INSERT).
`claim`, `close` and `release` run inside the caller's `db.write()` transaction (so that the
change and its audit row commit together); each is one conditional UPDATE, so two agents
claiming the same callback at once cannot both win.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Final

import aiosqlite

from ivr_agent.errors import IvrAgentError, StorageError
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db, write_one

REASONS: Final = ("after_hours", "complaint", "other")
STATUSES: Final = ("open", "done", "cancelled")

_NAMES: Final = (
    "id", "call_id", "caller_number", "reason", "due_at", "status", "note", "created_by",
    "created_at", "closed_by", "closed_at", "assigned_to", "claimed_at", "complaint_id",
)  # fmt: skip
# The complaint that asked for the callback (complaints.callback_id), if any.
_SELECT: Final = (
    "SELECT id, call_id, caller_number, reason, due_at, status, note, created_by, created_at,"
    " closed_by, closed_at, assigned_to, claimed_at,"
    " (SELECT MIN(c.id) FROM complaints c WHERE c.callback_id = callbacks.id)"
    " FROM callbacks"
)


class CallbackError(IvrAgentError, ValueError):
    """A callback request that cannot be stored or changed; the message says why."""


class CallbackNotFound(CallbackError, LookupError):
    """No callback request with that id."""


class CallbackTaken(CallbackError):
    """Another agent claimed it first; `.agent` names them."""

    def __init__(self, id: int, agent: str) -> None:  # the agreed name (shadows the builtin)
        super().__init__(f"callback {id} is already claimed by {agent}")
        self.agent = agent


class CallbackClosed(CallbackError):
    """It is done or cancelled already (or, for a release, not claimed by anyone)."""


class CallbackNotYours(CallbackError, PermissionError):
    """An agent tried to close or release a callback they have not claimed."""


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
    cur = await write_one(db_or_conn, _INSERT, params, "store callback request")
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
    sql = _SELECT  # a fixed column list; values are bound
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY due_at, id LIMIT ?"
    params.append(max(1, min(limit, 10_000)))
    try:
        cur = await conn.execute(sql, params)
        rows = await cur.fetchall()
    except sqlite3.Error as err:
        raise StorageError(f"cannot list callback requests: {err}") from err
    return [_row(row) for row in rows]


async def recently_closed(
    conn: aiosqlite.Connection, *, limit: int = 20
) -> list[dict[str, object]]:
    """Done and cancelled callback requests, the last closed first."""
    sql = _SELECT + " WHERE status != 'open' ORDER BY closed_at DESC, id DESC LIMIT ?"
    try:
        cur = await conn.execute(sql, (max(1, min(limit, 1000)),))
        rows = await cur.fetchall()
    except sqlite3.Error as err:
        raise StorageError(f"cannot list closed callback requests: {err}") from err
    return [_row(row) for row in rows]


async def get_callback(conn: aiosqlite.Connection, id: int) -> dict[str, object] | None:
    try:
        cur = await conn.execute(_SELECT + " WHERE id = ?", (id,))
        row = await cur.fetchone()
    except sqlite3.Error as err:
        raise StorageError(f"cannot read callback request {id}: {err}") from err
    return None if row is None else _row(row)


def _row(row: Iterable[object]) -> dict[str, object]:
    return dict(zip(_NAMES, tuple(row), strict=True))


async def claim(conn: aiosqlite.Connection, id: int, *, agent: str, at: float) -> dict[str, object]:
    """`agent` takes an open, unclaimed callback; returns it (with its number). Claiming one
    the agent already holds returns it unchanged. Inside the caller's write transaction."""
    cur = await conn.execute(
        "UPDATE callbacks SET assigned_to = ?, claimed_at = ?"
        " WHERE id = ? AND status = 'open' AND assigned_to = ''",
        (agent, utc_text(at), id),
    )
    row = await _after_update(conn, id)
    if cur.rowcount == 0:
        if row["status"] != "open":
            raise CallbackClosed(f"callback {id} is {row['status']} already")
        if row["assigned_to"] != agent:
            raise CallbackTaken(id, str(row["assigned_to"]))
    return row


async def close(
    conn: aiosqlite.Connection,
    id: int,
    status: str,
    *,
    by: str,
    at: float,
    note: str = "",
    agent: str | None = None,
) -> dict[str, object]:
    """Mark an open callback done or cancelled and append the note. `agent`: only if that agent
    claimed it (None: a supervisor, any open one). Inside the caller's write transaction."""
    if status not in ("done", "cancelled"):
        raise CallbackError(f"close a callback as done or cancelled, not {status!r}")
    cur = await conn.execute(
        "UPDATE callbacks SET status = ?, closed_by = ?, closed_at = ?,"
        " note = CASE WHEN ? = '' THEN note WHEN note = '' THEN ? ELSE note || char(10) || ? END"
        " WHERE id = ? AND status = 'open' AND (? IS NULL OR assigned_to = ?)",
        (status, by, utc_text(at), note, note, note, id, agent, agent),
    )
    row = await _after_update(conn, id)
    if cur.rowcount == 0:
        _refuse(id, row, agent)
    return row


async def release(conn: aiosqlite.Connection, id: int, *, agent: str | None) -> dict[str, object]:
    """Give a claimed, open callback back to the pool. `agent`: only their own (None: a
    supervisor, any). Returns it as it was claimed (`assigned_to`: who had it)."""
    before = await _after_update(conn, id)
    cur = await conn.execute(
        "UPDATE callbacks SET assigned_to = '', claimed_at = NULL"
        " WHERE id = ? AND status = 'open' AND assigned_to != ''"
        " AND (? IS NULL OR assigned_to = ?)",
        (id, agent, agent),
    )
    if cur.rowcount == 0:
        if before["status"] == "open" and before["assigned_to"] == "":
            raise CallbackClosed(f"callback {id} is not claimed by anyone")
        _refuse(id, before, agent)
    return before


async def _after_update(conn: aiosqlite.Connection, id: int) -> dict[str, object]:
    row = await get_callback(conn, id)
    if row is None:
        raise CallbackNotFound(f"no callback request {id}")
    return row


def _refuse(id: int, row: dict[str, object], agent: str | None) -> None:
    """Why a conditional UPDATE changed nothing on a callback that exists."""
    if row["status"] != "open":
        raise CallbackClosed(f"callback {id} is {row['status']} already")
    # Open and there: the only condition left is the agent's ownership.
    raise CallbackNotYours(f"callback {id} is not claimed by {agent}: claim it first")
