"""Customer files keyed by phone number (migration 5): created on first call, versioned edits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from ivr_agent.errors import IvrAgentError
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db


class VersionConflict(IvrAgentError):
    """Someone else saved the file first: reload it and edit again (HTTP 409)."""

    def __init__(self, number: str, current: int) -> None:
        super().__init__(f"the customer file changed meanwhile (now version {current})")
        self.current = current


@dataclass(frozen=True, slots=True)
class Customer:
    number: str
    name: str
    notes: str
    tags: tuple[str, ...]
    version: int


def _row(row: Any) -> Customer:
    number, name, notes, tags, version = tuple(row)
    return Customer(str(number), str(name), str(notes), tuple(json.loads(tags)), int(version))


async def get(conn: aiosqlite.Connection, number: str) -> Customer | None:
    async with conn.execute(
        "SELECT number, name, notes, tags, version FROM customers WHERE number = ?", (number,)
    ) as cur:
        row = await cur.fetchone()
    return _row(row) if row else None


async def ensure(db: Db, number: str, name: str, at: float) -> Customer:
    """The caller's file, created (with the caller ID name) on their first call."""
    found = await get(db.conn, number)
    if found is not None:
        return found
    async with db.write() as conn:
        await conn.execute(
            "INSERT OR IGNORE INTO customers (number, name, created_at, updated_at) "
            "VALUES (?, ?, ?, ?)",
            (number, name, utc_text(at), utc_text(at)),
        )
    created = await get(db.conn, number)
    assert created is not None  # noqa: S101  # inserted just now, never deleted
    return created


async def update(
    db: Db,
    number: str,
    *,
    version: int,
    name: str,
    notes: str,
    tags: list[str],
    by: str,
    at: float,
) -> Customer:
    """Save an edit made on `version`; VersionConflict if the file moved on since."""
    async with db.write() as conn:
        cur = await conn.execute(
            "UPDATE customers SET name = ?, notes = ?, tags = ?, version = version + 1, "
            "updated_at = ?, updated_by = ? WHERE number = ? AND version = ?",
            (name, notes, json.dumps(tags, ensure_ascii=False), utc_text(at), by, number, version),
        )
        changed = cur.rowcount == 1
    found = await get(db.conn, number)
    if not changed or found is None:
        raise VersionConflict(number, found.version if found else 0)
    return found


async def search(conn: aiosqlite.Connection, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Supervisors only (the caller audits it): by number prefix or name."""
    async with conn.execute(
        "SELECT number, name, notes, tags, version FROM customers "
        "WHERE number LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' ORDER BY number LIMIT ?",
        (_like(text) + "%", "%" + _like(text) + "%", limit),
    ) as cur:
        rows = await cur.fetchall()
    out = []
    for r in rows:
        c = _row(r)
        out.append({"number": c.number, "name": c.name, "notes": c.notes, "tags": list(c.tags)})
    return out


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
