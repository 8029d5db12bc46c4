"""Roster operations, each in one transaction: import a file's shifts, request a change,
approve or reject it, a supervisor's direct edit; and the change-request rows they use.

Each loads what the pure rules need, checks with them, then writes and audits: nothing is
written when a check fails, and every write leaves its audit entry in the same transaction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import aiosqlite

from ivr_agent.domain.roster import (
    MAX_SHIFT_SECONDS,
    RosterError,
    RosterIssue,
    Severity,
    has_errors,
)
from ivr_agent.domain.roster_changes import (
    ChangeError,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    Payload,
    ShiftDiff,
    apply,
    check_change,
    decide,
    payload_from_json,
    payload_to_json,
    shift_ids,
    shift_to_json,
)
from ivr_agent.domain.roster_rules import LeaderGap, check
from ivr_agent.domain.roster_table import ParsedRoster
from ivr_agent.errors import StorageError
from ivr_agent.store.db import parse_utc_text, utc_text
from ivr_agent.store.roster import (
    append_audit,
    delete_shifts,
    delete_starting_in,
    get_shifts,
    insert_shifts,
    load_agents,
    load_shifts,
    transaction,
    update_shift,
)


async def insert_change(conn: aiosqlite.Connection, req: ChangeRequest) -> ChangeRequest:
    cur = await conn.execute(
        "INSERT INTO roster_changes (requested_by, requested_at, kind, payload, reason, status) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            req.requested_by,
            utc_text(req.requested_at),
            req.kind.value,
            json.dumps(payload_to_json(req.payload), ensure_ascii=False),
            req.reason,
            req.status.value,
        ),
    )
    return dataclasses.replace(req, id=cur.lastrowid)


async def save_decision(conn: aiosqlite.Connection, req: ChangeRequest) -> None:
    """Record a decided request; StorageError if it was no longer pending (a race lost)."""
    cur = await conn.execute(
        "UPDATE roster_changes SET status = ?, decided_by = ?, decided_at = ?, decision_note = ? "
        "WHERE id = ? AND status = 'pending'",
        (req.status.value, req.decided_by, utc_text(req.decided_at), req.decision_note, req.id),
    )
    if cur.rowcount != 1:
        raise StorageError(f"change #{req.id} is no longer pending")


_CHANGE_COLUMNS: Final = (
    "id, requested_by, requested_at, kind, payload, reason, status, decided_by, decided_at, "
    "decision_note"
)


async def get_change(conn: aiosqlite.Connection, change_id: int) -> ChangeRequest | None:
    cur = await conn.execute(
        f"SELECT {_CHANGE_COLUMNS} FROM roster_changes WHERE id = ?", (change_id,)
    )
    row = await cur.fetchone()
    return None if row is None else _change(row)


async def list_changes(
    conn: aiosqlite.Connection, *, status: ChangeStatus | None = None, limit: int = 100
) -> list[ChangeRequest]:
    """Newest first; only those with `status` if given."""
    where, params = ("WHERE status = ?", [status.value]) if status else ("", [])
    cur = await conn.execute(
        f"SELECT {_CHANGE_COLUMNS} FROM roster_changes {where} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    )
    return [_change(r) for r in await cur.fetchall()]


def _change(r: sqlite3.Row) -> ChangeRequest:
    kind = ChangeKind(r[3])
    try:
        payload = payload_from_json(kind, json.loads(r[4]))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise StorageError(f"change #{r[0]}: stored payload is not valid: {err}") from err
    return ChangeRequest(
        requested_by=r[1],
        requested_at=parse_utc_text(r[2]),
        payload=payload,
        reason=r[5],
        status=ChangeStatus(r[6]),
        id=r[0],
        decided_by=r[7],
        decided_at=None if r[8] is None else parse_utc_text(r[8]),
        decision_note=r[9],
    )


@dataclass(frozen=True, slots=True)
class ImportResult:
    file: str
    first_day: dt.date
    last_day: dt.date
    replaced: int  # stored shifts that started within the file's days
    imported: int
    warnings: tuple[RosterIssue, ...]
    sha256: str
    dry_run: bool


async def import_roster(
    conn: aiosqlite.Connection,
    parsed: ParsedRoster,
    tz: ZoneInfo,
    *,
    by: str,
    at: float,
    sha256: str,
    leader_gap: LeaderGap = "error",
    dry_run: bool = False,
) -> ImportResult:
    """Replace the shifts starting within the file's days by the file's, atomically, or raise
    RosterError listing every problem (nothing is changed). A dry run checks and writes nothing.
    """
    if parsed.first_day is None or parsed.last_day is None:
        raise RosterError(parsed.issues or (RosterIssue(parsed.file, "no shifts in the file"),))
    async with contextlib.AsyncExitStack() as stack:
        if not dry_run:
            await stack.enter_async_context(transaction(conn))
        agents = await load_agents(conn)
        near = await load_shifts(conn, parsed.start, parsed.end + MAX_SHIFT_SECONDS)
        kept = [s for s in near if not parsed.start <= s.start < parsed.end]
        issues = check(parsed, agents, kept, tz, leader_gap=leader_gap)
        if has_errors(issues):
            raise RosterError(issues)
        replaced = len(near) - len(kept)
        if not dry_run:
            replaced = await delete_starting_in(conn, parsed.start, parsed.end)
            await insert_shifts(conn, [rs.shift for rs in parsed.shifts], by=by, at=at)
            detail = {
                "file": parsed.file,
                "sha256": sha256,
                "first_day": parsed.first_day.isoformat(),
                "last_day": parsed.last_day.isoformat(),
                "recurring": parsed.recurring,
                "replaced": replaced,
                "imported": len(parsed.shifts),
                "warnings": [str(i) for i in issues],
            }
            await append_audit(conn, who=by, action="roster_imported", detail=detail, at=at)
    return ImportResult(
        parsed.file,
        parsed.first_day,
        parsed.last_day,
        replaced,
        len(parsed.shifts),
        tuple(issues),
        sha256,
        dry_run,
    )


async def request_change(
    conn: aiosqlite.Connection,
    req: ChangeRequest,
    tz: ZoneInfo,
    *,
    leader_gap: LeaderGap = "error",
) -> tuple[ChangeRequest, tuple[RosterIssue, ...]]:
    """Store a pending request (audited) if it could be applied now; else ChangeError."""
    async with transaction(conn):
        _, warnings = await _prepare(
            conn,
            req.payload,
            tz,
            at=req.requested_at,
            label="request",
            source="",
            leader_gap=leader_gap,
        )
        stored = await insert_change(conn, req)
        detail = {
            "id": stored.id,
            "kind": req.kind.value,
            "payload": payload_to_json(req.payload),
            "reason": req.reason,
        }
        await append_audit(
            conn,
            who=req.requested_by,
            action="change_requested",
            detail=detail,
            at=req.requested_at,
        )
    return stored, warnings


async def decide_change(
    conn: aiosqlite.Connection,
    change_id: int,
    tz: ZoneInfo,
    *,
    approve: bool,
    by: str,
    at: float,
    note: str = "",
    leader_gap: LeaderGap = "error",
) -> tuple[ChangeRequest, tuple[RosterIssue, ...]]:
    """Approve (and apply) or reject a pending request, audited; ChangeError if it cannot be."""
    async with transaction(conn):
        req = await get_change(conn, change_id)
        if req is None:
            raise ChangeError(f"no change #{change_id}")
        decided = decide(req, approve=approve, by=by, at=at, note=note)
        detail: dict[str, object] = {"id": change_id, "note": note}
        warnings: tuple[RosterIssue, ...] = ()
        if approve:
            diff, warnings = await _prepare(
                conn,
                req.payload,
                tz,
                at=at,
                label=f"change #{change_id}",
                source=f"change:{change_id}",
                leader_gap=leader_gap,
            )
            await _write(conn, diff, by=by, at=at)
            detail.update(_diff_detail(diff))
        await save_decision(conn, decided)
        action = "change_approved" if approve else "change_rejected"
        await append_audit(conn, who=by, action=action, detail=detail, at=at)
    return decided, warnings


async def edit_roster(
    conn: aiosqlite.Connection,
    payload: Payload,
    tz: ZoneInfo,
    *,
    by: str,
    reason: str,
    at: float,
    leader_gap: LeaderGap = "error",
) -> tuple[ShiftDiff, tuple[RosterIssue, ...]]:
    """A supervisor's direct change, applied at once and audited with its reason."""
    if not reason.strip():
        raise ChangeError("an edit needs a reason")
    async with transaction(conn):
        diff, warnings = await _prepare(
            conn, payload, tz, at=at, label="edit", source="edit", leader_gap=leader_gap
        )
        ids = await _write(conn, diff, by=by, at=at)
        detail = {"reason": reason, "payload": payload_to_json(payload), **_diff_detail(diff)}
        detail["new_ids"] = ids
        await append_audit(conn, who=by, action="shift_edited", detail=detail, at=at)
    return diff, warnings


