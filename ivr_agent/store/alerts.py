"""Supervisor alerts (table `alerts`, migration 6): raise once per kind and call, list, acknowledge.

`raise_alert` takes a `Db` (the service's shared writer, under its write lock) or a bare
connection opened with `isolation_level=None` (tests: one autocommit INSERT). The unique index
on (kind, call_id) makes an alert once per call, even when a restarted service sees the same long
call again. An acknowledgement is written with its `roster_audit` entry in one transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

import aiosqlite

from ivr_agent.errors import IvrAgentError, StorageError
from ivr_agent.store.db import parse_utc_text, utc_text
from ivr_agent.store.roster import append_audit
from ivr_agent.store.txn import Db, write_one

_COLS: Final = "id, kind, call_id, agent, at, detail, acknowledged_by, acknowledged_at"
_INSERT: Final = (
    "INSERT INTO alerts (kind, call_id, agent, at, detail) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, call_id) DO NOTHING"
)
ACK_ACTION: Final = "alert_acknowledged"


class AlertError(IvrAgentError):
    """An alert that cannot be acknowledged; `.missing` tells "no such alert" from "already"."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # long_call | private_call
    call_id: str
    agent: str
    at: float
    detail: str
    id: int | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None


async def raise_alert(db_or_conn: Db | aiosqlite.Connection, alert: Alert) -> Alert | None:
    """Store `alert`; the stored one with its id, or None if the call had this kind already."""
    params = (alert.kind, alert.call_id, alert.agent, utc_text(alert.at), alert.detail)
    cur = await write_one(db_or_conn, _INSERT, params, f"store {alert.kind} alert")
    if cur.rowcount != 1 or cur.lastrowid is None:
        return None
    return Alert(alert.kind, alert.call_id, alert.agent, alert.at, alert.detail, cur.lastrowid)


async def list_alerts(
    conn: aiosqlite.Connection, *, open_only: bool = False, limit: int = 100
) -> list[Alert]:
    """Newest first; `open_only`: those no supervisor acknowledged yet."""
    where = "WHERE acknowledged_at IS NULL " if open_only else ""
    sql = f"SELECT {_COLS} FROM alerts {where}ORDER BY at DESC, id DESC LIMIT ?"
    try:
        cur = await conn.execute(sql, (max(1, min(limit, 10_000)),))
        return [_alert(r) for r in await cur.fetchall()]
    except sqlite3.Error as err:
        raise StorageError(f"cannot list alerts: {err}") from err


async def get_alert(conn: aiosqlite.Connection, alert_id: int) -> Alert | None:
    cur = await conn.execute(f"SELECT {_COLS} FROM alerts WHERE id = ?", (alert_id,))
    row = await cur.fetchone()
    return None if row is None else _alert(row)


async def acknowledge(db: Db, alert_id: int, *, by: str, at: float, note: str = "") -> Alert:
    """Mark an open alert acknowledged by `by`, audited; AlertError if unknown or already."""
    async with db.write() as conn:
        found = await get_alert(conn, alert_id)
        if found is None:
            raise AlertError(f"no alert #{alert_id}", missing=True)
        if found.acknowledged_at is not None:
            raise AlertError(
                f"alert #{alert_id} was acknowledged by {found.acknowledged_by} already",
                missing=False,
            )
        await conn.execute(
            "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ?",
            (by, utc_text(at), alert_id),
        )
        detail = {
            "id": alert_id,
            "kind": found.kind,
            "call_id": found.call_id,
            "agent": found.agent,
            "note": note,
        }
        await append_audit(conn, who=by, action=ACK_ACTION, detail=detail, at=at)
    return Alert(found.kind, found.call_id, found.agent, found.at, found.detail, alert_id, by, at)


def _alert(r: sqlite3.Row) -> Alert:
    return Alert(
        kind=r[1],
        call_id=r[2],
        agent=r[3],
        at=parse_utc_text(r[4]),
        detail=r[5],
        id=int(r[0]),
        acknowledged_by=r[6],
        acknowledged_at=None if r[7] is None else parse_utc_text(r[7]),
    )


async def called_the_hotline(conn: aiosqlite.Connection, numbers: tuple[str, ...]) -> bool:
    """Whether any of `numbers` is the caller number of a call in `calls` (index calls_caller)."""
    if not numbers:
        return False
    marks = ", ".join("?" * len(numbers))
    sql = f"SELECT 1 FROM calls WHERE caller_number IN ({marks}) LIMIT 1"
    try:
        cur = await conn.execute(sql, numbers)
        return await cur.fetchone() is not None
    except sqlite3.Error as err:
        raise StorageError(f"cannot look up hotline callers: {err}") from err
