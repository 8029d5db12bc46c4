"""The audit log: who touched which recording, when, from where. Append-only."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db


class AuditAction(enum.Enum):
    LIST = "list"  # a search; detail holds the filters and the ids returned
    VIEW = "view"  # one recording's details
    PLAY = "play"  # listened in the browser (all Range requests of one playback: one row)
    DOWNLOAD = "download"  # the file saved (API or `ivr-agent recordings get`)
    FLAG_EVIDENCE = "flag_evidence"
    DELETE = "delete"  # the retention job deleted the file


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str  # user name, `retention`, or `cli:<os user>`
    action: AuditAction
    at: float
    role: str = ""
    recording_id: str | None = None
    call_id: str | None = None
    client: str = ""  # the peer address, or `local` for the CLI
    detail: Mapping[str, Any] = field(default_factory=dict)


_INSERT = (
    "INSERT INTO audit_log (at, actor, role, action, recording_id, call_id, client, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


async def append(db: Db, entry: AuditEntry) -> int:
    """Write one row (committed before the caller goes on); returns its id."""
    async with db.write() as conn:
        cur = await conn.execute(
            _INSERT,
            (
                utc_text(entry.at),
                entry.actor,
                entry.role,
                entry.action.value,
                entry.recording_id,
                entry.call_id,
                entry.client,
                json.dumps(dict(entry.detail), ensure_ascii=False, separators=(",", ":")),
            ),
        )
        return int(cur.lastrowid or 0)


async def entries(
    conn: aiosqlite.Connection,
    *,
    recording_id: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first."""
    where, params = [], []
    if recording_id:
        where.append("recording_id = ?")
        params.append(recording_id)
    if action:
        where.append("action = ?")
        params.append(action)
    sql = "SELECT id, at, actor, role, action, recording_id, call_id, client, detail FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    async with conn.execute(sql, [*params, limit]) as cur:
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in await cur.fetchall()]
    for r in rows:
        r["detail"] = json.loads(r["detail"])
    return rows
