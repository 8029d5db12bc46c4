"""Roster changes: an agent asks (a swap, or a shift added, moved, handed over or removed), a
supervisor approves or rejects, and only an approved change touches the roster.

Pure code. `new_request` and `decide` are the two recorded steps (who, when, what, why);
`apply` turns a payload into the shifts before and after, and `check_change` says whether that
result keeps the roster's rules at the moment of the decision (the roster may have moved on
since the request). A supervisor's direct edit is the same payload with no request.

The handbook: "any change must be approved by a superior first" -- so the decider is never the
requester. Whether the decider *is* a supervisor is the caller's to check (it knows the users).
Shifts that have ended are history: no change touches them.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from ivr_agent.domain.roster import (
    MAX_SHIFT_SECONDS,
    Agent,
    Break,
    Role,
    RosterIssue,
    Severity,
    Shift,
    span_text,
)
from ivr_agent.domain.roster_rules import LeaderGap, conflicts
from ivr_agent.errors import IvrAgentError


class ChangeError(IvrAgentError):
    """A change request that cannot be made, decided or applied; `.issues` has the details."""

    def __init__(self, message: str, issues: Sequence[RosterIssue] = ()) -> None:
        super().__init__(message)
        self.issues = tuple(issues)


class ChangeKind(enum.Enum):
    SWAP = "swap"
    CHANGE = "change"


class ChangeStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Swap:
    """Two agents exchange two shifts (each shift keeps its times, role and breaks)."""

    shift: int
    other: int


@dataclass(frozen=True, slots=True)
class Edit:
    """A new shift (`shift` None), or one shift changed (only the fields given) or removed."""

    shift: int | None = None
    agent: str | None = None
    start: float | None = None
    end: float | None = None
    role: Role | None = None
    breaks: tuple[Break, ...] | None = None
    remove: bool = False


Payload = Swap | Edit


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    requested_by: str
    requested_at: float
    payload: Payload
    reason: str
    status: ChangeStatus = ChangeStatus.PENDING
    id: int | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    decision_note: str = ""

    @property
    def kind(self) -> ChangeKind:
        return ChangeKind.SWAP if isinstance(self.payload, Swap) else ChangeKind.CHANGE


@dataclass(frozen=True, slots=True)
class ShiftDiff:
    """Stored shifts as they were, and what replaces them: an id in both is an update, an id
    only in `before` a removal, a shift with no id in `after` a new one."""

    before: tuple[Shift, ...]
    after: tuple[Shift, ...]

    @property
    def removed(self) -> tuple[Shift, ...]:
        kept = {s.id for s in self.after}
        return tuple(s for s in self.before if s.id not in kept)


def new_request(requested_by: str, payload: Payload, reason: str, at: float) -> ChangeRequest:
    """A pending request; it says who asks and why, and the payload makes sense on its own."""
    if not requested_by.strip():
        raise ChangeError("a change request needs the name of who asks")
    if not reason.strip():
        raise ChangeError("a change request needs a reason")
    _check_payload(payload)
    return ChangeRequest(requested_by.strip(), at, payload, reason.strip())


def decide(
    request: ChangeRequest, *, approve: bool, by: str, at: float, note: str = ""
) -> ChangeRequest:
    """The request approved or rejected by `by` (never its requester); pending ones only."""
    if request.status is not ChangeStatus.PENDING:
        raise ChangeError(f"change #{request.id} is already {request.status.value}")
    if not by.strip():
        raise ChangeError("a decision needs the name of who decides")
    if by.strip() == request.requested_by:
        raise ChangeError(f"change #{request.id}: {by} asked for it, so someone else decides")
    status = ChangeStatus.APPROVED if approve else ChangeStatus.REJECTED
    return replace(request, status=status, decided_by=by.strip(), decided_at=at, decision_note=note)


def shift_ids(payload: Payload) -> tuple[int, ...]:
    """The stored shifts a payload refers to."""
    if isinstance(payload, Swap):
        return (payload.shift, payload.other)
    return () if payload.shift is None else (payload.shift,)


def apply(payload: Payload, current: Mapping[int, Shift], *, source: str) -> ShiftDiff:
    """The shifts before and after the payload; `current` holds the shifts it refers to."""
    missing = [i for i in shift_ids(payload) if i not in current]
    if missing:
        raise ChangeError(f"no shift #{missing[0]}")
    if isinstance(payload, Swap):
        a, b = current[payload.shift], current[payload.other]
        if a.agent == b.agent:
            raise ChangeError(f"shifts #{a.id} and #{b.id} are both {a.agent}'s: nothing to swap")
        after = (replace(a, agent=b.agent, source=source), replace(b, agent=a.agent, source=source))
        return ShiftDiff((a, b), after)
    if payload.shift is None:
        if payload.agent is None or payload.start is None or payload.end is None:
            raise ChangeError("a new shift needs an agent, a start and an end")
        role = payload.role or Role.AGENT
        breaks = payload.breaks or ()
        new = Shift(payload.agent, payload.start, payload.end, role, breaks, source=source)
        return ShiftDiff((), (new,))
    old = current[payload.shift]
    if payload.remove:
        return ShiftDiff((old,), ())
    new = replace(
        old,
        agent=payload.agent if payload.agent is not None else old.agent,
        start=payload.start if payload.start is not None else old.start,
        end=payload.end if payload.end is not None else old.end,
        role=payload.role if payload.role is not None else old.role,
        breaks=payload.breaks if payload.breaks is not None else old.breaks,
        source=source,
    )
    return ShiftDiff((old,), (new,))


def check_change(
    diff: ShiftDiff,
    agents: Mapping[str, Agent],
    others: Sequence[Shift],
    tz: ZoneInfo,
    *,
    at: float,
    label: str,
    leader_gap: LeaderGap = "error",
) -> tuple[RosterIssue, ...]:
    """What is wrong with `diff` at `at`: history touched, shifts out of shape, unknown or
    inactive agents, overlaps with `others` (the stored shifts around it, not those in `diff`),
    and leader gaps over the changed span. `label` names the change ("change #12", "edit")."""
    issues: list[RosterIssue] = []

    def add(column: str, message: str, sev: Severity = Severity.ERROR) -> None:
        issues.append(RosterIssue(label, message, None, column, severity=sev))

    for s in diff.before:
        if s.end <= at:
            add("shift", f"shift #{s.id} ({span_text(s.start, s.end, tz)}) has ended: history")
    for s in diff.after:
        if not s.start < s.end <= s.start + MAX_SHIFT_SECONDS:
            add("end", f"a shift must end after it starts, within 24 hours: {_span(s, tz)}")
        elif s.end <= at:
            add("end", f"{_span(s, tz)} is in the past")
        if any(not s.start <= b.start < b.end <= s.end for b in s.breaks):
            add("breaks", f"a break falls outside {_span(s, tz)}: change the breaks too")
        agent = agents.get(s.agent)
        if agent is None or not agent.active:
            add("agent", f"{s.agent!r} is not an active agent")
    if issues or (not diff.after and not diff.before):
        return tuple(issues)
    touched = {s.id for s in diff.before}
    kept = [s for s in others if s.id not in touched and s.agent in agents]
    span = [*diff.before, *diff.after]
    window = (min(s.start for s in span), max(s.end for s in span))
    found = conflicts(
        diff.after,
        kept,
        tz,
        window=window,
        leader_gap=leader_gap,
        name=lambda i: f"shift #{diff.after[i].id}" if diff.after[i].id else "the new shift",
    )
    for c in found:
        add(c.key, c.message, c.severity)
    return tuple(issues)


def _span(s: Shift, tz: ZoneInfo) -> str:
    return f"{s.agent} {span_text(s.start, s.end, tz)}"


def _check_payload(payload: Payload) -> None:
    if isinstance(payload, Swap):
        if payload.shift == payload.other:
            raise ChangeError("a swap needs two different shifts")
        return
    if payload.shift is None:
        if payload.remove:
            raise ChangeError("remove needs the shift to remove")
        if payload.agent is None or payload.start is None or payload.end is None:
            raise ChangeError("a new shift needs an agent, a start and an end")
        return
    fields = (payload.agent, payload.start, payload.end, payload.role, payload.breaks)
    if payload.remove and any(f is not None for f in fields):
        raise ChangeError("remove takes no other changes")
    if not payload.remove and all(f is None for f in fields):
        raise ChangeError(f"the change to shift #{payload.shift} changes nothing")


def payload_to_json(payload: Payload) -> dict[str, object]:
    """The payload as JSON-ready data (times as UTC ISO text), for the store and the audit."""
    if isinstance(payload, Swap):
        return {"shift": payload.shift, "other": payload.other}
    out: dict[str, object] = {"shift": payload.shift}
    if payload.agent is not None:
        out["agent"] = payload.agent
    if payload.start is not None:
        out["start"] = _iso(payload.start)
    if payload.end is not None:
        out["end"] = _iso(payload.end)
    if payload.role is not None:
        out["role"] = payload.role.value
    if payload.breaks is not None:
        out["breaks"] = [[_iso(b.start), _iso(b.end)] for b in payload.breaks]
    if payload.remove:
        out["remove"] = True
    return out


def payload_from_json(kind: ChangeKind, data: Mapping[str, object]) -> Payload:
    """The inverse of `payload_to_json`; ValueError if the data is not one."""
    if kind is ChangeKind.SWAP:
        return Swap(_int(data["shift"]), _int(data["other"]))
    shift, agent, role = data.get("shift"), data.get("agent"), data.get("role")
    start, end, breaks = data.get("start"), data.get("end"), data.get("breaks")
    if agent is not None and not isinstance(agent, str):
        raise ValueError(f"agent: {agent!r}")
    if breaks is not None and not isinstance(breaks, list):
        raise ValueError(f"breaks: {breaks!r}")
    return Edit(
        shift=None if shift is None else _int(shift),
        agent=agent,
        start=None if start is None else _from_iso(start),
        end=None if end is None else _from_iso(end),
        role=None if role is None else Role(role),
        breaks=None if breaks is None else tuple(_break(b) for b in breaks),
        remove=data.get("remove") is True,
    )


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"not a shift id: {value!r}")


def _break(value: object) -> Break:
    if isinstance(value, list) and len(value) == 2:
        return Break(_from_iso(value[0]), _from_iso(value[1]))
    raise ValueError(f"not a break: {value!r}")


def shift_to_json(s: Shift) -> dict[str, object]:
    """A shift for the audit trail."""
    return {
        "id": s.id,
        "agent": s.agent,
        "start": _iso(s.start),
        "end": _iso(s.end),
        "role": s.role.value,
        "breaks": [[_iso(b.start), _iso(b.end)] for b in s.breaks],
    }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_iso(text: object) -> float:
    if not isinstance(text, str):
        raise ValueError(f"not a time: {text!r}")  # noqa: TRY004 - callers expect ValueError
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
