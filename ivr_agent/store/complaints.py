"""Complaints by the 5-step procedure, their append-only history, and callers' suggestions."""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from ivr_agent.domain.complaints import Status, change_status
from ivr_agent.errors import IvrAgentError
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db

_COLS = (
    "id, call_id, caller_number, agent, category, steps, promised_at, status, callback_id, "
    "version, created_by, created_at, updated_at"
)


class ComplaintNotFound(IvrAgentError):
    pass


def _row(cols: list[str], row: Any) -> dict[str, Any]:
    d = dict(zip(cols, tuple(row), strict=True))
    d["steps"] = json.loads(d["steps"])
    return d


async def _history(
    conn: aiosqlite.Connection, cid: int, at: float, actor: str, action: str, detail: object
) -> None:
    await conn.execute(
        "INSERT INTO complaint_history (complaint_id, at, actor, action, detail) "
        "VALUES (?, ?, ?, ?, ?)",
        (cid, utc_text(at), actor, action, json.dumps(detail, ensure_ascii=False)),
    )


async def note_callback(
    conn: aiosqlite.Connection, callback_id: int, status: str, *, by: str, at: float, note: str
) -> list[int]:
    """Append `callback_<status>` to the history of every complaint whose callback this is (the
    handbook's promise kept, or why not); the complaint ids. Inside the caller's transaction."""
    cur = await conn.execute("SELECT id FROM complaints WHERE callback_id = ?", (callback_id,))
    ids = [int(r[0]) for r in await cur.fetchall()]
    for cid in ids:
        await _history(
            conn, cid, at, by, f"callback_{status}", {"callback": callback_id, "note": note}
        )
    return ids


async def add(
    db: Db,
    *,
    call_id: str,
    caller_number: str,
    agent: str,
    category: str,
    steps: tuple[str, ...],
    promised_at: float | None,
    status: Status,
    callback_id: int | None,
    by: str,
    at: float,
) -> int:
    async with db.write() as conn:
        cur = await conn.execute(
            "INSERT INTO complaints (call_id, caller_number, agent, category, steps, "
            "promised_at, status, callback_id, created_by, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call_id, caller_number, agent, category,
                json.dumps(list(steps), ensure_ascii=False),
                utc_text(promised_at), status.value, callback_id, by, utc_text(at), utc_text(at),
            ),
        )  # fmt: skip
        cid = int(cur.lastrowid or 0)
        await _history(
            conn, cid, at, by, "created",
            {"status": status.value, "category": category, "callback_id": callback_id},
        )  # fmt: skip
    return cid


async def get(conn: aiosqlite.Connection, cid: int) -> dict[str, Any] | None:
    async with conn.execute(f"SELECT {_COLS} FROM complaints WHERE id = ?", (cid,)) as cur:
        cols = [d[0] for d in cur.description]
        row = await cur.fetchone()
    return _row(cols, row) if row else None


async def of_caller(
    conn: aiosqlite.Connection, number: str, *, open_only: bool = True, limit: int = 20
) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLS} FROM complaints WHERE caller_number = ?"
    if open_only:
        sql += " AND status NOT IN ('resolved', 'closed')"
    async with conn.execute(sql + " ORDER BY id DESC LIMIT ?", (number, limit)) as cur:
        cols = [d[0] for d in cur.description]
        return [_row(cols, r) for r in await cur.fetchall()]


async def set_status(db: Db, cid: int, status: Status, *, by: str, at: float, note: str) -> None:
    found = await get(db.conn, cid)
    if found is None:
        raise ComplaintNotFound(f"no complaint {cid}")
    new = change_status(Status(found["status"]), status)
    async with db.write() as conn:
        await conn.execute(
            "UPDATE complaints SET status = ?, version = version + 1, updated_at = ? WHERE id = ?",
            (new.value, utc_text(at), cid),
        )
        await _history(conn, cid, at, by, "status", {"status": new.value, "note": note})


async def history(conn: aiosqlite.Connection, cid: int) -> list[dict[str, Any]]:
    async with conn.execute(
        "SELECT at, actor, action, detail FROM complaint_history WHERE complaint_id = ? "
        "ORDER BY id",
        (cid,),
    ) as cur:
        rows = await cur.fetchall()
    return [{"at": r[0], "actor": r[1], "action": r[2], "detail": json.loads(r[3])} for r in rows]


async def add_suggestion(
    db: Db, *, call_id: str, caller_number: str, agent: str, text: str, department: str, at: float
) -> int:
    async with db.write() as conn:
        cur = await conn.execute(
            "INSERT INTO suggestions (call_id, caller_number, agent, text, department, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (call_id, caller_number, agent, text, department, utc_text(at)),
        )
        return int(cur.lastrowid or 0)
