"""Audit rows for the desk (supervisor lookups, blacklist changes) in the shared audit_log."""

from __future__ import annotations

import json

import aiosqlite

from ivr_agent.store.db import utc_text


async def audit(
    conn: aiosqlite.Connection, at: float, actor: str, role: str, action: str, detail: object,
    *, client: str = "", call_id: str | None = None,
) -> None:  # fmt: skip
    """Inside the caller's write transaction: the change and its audit row commit together."""
    await conn.execute(
        "INSERT INTO audit_log (at, actor, role, action, call_id, client, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (utc_text(at), actor, role, action, call_id, client,
         json.dumps(detail, ensure_ascii=False, separators=(",", ":"))),
    )  # fmt: skip
