"""Recording rows and evidence flags: the finaliser's writes, searches, retention tombstones."""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import Any, Final

import aiosqlite

from ivr_agent.domain.recordings import (
    CallFacts,
    EvidenceKind,
    Measured,
    RecordingStatus,
    Verdict,
    recording_id_for,
)
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """A row of `recordings`; times are UTC text as stored."""

    recording_id: str
    call_id: str
    path: str
    format: str
    status: str
    started_at: str
    ended_at: str | None
    duration: float | None
    size: int | None
    sha256: str | None
    call_span: float | None
    problem: str
    evidence: bool
    caller_number: str
    caller_name: str
    agent: str
    disposition: str
    queue: str
    deleted_at: str | None
    deleted_by: str | None
    delete_reason: str | None
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


COLUMNS: Final = tuple(f.name for f in dataclasses.fields(RecordingRow))
_SELECT: Final = f"SELECT {', '.join(COLUMNS)} FROM recordings"
_CALL_FIELDS: Final = ("caller_number", "caller_name", "agent", "disposition", "queue")
# A later write never blanks what an earlier one knew about the call.
_KEEP = ", ".join(f"{c} = COALESCE(NULLIF(excluded.{c}, ''), {c})" for c in _CALL_FIELDS)
_INSERT_STARTED: Final = (
    "INSERT INTO recordings (recording_id, call_id, path, format, status, started_at, "
    f"{', '.join(_CALL_FIELDS)}, evidence, updated_at) "
    "VALUES (?, ?, ?, ?, 'recording', ?, ?, ?, ?, ?, ?, "
    "EXISTS (SELECT 1 FROM evidence WHERE call_id = ?), ?) "
    "ON CONFLICT(recording_id) DO NOTHING"
)
_UPSERT_FINAL: Final = (
    "INSERT INTO recordings (recording_id, call_id, path, format, status, started_at, ended_at, "
    f"duration, size, sha256, call_span, problem, {', '.join(_CALL_FIELDS)}, evidence, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "EXISTS (SELECT 1 FROM evidence WHERE call_id = ?), ?) "
    "ON CONFLICT(recording_id) DO UPDATE SET path = excluded.path, format = excluded.format, "
    "status = excluded.status, started_at = excluded.started_at, ended_at = excluded.ended_at, "
    "duration = excluded.duration, size = excluded.size, sha256 = excluded.sha256, "
    "call_span = excluded.call_span, problem = excluded.problem, "
    f"{_KEEP}, updated_at = excluded.updated_at WHERE status != 'deleted'"
)


def _row(values: sqlite3.Row | tuple[Any, ...]) -> RecordingRow:
    data = dict(zip(COLUMNS, values, strict=True))
    data["evidence"] = bool(data["evidence"])
    return RecordingRow(**data)


def _call_values(facts: CallFacts) -> tuple[str, ...]:
    return tuple(str(getattr(facts, c)) for c in _CALL_FIELDS)


async def record_started(db: Db, facts: CallFacts, path: str, fmt: str, now: float) -> None:
    """The row of a recording MixMonitor is writing (kept as is if the row exists already)."""
    rid = recording_id_for(facts.call_id)
    async with db.write() as conn:
        await conn.execute(
            _INSERT_STARTED,
            (
                rid,
                facts.call_id,
                path,
                fmt,
                utc_text(facts.recording_start),
                *_call_values(facts),
                facts.call_id,
                utc_text(now),
            ),
        )


async def save_final(
    db: Db,
    facts: CallFacts,
    path: str,
    fmt: str,
    measured: Measured | None,
    verdict: Verdict,
    now: float,
) -> None:
    """Write the measured, judged recording. A tombstone is never brought back."""
    m = measured
    async with db.write() as conn:
        await conn.execute(
            _UPSERT_FINAL,
            (
                recording_id_for(facts.call_id),
                facts.call_id,
                path,
                fmt,
                verdict.status.value,
                utc_text(facts.recording_start),
                utc_text(facts.ended_at),
                m.duration if m else None,
                m.size if m else None,
                m.sha256 if m else None,
                facts.span,
                verdict.problem,
                *_call_values(facts),
                facts.call_id,
                utc_text(now),
            ),
        )


async def get(conn: aiosqlite.Connection, recording_id: str) -> RecordingRow | None:
    async with conn.execute(f"{_SELECT} WHERE recording_id = ?", (recording_id,)) as cur:
        row = await cur.fetchone()
    return _row(tuple(row)) if row else None


async def get_by_call(conn: aiosqlite.Connection, call_id: str) -> RecordingRow | None:
    async with conn.execute(f"{_SELECT} WHERE call_id = ?", (call_id,)) as cur:
        row = await cur.fetchone()
    return _row(tuple(row)) if row else None


@dataclass(frozen=True, slots=True)
class RecordingQuery:
    """Search filters; all optional. `before` is the (started_at, recording_id) of the last
    row of the previous page (keyset pagination, newest first)."""

    since: float | None = None
    until: float | None = None
    agent: str = ""
    caller: str = ""
    disposition: str = ""
    evidence: bool | None = None
    status: str = ""
    call_id: str = ""
    limit: int = 50
    before: tuple[str, str] | None = None


