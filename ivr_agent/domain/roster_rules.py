"""The rules a roster must keep before it is stored: known agents, no agent on two shifts at
once, and a shift leader whenever anyone is on duty (an error or a warning, as configured).

Pure code, shared by file imports (`check`) and by change requests and supervisor edits
(`conflicts`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from ivr_agent.domain.roster import (
    Agent,
    RosterIssue,
    Severity,
    Shift,
    find_overlaps,
    has_errors,
    leader_gaps,
    span_text,
)
from ivr_agent.domain.roster_table import ParsedRoster, RowShift

LeaderGap = Literal["error", "warning"]
LEADER_GAPS: tuple[LeaderGap, ...] = ("error", "warning")


@dataclass(frozen=True, slots=True)
class Conflict:
    index: int | None  # which of the new shifts it is about; None for a leader gap
    key: str  # the column it belongs to: "start" (overlaps) or "role" (leader gaps)
    message: str
    severity: Severity = Severity.ERROR


def conflicts(
    new: Sequence[Shift],
    kept: Sequence[Shift],
    tz: ZoneInfo,
    *,
    window: tuple[float, float],
    leader_gap: LeaderGap = "error",
    name: Callable[[int], str] = lambda i: f"new shift {i + 1}",
) -> list[Conflict]:
    """Overlaps of `new` shifts with each other or with `kept` ones (each shift once per other
    row or stored shift), and leader gaps within `window` with `new` and `kept` together.

    `name(i)` says what new shift i is called in messages ("row 3", "shift #12").
    """
    found: list[Conflict] = []
    everything = [*new, *kept]
    seen: set[tuple[str, str]] = set()
    for i, j in find_overlaps(everything):
        # Report on a new shift; a clash between two kept shifts is not this change's doing.
        a, b = (j, i) if j < len(new) else (i, j)
        if a >= len(new):
            continue
        other = everything[b]
        where = name(b) if b < len(new) else f"stored shift #{other.id}"
        if (name(a), where) in seen:
            continue  # a recurring row clashes on every day: once is enough
        seen.add((name(a), where))
        mine = everything[a]
        message = (
            f"{mine.agent}'s shift {span_text(mine.start, mine.end, tz)} overlaps {where} "
            f"({span_text(other.start, other.end, tz)})"
        )
        found.append(Conflict(a, "start", message))
    sev = Severity.ERROR if leader_gap == "error" else Severity.WARNING
    for lo, hi in leader_gaps(everything, *window):
        names = sorted({s.agent for s in everything if s.start < hi and lo < s.end})
        message = f"no shift leader {span_text(lo, hi, tz)} while {', '.join(names)} on duty"
        found.append(Conflict(None, "role", message, sev))
    return found


def check(
    parsed: ParsedRoster,
    agents: Mapping[str, Agent],
    kept: Sequence[Shift],
    tz: ZoneInfo,
    *,
    leader_gap: LeaderGap = "error",
) -> tuple[RosterIssue, ...]:
    """Everything wrong with importing `parsed`: its own issues, unknown or inactive agents,
    overlapping shifts of one agent (within the file, or with `kept`: the stored shifts outside
    the file's days, which an import leaves alone), and times with agents but no shift leader,
    from the file's first day to the end of its last shift (once no row has an error)."""
    issues = list(parsed.issues)
    columns = parsed.columns or {}

    def at(row: int | None, key: str, message: str, sev: Severity = Severity.ERROR) -> RosterIssue:
        label, letter = columns.get(key, (key, ""))
        cell = f"{letter}{row}" if letter and row is not None else None
        return RosterIssue(parsed.file, message, row, label, cell, sev)

    good: list[RowShift] = []
    for rs in parsed.shifts:
        agent = agents.get(rs.shift.agent)
        if agent is None:
            hint = "add it first: ivr-agent roster agents add"
            issues.append(at(rs.row, "agent", f"unknown agent {rs.shift.agent!r} ({hint})"))
        elif not agent.active:
            issues.append(at(rs.row, "agent", f"agent {rs.shift.agent!r} is inactive"))
        else:
            good.append(rs)
    if not good:
        return tuple(issues)
    live = [s for s in kept if s.agent in agents and agents[s.agent].active]
    window = (parsed.start, max(parsed.end, *(rs.shift.end for rs in good)))
    # A row with an error gives no shift: a leader gap seen without it would be a false alarm,
    # so leader coverage is judged once every row is valid.
    rows_ok = not has_errors(issues)
    found = conflicts(
        [rs.shift for rs in good],
        live,
        tz,
        window=window if rows_ok else (window[0], window[0]),
        leader_gap=leader_gap,
        name=lambda i: f"row {good[i].row}",
    )
    for c in found:
        row = None if c.index is None else good[c.index].row
        issues.append(at(row, c.key, c.message, c.severity))
    return tuple(issues)
