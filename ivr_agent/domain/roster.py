"""The duty roster (值班表): agents, shifts, breaks, and who is on duty / leading at a time.

Pure code: times are epoch seconds (UTC floats) and the clock is passed in. Files give local
dates and times in the site's zone; `local_epoch` turns them into instants, so shifts that
cross midnight, and zones with or without DST, need no special case here: a shift is the
half-open interval [start, end) and a break lies inside it.

Queries on a `Roster` (built once per load, asked many times by the glue):
    on_duty(t)        every agent on a shift at t (with whether they are on a break)
    leader_at(t)      the shift leader (值班班长) to call in at t, preferring one not on a break
    next_change(t)    the next instant after t when who is on duty, their role or break changes
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

from ivr_agent.errors import ConfigError

# A file row says at most 00:00-24:00; edits are held to the same bound.
MAX_SHIFT_SECONDS: Final = 24 * 3600.0


class Role(enum.Enum):
    AGENT = "agent"
    LEADER = "leader"  # 值班班长: helps with abusive callers, approves nothing by itself


@dataclass(frozen=True, slots=True)
class Agent:
    name: str  # unique; the queue MemberName
    interface: str  # e.g. Local/agent1@lab-agents/n or PJSIP/1001; unique
    queues: tuple[str, ...] = ()
    display_name: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class Break:
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Shift:
    agent: str
    start: float
    end: float
    role: Role = Role.AGENT
    breaks: tuple[Break, ...] = ()
    id: int | None = None  # set once stored
    source: str = ""  # "import:roster.csv", "change:12", "edit"
    note: str = ""

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end

    def on_break(self, t: float) -> bool:
        return any(b.start <= t < b.end for b in self.breaks)

    def overlaps(self, other: Shift) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Duty:
    """One agent on duty at an instant."""

    agent: Agent
    shift: Shift
    on_break: bool

    @property
    def role(self) -> Role:
        return self.shift.role


@dataclass(frozen=True, slots=True)
class Roster:
    """Agents and their shifts over some window; the store loads the window the glue needs.

    Shifts of unknown or inactive agents are kept (they are history) but never on duty.
    """

    agents: Mapping[str, Agent]
    shifts: tuple[Shift, ...]
    _by_start: tuple[Shift, ...] = field(init=False, repr=False, compare=False)
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _longest: float = field(init=False, repr=False, compare=False)
    _bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        live = sorted(
            (s for s in self.shifts if self._active(s.agent)), key=lambda s: (s.start, s.agent)
        )
        bounds = {t for s in live for t in (s.start, s.end)}
        bounds.update(t for s in live for b in s.breaks for t in (b.start, b.end))
        object.__setattr__(self, "_by_start", tuple(live))
        object.__setattr__(self, "_starts", tuple(s.start for s in live))
        object.__setattr__(self, "_longest", max((s.end - s.start for s in live), default=0.0))
        object.__setattr__(self, "_bounds", tuple(sorted(bounds)))

    def _active(self, name: str) -> bool:
        agent = self.agents.get(name)
        return agent is not None and agent.active

    def on_duty(self, t: float) -> tuple[Duty, ...]:
        """Everyone on a shift at t, ordered by agent name. O(log n + shifts that may cover t)."""
        hi = bisect.bisect_right(self._starts, t)
        lo = bisect.bisect_left(self._starts, t - self._longest)
        duties = [
            Duty(self.agents[s.agent], s, s.on_break(t))
            for s in self._by_start[lo:hi]
            if s.covers(t)
        ]
        duties.sort(key=lambda d: d.agent.name)
        return tuple(duties)

    def leaders_at(self, t: float) -> tuple[Duty, ...]:
        """The shift leaders on duty at t: not on a break first, then by shift start, then name."""
        leaders = [d for d in self.on_duty(t) if d.role is Role.LEADER]
        leaders.sort(key=lambda d: (d.on_break, d.shift.start, d.agent.name))
        return tuple(leaders)

    def leader_at(self, t: float) -> Duty | None:
        """The shift leader to call in at t (one on a break only if no other), or None."""
        leaders = self.leaders_at(t)
        return leaders[0] if leaders else None

    def next_change(self, t: float) -> float | None:
        """The first instant after t when the on-duty set, a role or a break changes.

        Back-to-back shifts of one agent in one role (a 24:00 end and a 00:00 start) are a seam,
        not a change.
        """
        i = bisect.bisect_right(self._bounds, t)
        before = _snapshot(self.on_duty(t))
        for b in self._bounds[i:]:
            now = _snapshot(self.on_duty(b))
            if now != before:
                return b
            before = now
        return None

    def shifts_of(self, agent: str) -> tuple[Shift, ...]:
        return tuple(sorted((s for s in self.shifts if s.agent == agent), key=lambda s: s.start))


def find_overlaps(shifts: Sequence[Shift]) -> list[tuple[int, int]]:
    """Pairs (i, j) of indexes into `shifts`: shift j of an agent starts before shift i ends.

    Each overlapping shift is reported once, against the earlier shift that runs longest.
    Back-to-back shifts (an end equal to the next start) do not overlap. O(n log n).
    """
    by_agent: dict[str, list[int]] = {}
    for i, s in enumerate(shifts):
        by_agent.setdefault(s.agent, []).append(i)
    pairs: list[tuple[int, int]] = []
    for indexes in by_agent.values():
        indexes.sort(key=lambda i: (shifts[i].start, shifts[i].end))
        longest = indexes[0]
        for j in indexes[1:]:
            if shifts[j].start < shifts[longest].end:
                pairs.append((longest, j))
            if shifts[j].end > shifts[longest].end:
                longest = j
    pairs.sort(key=lambda p: (shifts[p[1]].start, shifts[p[1]].agent))
    return pairs


def leader_gaps(shifts: Iterable[Shift], start: float, end: float) -> list[tuple[float, float]]:
    """Spans within [start, end) when someone is on duty but no shift leader is (breaks aside)."""
    deltas: dict[float, list[int]] = {}
    for s in shifts:
        for t, sign in ((s.start, 1), (s.end, -1)):
            d = deltas.setdefault(t, [0, 0])
            d[0] += sign
            d[1] += sign if s.role is Role.LEADER else 0
    gaps: list[tuple[float, float]] = []
    staffed = leaders = 0
    # After the last time everyone is off duty: pairs of consecutive times cover every span.
    for t, after in itertools.pairwise(sorted(deltas)):
        staffed += deltas[t][0]
        leaders += deltas[t][1]
        if staffed == 0 or leaders > 0:
            continue
        lo, hi = max(t, start), min(after, end)
        if lo >= hi:
            continue
        if gaps and gaps[-1][1] == lo:
            gaps[-1] = (gaps[-1][0], hi)
        else:
            gaps.append((lo, hi))
    return gaps


def _snapshot(duties: Iterable[Duty]) -> frozenset[tuple[str, Role, bool]]:
    return frozenset((d.agent.name, d.role, d.on_break) for d in duties)


def local_epoch(day: dt.date, at: dt.time, tz: ZoneInfo) -> float | None:
    """The instant of a local wall-clock time, or None if it does not exist (a DST gap).

    An ambiguous time (the hour repeated when clocks go back) is the first of the two.
    """
    naive = dt.datetime.combine(day, at)
    aware = naive.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive:
        return None
    return aware.timestamp()


def to_local(ts: float, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz)


def day_start(day: dt.date, tz: ZoneInfo) -> float:
    """The first instant of a local day (if DST skips midnight, the moment the clock resumes)."""
    # For a skipped wall time, fold=0 applies the offset from before the jump: that instant is
    # the transition itself, which is the day's first instant.
    return dt.datetime.combine(day, dt.time(0), tz).timestamp()


def local_text(ts: float, tz: ZoneInfo) -> str:
    """'2026-07-01 08:00' in the site's zone: what issues and the CLI show."""
    return to_local(ts, tz).strftime("%Y-%m-%d %H:%M")


