"""The roster's tables: agents, shifts and their breaks, change requests, the roster audit.

Times are UTC ISO text (`utc_text`), like every table here. Writes that belong together run in
one `transaction` (BEGIN IMMEDIATE: a second writer waits, it never interleaves). The audit is
append-only: this module inserts into it and never updates or deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import aiosqlite

from ivr_agent.domain.roster import Agent, Break, Role, Roster, Shift
from ivr_agent.errors import StorageError
from ivr_agent.store.db import parse_utc_text, utc_text
from ivr_agent.store.migrations import ROSTER_SCHEMA

# The roster tables are migration 4; tests and `require_schema` use the same text.
SCHEMA: Final = ROSTER_SCHEMA

_SHIFT_COLUMNS: Final = "id, agent, start_utc, end_utc, role, source, note"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    who: str
    action: str
    detail: Mapping[str, object]


@contextlib.asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; ROLLBACK on any error, cancellation included.

    The connection must not be shared with other writers meanwhile (the CLI opens its own; in
    the service, run roster operations under the shared connection's write lock).
    """
    try:
        await conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as err:
        raise StorageError(f"cannot start a roster transaction: {err}") from err
    except BaseException:
        # Cancelled while the BEGIN was queued or waiting: it still runs in aiosqlite's thread,
        # and a transaction left open would fail every later writer (store/txn.py, the same).
        await asyncio.shield(_rollback(conn))
        raise
    try:
        yield
        await conn.execute("COMMIT")
    except BaseException as err:
        await asyncio.shield(_rollback(conn))
        if isinstance(err, sqlite3.Error):
            raise StorageError(f"roster write failed: {err}") from err
        raise


async def _rollback(conn: aiosqlite.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        await conn.execute("ROLLBACK")


async def append_audit(
    conn: aiosqlite.Connection, *, who: str, action: str, detail: Mapping[str, object], at: float
) -> None:
    await conn.execute(
        "INSERT INTO roster_audit (at, who, action, detail) VALUES (?, ?, ?, ?)",
        (utc_text(at), who, action, json.dumps(detail, ensure_ascii=False, sort_keys=True)),
    )


async def list_audit(conn: aiosqlite.Connection, *, limit: int = 100) -> list[AuditEntry]:
    """The newest entries first."""
    cur = await conn.execute(
        "SELECT id, at, who, action, detail FROM roster_audit ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [
        AuditEntry(r[0], parse_utc_text(r[1]), r[2], r[3], json.loads(r[4]))
        for r in await cur.fetchall()
    ]


async def add_agent(conn: aiosqlite.Connection, agent: Agent, *, by: str, at: float) -> None:
    """A new agent; StorageError if the name or the interface is taken. Audited."""
    async with transaction(conn):
        try:
            await conn.execute(
                "INSERT INTO agents (name, display_name, interface, queues, active, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    agent.name,
                    agent.display_name,
                    agent.interface,
                    json.dumps(list(agent.queues)),
                    int(agent.active),
                    utc_text(at),
                    utc_text(at),
                ),
            )
        except sqlite3.IntegrityError:
            clash = await _agent_clash(conn, agent)
            raise StorageError(f"agent {agent.name!r}: {clash}") from None
        detail = {"agent": agent.name, "interface": agent.interface, "queues": list(agent.queues)}
        await append_audit(conn, who=by, action="agent_added", detail=detail, at=at)


async def _agent_clash(conn: aiosqlite.Connection, agent: Agent) -> str:
    cur = await conn.execute(
        "SELECT name FROM agents WHERE name = ? OR interface = ?", (agent.name, agent.interface)
    )
    row = await cur.fetchone()
    if row is not None and row[0] == agent.name:
        return "an agent of that name exists"
    return f"interface {agent.interface!r} belongs to agent {row[0] if row else '?'!r}"


async def load_agents(conn: aiosqlite.Connection) -> dict[str, Agent]:
    cur = await conn.execute(
        "SELECT name, interface, queues, display_name, active FROM agents ORDER BY name"
    )
    return {
        r[0]: Agent(r[0], r[1], tuple(json.loads(r[2])), r[3], bool(r[4]))
        for r in await cur.fetchall()
    }


async def load_shifts(
    conn: aiosqlite.Connection, start: float, end: float, *, agent: str | None = None
) -> list[Shift]:
    """Shifts overlapping [start, end) (of one agent, if given), by start, with their breaks."""
    sql = f"SELECT {_SHIFT_COLUMNS} FROM shifts WHERE start_utc < ? AND end_utc > ?"
    params: list[object] = [utc_text(end), utc_text(start)]
    if agent is not None:
        sql += " AND agent = ?"
        params.append(agent)
    cur = await conn.execute(sql + " ORDER BY start_utc, agent", params)
    return await _with_breaks(conn, await cur.fetchall())