async def _prepare(
    conn: aiosqlite.Connection,
    payload: Payload,
    tz: ZoneInfo,
    *,
    at: float,
    label: str,
    source: str,
    leader_gap: LeaderGap,
) -> tuple[ShiftDiff, tuple[RosterIssue, ...]]:
    current = await get_shifts(conn, shift_ids(payload))
    diff = apply(payload, current, source=source)
    span = [*diff.before, *diff.after]
    lo = min(s.start for s in span) - MAX_SHIFT_SECONDS
    hi = max(s.end for s in span) + MAX_SHIFT_SECONDS
    agents = await load_agents(conn)
    others = await load_shifts(conn, lo, hi)
    issues = check_change(diff, agents, others, tz, at=at, label=label, leader_gap=leader_gap)
    if has_errors(issues):
        errors = [i for i in issues if i.severity is Severity.ERROR]
        raise ChangeError(f"{label}: {errors[0].message}", issues)
    return diff, issues


async def _write(conn: aiosqlite.Connection, diff: ShiftDiff, *, by: str, at: float) -> list[int]:
    for s in diff.after:
        if s.id is not None:
            await update_shift(conn, s)
    await delete_shifts(conn, [s.id for s in diff.removed if s.id is not None])
    return await insert_shifts(conn, [s for s in diff.after if s.id is None], by=by, at=at)


def _diff_detail(diff: ShiftDiff) -> dict[str, object]:
    return {
        "before": [shift_to_json(s) for s in diff.before],
        "after": [shift_to_json(s) for s in diff.after],
    }