def span_text(start: float, end: float, tz: ZoneInfo) -> str:
    """'2026-07-01 08:00-17:00', '... 00:00-24:00', '2026-07-01 22:00-06:00 (+1d)'."""
    a, b = to_local(start, tz), to_local(end, tz)
    days = (b.date() - a.date()).days
    if days == 1 and b.time() == dt.time(0):
        tail = "24:00"
    elif days == 0:
        tail = b.strftime("%H:%M")
    else:
        tail = f"{b.strftime('%H:%M')} (+{days}d)"
    return f"{a.strftime('%Y-%m-%d %H:%M')}-{tail}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class RosterIssue:
    """One problem, located: file (or change request), row, column as written, cell."""

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    cell: str | None = None  # spreadsheet reference, e.g. "C5"
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}" + (f" ({self.cell})" if self.cell else ""))
        kind = "" if self.severity is Severity.ERROR else "warning: "
        return f"{', '.join(where)}: {kind}{self.message}"


class RosterError(ConfigError):
    """A roster file or change is invalid; `.issues` lists every problem, errors first."""

    def __init__(self, issues: Sequence[RosterIssue]) -> None:
        ordered = sorted(issues, key=lambda i: i.severity is not Severity.ERROR)
        self.issues: tuple[RosterIssue, ...] = tuple(ordered)
        errors = [i for i in ordered if i.severity is Severity.ERROR]
        first = str(errors[0] if errors else ordered[0]) if ordered else "invalid roster"
        more = len(errors) - 1
        super().__init__(first + (f" (and {more} more errors)" if more > 0 else ""))

    @property
    def errors(self) -> tuple[RosterIssue, ...]:
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)


def has_errors(issues: Iterable[RosterIssue]) -> bool:
    return any(i.severity is Severity.ERROR for i in issues)
