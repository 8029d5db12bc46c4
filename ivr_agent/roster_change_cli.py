"""`ivr-agent roster request|approve|reject|changes|edit|audit`: roster changes and their trail.

An agent requests (a swap, or a shift added, moved, handed over or removed); a supervisor
approves (it applies at once, if the roster still allows it) or rejects; a supervisor may also
edit directly. Each step is audited with who, when, what and why.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import aiosqlite

from ivr_agent.domain.roster import Role, RosterIssue, local_text
from ivr_agent.domain.roster_changes import (
    ChangeRequest,
    ChangeStatus,
    Edit,
    Payload,
    ShiftDiff,
    Swap,
    new_request,
    payload_to_json,
)
from ivr_agent.domain.roster_rules import LEADER_GAPS
from ivr_agent.errors import ConfigError
from ivr_agent.roster_cli import (
    json_out,
    local_instant,
    os_user,
    print_issues,
    run_db,
    settings_tz,
)
from ivr_agent.store import roster as store
from ivr_agent.store import roster_ops as ops

_Command = Callable[..., argparse.ArgumentParser]


def add_parsers(rs: argparse._SubParsersAction[argparse.ArgumentParser], command: _Command) -> None:
    req = command(rs, "request", _request, "ask for a change: it applies once approved")
    req.add_argument("--by", help="who asks (default: the OS user)")
    _change_flags(req)
    for name, text in (("approve", "approve a change and apply it"), ("reject", "reject one")):
        d = command(rs, name, _decide, text)
        d.add_argument("id", type=int)
        d.add_argument("--by", help="the supervisor (default: the OS user)")
        d.add_argument("--note", default="")
        d.add_argument("--leader-gap", choices=LEADER_GAPS, default="error")
    ch = command(rs, "changes", _changes, "change requests, newest first")
    ch.add_argument(
        "--status", choices=[*(s.value for s in ChangeStatus), "all"], default="pending"
    )
    ch.add_argument("--json", action="store_true")
    edit = command(rs, "edit", _edit, "a supervisor's direct change, recorded with its reason")
    edit.add_argument("--by", help="the supervisor (default: the OS user)")
    edit.add_argument("--leader-gap", choices=LEADER_GAPS, default="error")
    _change_flags(edit)
    audit = command(rs, "audit", _audit, "the roster audit trail, newest first")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--json", action="store_true")


def _change_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", required=True)
    p.add_argument("--swap", nargs=2, type=int, metavar=("SHIFT", "OTHER"), help="swap 2 shifts")
    p.add_argument("--shift", type=int, help="the shift to change (none: a new shift)")
    p.add_argument("--agent", help="hand the shift to this agent (or: the new shift's agent)")
    p.add_argument("--start", help="'YYYY-MM-DD HH:MM' local time")
    p.add_argument("--end", help="'YYYY-MM-DD HH:MM' local time")
    p.add_argument("--role", choices=[r.value for r in Role])
    p.add_argument("--clear-breaks", action="store_true", help="drop the shift's breaks")
    p.add_argument("--remove", action="store_true", help="remove the shift")


def _request(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    req = new_request(args.by or os_user(), _payload(args, tz), args.reason, time.time())
    stored, warnings = run_db(settings, lambda c: ops.request_change(c, req, tz))
    print_issues(warnings)
    print(f"change #{stored.id} requested: approve with `ivr-agent roster approve {stored.id}`")
    return 0


def _decide(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    approve = args.roster_command == "approve"

    async def work(conn: aiosqlite.Connection) -> tuple[ChangeRequest, tuple[RosterIssue, ...]]:
        return await ops.decide_change(
            conn,
            args.id,
            tz,
            approve=approve,
            by=args.by or os_user(),
            at=time.time(),
            note=args.note,
            leader_gap=args.leader_gap,
        )

    decided, warnings = run_db(settings, work)
    print_issues(warnings)
    print(f"change #{args.id} {decided.status.value} by {decided.decided_by}")
    return 0


def _changes(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    status = None if args.status == "all" else ChangeStatus(args.status)
    changes = run_db(settings, lambda c: ops.list_changes(c, status=status))
    rows = [
        {
            "id": r.id,
            "kind": r.kind.value,
            "status": r.status.value,
            "requested_by": r.requested_by,
            "requested_at": local_text(r.requested_at, tz),
            "reason": r.reason,
            "payload": payload_to_json(r.payload),
            "decided_by": r.decided_by,
            "decided_at": local_text(r.decided_at, tz) if r.decided_at else None,
            "note": r.decision_note,
        }
        for r in changes
    ]
    if args.json:
        json_out(rows)
        return 0
    for row in rows:
        payload = json.dumps(row["payload"], ensure_ascii=False)
        print(
            f"#{row['id']:<5} {row['status']:<9} {row['kind']:<7} {row['requested_at']} "
            f"{row['requested_by']}: {row['reason']}  {payload}"
        )
    return 0


def _edit(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    payload = _payload(args, tz)

    async def work(conn: aiosqlite.Connection) -> tuple[ShiftDiff, tuple[RosterIssue, ...]]:
        return await ops.edit_roster(
            conn,
            payload,
            tz,
            by=args.by or os_user(),
            reason=args.reason,
            at=time.time(),
            leader_gap=args.leader_gap,
        )

    diff, warnings = run_db(settings, work)
    print_issues(warnings)
    print(f"edited: {len(diff.before)} shifts before, {len(diff.after)} after")
    return 0


def _audit(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    entries = run_db(settings, lambda c: store.list_audit(c, limit=args.limit))
    rows = [
        {
            "id": e.id,
            "at": local_text(e.at, tz),
            "who": e.who,
            "action": e.action,
            "detail": e.detail,
        }
        for e in entries
    ]
    if args.json:
        json_out(rows)
        return 0
    for row in rows:
        detail = json.dumps(row["detail"], ensure_ascii=False)
        print(f"{row['at']}  {row['who']:<10} {row['action']:<16} {detail}")
    return 0


def _payload(args: argparse.Namespace, tz: ZoneInfo) -> Payload:
    edits = (args.shift, args.agent, args.start, args.end, args.role)
    if args.swap:
        if any(e is not None for e in edits) or args.remove or args.clear_breaks:
            raise ConfigError("--swap takes no other change flags")
        return Swap(args.swap[0], args.swap[1])
    return Edit(
        shift=args.shift,
        agent=args.agent,
        start=local_instant(args.start, tz, "--start") if args.start else None,
        end=local_instant(args.end, tz, "--end") if args.end else None,
        role=Role(args.role) if args.role else None,
        breaks=() if args.clear_breaks else None,
        remove=args.remove,
    )