async def search(conn: aiosqlite.Connection, q: RecordingQuery) -> list[RecordingRow]:
    """Newest first. Every filter is an indexed equality or range (see migration 3)."""
    where: list[str] = []
    params: list[object] = []
    if q.since is not None:
        where.append("started_at >= ?")
        params.append(utc_text(q.since))
    if q.until is not None:
        where.append("started_at < ?")
        params.append(utc_text(q.until))
    for column, value in (
        ("agent", q.agent),
        ("caller_number", q.caller),
        ("disposition", q.disposition),
        ("status", q.status),
        ("call_id", q.call_id),
    ):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if q.evidence is not None:
        where.append("evidence = 1" if q.evidence else "evidence = 0")
    if q.before is not None:
        where.append("(started_at, recording_id) < (?, ?)")
        params.extend(q.before)
    sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY started_at DESC, recording_id DESC LIMIT ?"
    params.append(q.limit)
    async with conn.execute(sql, params) as cur:
        return [_row(tuple(r)) for r in await cur.fetchall()]


async def unsettled(conn: aiosqlite.Connection) -> list[RecordingRow]:
    """Rows still 'recording': their call was live when last seen."""
    async with conn.execute(f"{_SELECT} WHERE status = 'recording'") as cur:
        return [_row(tuple(r)) for r in await cur.fetchall()]


async def inventory(conn: aiosqlite.Connection) -> dict[str, tuple[str, str]]:
    """path -> (recording_id, status) of every row, tombstones included."""
    async with conn.execute("SELECT path, recording_id, status FROM recordings") as cur:
        return {str(p): (str(r), str(s)) for p, r, s in await cur.fetchall()}


async def mark_missing(db: Db, recording_id: str, now: float) -> bool:
    """A complete recording whose file has gone: flagged 'missing' (True if changed)."""
    async with db.write() as conn:
        cur = await conn.execute(
            "UPDATE recordings SET status = 'missing', problem = 'file_missing', updated_at = ? "
            "WHERE recording_id = ? AND status IN ('complete', 'failed')",
            (utc_text(now), recording_id),
        )
        return cur.rowcount == 1


async def expired(conn: aiosqlite.Connection, cutoff: float, limit: int) -> list[RecordingRow]:
    """Settled, non-evidence recordings started before `cutoff`, oldest first."""
    async with conn.execute(
        f"{_SELECT} WHERE started_at < ? AND evidence = 0 "
        "AND status IN ('complete', 'missing', 'failed') ORDER BY started_at LIMIT ?",
        (utc_text(cutoff), limit),
    ) as cur:
        return [_row(tuple(r)) for r in await cur.fetchall()]


async def tombstone(db: Db, recording_id: str, by: str, reason: str, now: float) -> bool:
    """Mark the recording deleted (who, why, when). The guard is in the same statement as the
    change, so an evidence flag that lands first always wins. True if it was marked."""
    async with db.write() as conn:
        cur = await conn.execute(
            "UPDATE recordings SET status = 'deleted', deleted_at = ?, deleted_by = ?, "
            "delete_reason = ?, updated_at = ? WHERE recording_id = ? AND evidence = 0 "
            "AND status IN ('complete', 'missing', 'failed') "
            "AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.call_id = recordings.call_id)",
            (utc_text(now), by, reason, utc_text(now), recording_id),
        )
        return cur.rowcount == 1


async def deleted(conn: aiosqlite.Connection) -> list[RecordingRow]:
    async with conn.execute(f"{_SELECT} WHERE status = 'deleted'") as cur:
        return [_row(tuple(r)) for r in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    call_id: str
    kind: str
    reason: str
    flagged_by: str
    flagged_at: str


async def add_evidence(
    db: Db, call_id: str, kind: EvidenceKind, reason: str, by: str, at: float
) -> EvidenceRow | None:
    """Append a flag and protect the call's recording. None: the recording is already deleted."""
    async with db.write() as conn:
        async with conn.execute(
            "SELECT 1 FROM recordings WHERE call_id = ? AND status = 'deleted'", (call_id,)
        ) as cur:
            if await cur.fetchone():
                return None
        await conn.execute(
            "INSERT INTO evidence (call_id, kind, reason, flagged_by, flagged_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (call_id, kind.value, reason, by, utc_text(at)),
        )
        await conn.execute(
            "UPDATE recordings SET evidence = 1, updated_at = ? WHERE call_id = ?",
            (utc_text(at), call_id),
        )
    return EvidenceRow(call_id, kind.value, reason, by, str(utc_text(at)))


async def evidence_of(conn: aiosqlite.Connection, call_id: str) -> list[EvidenceRow]:
    async with conn.execute(
        "SELECT call_id, kind, reason, flagged_by, flagged_at FROM evidence "
        "WHERE call_id = ? ORDER BY id",
        (call_id,),
    ) as cur:
        return [EvidenceRow(*map(str, r)) for r in await cur.fetchall()]


async def complete(conn: aiosqlite.Connection) -> list[RecordingRow]:
    """Every recording whose file should be there with a known hash (for `verify`)."""
    async with conn.execute(f"{_SELECT} WHERE status = 'complete' ORDER BY started_at") as cur:
        return [_row(tuple(r)) for r in await cur.fetchall()]


def status_of(row: RecordingRow) -> RecordingStatus:
    return RecordingStatus(row.status)