async def get_shifts(conn: aiosqlite.Connection, ids: Iterable[int]) -> dict[int, Shift]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    cur = await conn.execute(f"SELECT {_SHIFT_COLUMNS} FROM shifts WHERE id IN ({marks})", wanted)
    return {s.id: s for s in await _with_breaks(conn, await cur.fetchall()) if s.id is not None}


async def _with_breaks(conn: aiosqlite.Connection, rows: Iterable[sqlite3.Row]) -> list[Shift]:
    shifts = [
        Shift(r[1], parse_utc_text(r[2]), parse_utc_text(r[3]), Role(r[4]), (), r[0], r[5], r[6])
        for r in rows
    ]
    if not shifts:
        return []
    breaks: dict[int, list[Break]] = {}
    ids = [s.id for s in shifts]
    # SQLite limits bound parameters (32766 by default): a month of 200 agents fits, and a
    # chunk keeps bigger windows safe.
    for i in range(0, len(ids), 10_000):
        chunk = ids[i : i + 10_000]
        cur = await conn.execute(
            "SELECT shift_id, start_utc, end_utc FROM shift_breaks WHERE shift_id IN "
            f"({', '.join('?' * len(chunk))}) ORDER BY shift_id, start_utc",
            chunk,
        )
        for sid, lo, hi in await cur.fetchall():
            breaks.setdefault(sid, []).append(Break(parse_utc_text(lo), parse_utc_text(hi)))
    return [
        Shift(
            s.agent,
            s.start,
            s.end,
            s.role,
            tuple(breaks.get(s.id or 0, ())),
            s.id,
            s.source,
            s.note,
        )
        for s in shifts
    ]


async def load_roster(conn: aiosqlite.Connection, start: float, end: float) -> Roster:
    """The agents and the shifts overlapping [start, end): what the glue asks questions of."""
    return Roster(await load_agents(conn), tuple(await load_shifts(conn, start, end)))


async def insert_shifts(
    conn: aiosqlite.Connection, shifts: Sequence[Shift], *, by: str, at: float
) -> list[int]:
    """New shifts (their ids are ignored) with their breaks; returns the new ids, in order."""
    ids: list[int] = []
    for s in shifts:
        cur = await conn.execute(
            "INSERT INTO shifts (agent, start_utc, end_utc, role, source, note, created_by, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.agent,
                utc_text(s.start),
                utc_text(s.end),
                s.role.value,
                s.source,
                s.note,
                by,
                utc_text(at),
            ),
        )
        sid = cur.lastrowid
        if sid is None:  # pragma: no cover - an INSERT into a rowid table always has one
            raise StorageError("shift insert returned no id")
        ids.append(sid)
        await _insert_breaks(conn, sid, s.breaks)
    return ids


async def _insert_breaks(conn: aiosqlite.Connection, sid: int, breaks: Iterable[Break]) -> None:
    await conn.executemany(
        "INSERT INTO shift_breaks (shift_id, start_utc, end_utc) VALUES (?, ?, ?)",
        [(sid, utc_text(b.start), utc_text(b.end)) for b in breaks],
    )


async def update_shift(conn: aiosqlite.Connection, shift: Shift) -> None:
    """Rewrite a stored shift (by id) and its breaks."""
    if shift.id is None:
        raise StorageError("update_shift needs a stored shift")
    await conn.execute(
        "UPDATE shifts SET agent = ?, start_utc = ?, end_utc = ?, role = ?, source = ?, note = ? "
        "WHERE id = ?",
        (
            shift.agent,
            utc_text(shift.start),
            utc_text(shift.end),
            shift.role.value,
            shift.source,
            shift.note,
            shift.id,
        ),
    )
    await conn.execute("DELETE FROM shift_breaks WHERE shift_id = ?", (shift.id,))
    await _insert_breaks(conn, shift.id, shift.breaks)


async def delete_shifts(conn: aiosqlite.Connection, ids: Iterable[int]) -> None:
    await conn.executemany("DELETE FROM shifts WHERE id = ?", [(i,) for i in ids])


async def delete_starting_in(conn: aiosqlite.Connection, start: float, end: float) -> int:
    """Delete the shifts that start within [start, end) (breaks go with them); how many."""
    cur = await conn.execute(
        "DELETE FROM shifts WHERE start_utc >= ? AND start_utc < ?",
        (utc_text(start), utc_text(end)),
    )
    return cur.rowcount


async def require_schema(conn: aiosqlite.Connection, where: str) -> None:
    """StorageError unless the roster tables exist (the migration that adds them has run)."""
    cur = await conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
        "('agents', 'shifts', 'shift_breaks', 'roster_changes', 'roster_audit')"
    )
    row = await cur.fetchone()
    if row is None or row[0] != 5:
        raise StorageError(f"{where}: no roster tables: this database predates the roster")
