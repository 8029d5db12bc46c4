"""The blacklist of malicious complainants: agents propose, supervisors decide; all audited."""

from __future__ import annotations

from typing import Any, Final

import aiosqlite

from ivr_agent.errors import IvrAgentError
from ivr_agent.store.db import utc_text
from ivr_agent.store.desk_audit import audit
from ivr_agent.store.txn import Db

DECISIONS: Final = ("approved", "rejected", "removed")
_COLS: Final = (
    "id, number, reason, status, proposed_by, proposed_at, decided_by, decided_at, decision_note"
)


class BlacklistError(IvrAgentError, ValueError):
    pass


async def current(conn: aiosqlite.Connection, number: str) -> dict[str, Any] | None:
    """The latest pending or approved entry for `number`, if any."""
    async with conn.execute(
        f"SELECT {_COLS} FROM blacklist WHERE number = ? AND status IN ('pending', 'approved') "
        "ORDER BY id DESC LIMIT 1",
        (number,),
    ) as cur:
        cols = [d[0] for d in cur.description]
        row = await cur.fetchone()
    return dict(zip(cols, tuple(row), strict=True)) if row else None


async def propose(db: Db, number: str, reason: str, *, by: str, role: str, at: float) -> int:
    if not reason.strip():
        raise BlacklistError("reason: say why this caller should be blacklisted")
    if await current(db.conn, number) is not None:
        raise BlacklistError("this caller is already proposed or blacklisted")
    async with db.write() as conn:
        cur = await conn.execute(
            "INSERT INTO blacklist (number, reason, proposed_by, proposed_at) VALUES (?, ?, ?, ?)",
            (number, reason, by, utc_text(at)),
        )
        bid = int(cur.lastrowid or 0)
        await audit(conn, at, by, role, "blacklist_propose", {"id": bid, "reason": reason})
    return bid


async def decide(
    db: Db, bid: int, decision: str, note: str, *, by: str, role: str, at: float
) -> None:
    if decision not in DECISIONS:
        raise BlacklistError(f"decision: one of {', '.join(DECISIONS)}")
    want = "approved" if decision == "removed" else "pending"
    async with db.write() as conn:
        cur = await conn.execute(
            "UPDATE blacklist SET status = ?, decided_by = ?, decided_at = ?, decision_note = ? "
            "WHERE id = ? AND status = ?",
            (decision, by, utc_text(at), note, bid, want),
        )
        if cur.rowcount != 1:
            raise BlacklistError(f"no {want} blacklist entry {bid}")
        await audit(conn, at, by, role, f"blacklist_{decision}", {"id": bid, "note": note})


async def listing(conn: aiosqlite.Connection, status: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLS} FROM blacklist"
    params: list[object] = []
    if status:
        sql += " WHERE status = ?"
        params.append(status)
    async with conn.execute(sql + " ORDER BY id DESC LIMIT 200", params) as cur:
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, tuple(r), strict=True)) for r in await cur.fetchall()]


async def numbers_and_status(conn: aiosqlite.Connection) -> list[tuple[str, str]]:
    """(number, status) of every entry, oldest first: what the PBX routing is derived from."""
    async with conn.execute("SELECT number, status FROM blacklist ORDER BY id") as cur:
        return [(str(n), str(s)) for n, s in await cur.fetchall()]
