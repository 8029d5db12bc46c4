"""Roster files as tables: the header's columns, and each row -> shifts.

Pure code. The file adapter (`ivr_agent.rosterfile`) reads CSV or .xlsx into a `Table` of raw
cells; `parse_table` turns rows into shifts (`roster_rules.check` then adds what needs the
agents and the stored shifts). Every issue names the file, the row (as numbered in the file:
the header is row 1) and the column as written in its header, with the cell (C5).

The columns (a header row; English or Chinese names, any order, any case):
    date   日期   2026-07-01 (also 2026/7/1, 2026年7月1日), or a recurring day: daily (每天),
                  mon..sun (周一..周日), weekdays (工作日), weekends (周末), expanded over a date
                  range the caller gives; one kind per file
    start  开始   HH:MM local time (the site's zone)
    end    结束   HH:MM; earlier than start: the next day; 24:00: the midnight ending the day;
                  equal to start: a 24-hour shift (with a warning: it is usually a typo)
    agent  坐席   an agent's name, as in the agents table
    role   角色   agent (坐席) or leader (班长, 值班班长)
    breaks 休息   optional: "12:00-12:30; 15:00-15:15"
    note   备注   optional free text, kept with the shift
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from ivr_agent.domain.roster import (
    Break,
    Role,
    RosterIssue,
    Severity,
    Shift,
    day_start,
    local_epoch,
)
from ivr_agent.domain.roster_cells import (
    MINUTES_PER_DAY,
    Cell,
    CellError,
    Recurring,
    column_letter,
    parse_breaks,
    parse_date,
    parse_role,
    parse_time,
    text,
)

_T = TypeVar("_T")

_HEADERS: Final[Mapping[str, tuple[str, ...]]] = {
    "date": ("date", "日期", "值班日期"),
    "start": ("start", "开始", "开始时间", "上班", "上班时间"),
    "end": ("end", "结束", "结束时间", "下班", "下班时间"),
    "agent": ("agent", "坐席", "座席", "工号"),
    "role": ("role", "角色", "岗位"),
    "breaks": ("breaks", "休息", "休息时间", "break"),
    "note": ("note", "备注", "notes"),
}
REQUIRED: Final = ("date", "start", "end", "agent", "role")
_HEADER_SEARCH_ROWS: Final = 10
_ALIAS: Final = {alias: key for key, names in _HEADERS.items() for alias in names}


@dataclass(frozen=True, slots=True)
class Table:
    """A roster file as read: the header cells and each data row with its row number."""

    file: str  # what messages call it, e.g. "roster.xlsx[Sheet1]"
    header: tuple[Cell, ...]
    rows: tuple[tuple[int, tuple[Cell, ...]], ...]
    header_row: int = 1


def make_table(file: str, rows: Iterable[Sequence[Cell]]) -> Table:
    """Number the rows (from 1) and find the header: the first row naming at least three of
    the columns within the first few, so that a title row above it ("2026年7月值班表") is
    allowed; else the first non-blank row."""
    numbered = [(n, tuple(cells)) for n, cells in enumerate(rows, start=1)]
    blank = [not any(text(c) for c in cells) for _, cells in numbered]
    at = next((i for i, b in enumerate(blank) if not b), None)
    for i, (_, cells) in enumerate(numbered[:_HEADER_SEARCH_ROWS]):
        known = {_ALIAS.get(text(c).lstrip("\ufeff").casefold()) for c in cells} - {None}
        if len(known) >= 3:
            at = i
            break
    if at is None:
        return Table(file, (), ())
    header_row, header = numbered[at]
    return Table(file, header, tuple(numbered[at + 1 :]), header_row)


@dataclass(frozen=True, slots=True)
class RowShift:
    shift: Shift
    row: int


@dataclass(frozen=True, slots=True)
class ParsedRoster:
    """The shifts a file gives, the local days it covers, and the problems found so far.

    An import replaces the stored shifts that start within [start, end): from the first day's
    00:00 to the midnight after the last day.
    """

    file: str
    shifts: tuple[RowShift, ...]
    first_day: dt.date | None
    last_day: dt.date | None
    start: float
    end: float
    issues: tuple[RosterIssue, ...]
    recurring: bool = False
    columns: Mapping[str, tuple[str, str]] | None = None  # key -> (header as written, letter)


@dataclass(frozen=True, slots=True)
class _Columns:
    file: str
    index: Mapping[str, int]
    label: Mapping[str, str]

    def issue(
        self, row: int, key: str, message: str, sev: Severity = Severity.ERROR
    ) -> RosterIssue:
        i = self.index.get(key)
        if i is None:
            return RosterIssue(self.file, message, row, key, severity=sev)
        return RosterIssue(
            self.file, message, row, self.label[key], f"{column_letter(i)}{row}", sev
        )


def parse_table(
    table: Table,
    tz: ZoneInfo,
    *,
    template: tuple[dt.date, dt.date] | None = None,
    source: str = "",
) -> ParsedRoster:
    """Rows -> shifts. Recurring rows become one shift per matching day of `template`
    (first and last day, inclusive). Rows with any error give no shift."""
    issues: list[RosterIssue] = []
    if not table.header:
        issues.append(RosterIssue(table.file, "the file has no rows: not even a header"))
    cols = _columns(table, issues) if table.header else None
    shifts: list[RowShift] = []
    dated: list[dt.date] = []
    recurring_rows: list[int] = []
    if cols is not None:
        if not table.rows:
            issues.append(RosterIssue(table.file, "no rows under the header", table.header_row))
        for row, cells in table.rows:
            got = _parse_row(cols, len(table.header), row, cells, tz, template, source, issues)
            if got is None:
                continue
            day, made = got
            if isinstance(day, Recurring):
                recurring_rows.append(row)
            else:
                dated.append(day)
            shifts.extend(made)
    if cols is not None and dated and recurring_rows:
        message = "a recurring day in a file of calendar dates: use one kind per file"
        issues.extend(cols.issue(row, "date", message) for row in recurring_rows)
        shifts = [s for s in shifts if s.row not in set(recurring_rows)]
    first: dt.date | None = None
    last: dt.date | None = None
    if dated:
        first, last = min(dated), max(dated)
    elif recurring_rows and template is not None:
        first, last = template
    return ParsedRoster(
        file=table.file,
        shifts=tuple(shifts),
        first_day=first,
        last_day=last,
        start=day_start(first, tz) if first else 0.0,
        end=day_start(last + dt.timedelta(days=1), tz) if last else 0.0,
        issues=tuple(issues),
        recurring=bool(recurring_rows) and not dated,
        columns={k: (cols.label[k], column_letter(i)) for k, i in cols.index.items()}
        if cols
        else None,
    )


def _columns(table: Table, issues: list[RosterIssue]) -> _Columns | None:
    index: dict[str, int] = {}
    label: dict[str, str] = {}
    row = table.header_row
    for i, cell in enumerate(table.header):
        name = text(cell).lstrip("\ufeff").strip()
        ref = f"{column_letter(i)}{row}"
        if not name:
            if any(i < len(cells) and text(cells[i]) for _, cells in table.rows):
                message = "values under a column with no header"
                issues.append(RosterIssue(table.file, message, row, column_letter(i), ref))
            continue
        key = _ALIAS.get(name.casefold())
        if key is None:
            known = ", ".join(f"{names[0]} ({names[1]})" for names in _HEADERS.values())
            message = f"unknown column {name!r}: the columns are {known}"
            issues.append(RosterIssue(table.file, message, row, name, ref))
        elif key in index:
            message = (
                f"column {key} appears twice (also {label[key]!r} in {column_letter(index[key])})"
            )
            issues.append(RosterIssue(table.file, message, row, name, ref))
        else:
            index[key] = i
            label[key] = name
    missing = [key for key in REQUIRED if key not in index]
    for key in missing:
        message = f"missing column {key} ({_HEADERS[key][1]})"
        issues.append(RosterIssue(table.file, message, row, key))
    return None if missing else _Columns(table.file, index, label)


def _parse_row(
    cols: _Columns,
    width: int,
    row: int,
    cells: tuple[Cell, ...],
    tz: ZoneInfo,
    template: tuple[dt.date, dt.date] | None,
    source: str,
    issues: list[RosterIssue],
) -> tuple[dt.date | Recurring, list[RowShift]] | None:
    if not any(text(c) for c in cells):
        return None  # blank rows (spreadsheets keep a few at the end) are not data
    before = len(issues)
    for i in range(width, len(cells)):
        if text(cells[i]):
            message = "a value right of the last column"
            issues.append(
                RosterIssue(cols.file, message, row, column_letter(i), f"{column_letter(i)}{row}")
            )

    def cell(key: str) -> Cell:
        i = cols.index.get(key)
        return cells[i] if i is not None and i < len(cells) else None

    def field(key: str, parse: Callable[[Cell], _T]) -> _T | None:
        try:
            return parse(cell(key))
        except CellError as err:
            issues.append(cols.issue(row, key, str(err)))
            return None

    day = field("date", parse_date)
    start = field("start", lambda c: parse_time(c, end=False))
    end = field("end", lambda c: parse_time(c, end=True))
    agent = text(cell("agent"))
    if not agent:
        issues.append(cols.issue(row, "agent", "agent is empty"))
    role = field("role", parse_role)
    breaks = field("breaks", parse_breaks)
    if day is None or start is None or end is None or role is None or breaks is None:
        return None
    if len(issues) > before:
        return None
    if end == start:
        message = "end equals start: read as a 24-hour shift (a whole day is 00:00 to 24:00)"
        issues.append(cols.issue(row, "end", message, Severity.WARNING))
    if isinstance(day, Recurring):
        if template is None:
            issues.append(
                cols.issue(row, "date", f"{day.word} needs a date range (--from/--until)")
            )
            return None
        days = [d for d in _days(*template) if day.matches(d)]
    else:
        days = [day]
    made: list[RowShift] = []
    spec = _Spec(agent, start, end, role, breaks, text(cell("note")), source)
    for d in days:
        shift = _shift(cols, row, d, spec, tz, issues)
        if shift is None:
            return None
        made.append(RowShift(shift, row))
    return day, made


@dataclass(frozen=True, slots=True)
class _Spec:
    agent: str
    start: int  # minutes after midnight
    end: int
    role: Role
    breaks: tuple[tuple[int, int], ...]
    note: str
    source: str


def _shift(
    cols: _Columns, row: int, day: dt.date, spec: _Spec, tz: ZoneInfo, issues: list[RosterIssue]
) -> Shift | None:
    """One row on one day -> a shift; None (with an issue) if a local time does not exist."""

    def instant(minutes: int, key: str) -> float | None:
        d = day + dt.timedelta(days=minutes // MINUTES_PER_DAY)
        hm = minutes % MINUTES_PER_DAY
        ts = local_epoch(d, dt.time(hm // 60, hm % 60), tz)
        if ts is None:
            message = f"{hm // 60:02d}:{hm % 60:02d} on {d} does not exist in {tz.key} (DST)"
            issues.append(cols.issue(row, key, message))
        return ts

    end_min = spec.end if spec.end > spec.start else spec.end + MINUTES_PER_DAY
    spans: list[tuple[int, int]] = []
    for lo, hi in sorted(spec.breaks, key=lambda b: (b[0] - spec.start) % MINUTES_PER_DAY):
        lo_abs = lo if lo >= spec.start else lo + MINUTES_PER_DAY
        hi_abs = lo_abs + (hi - lo) % MINUTES_PER_DAY
        if not spec.start <= lo_abs < hi_abs <= end_min:
            shift = f"{_hm(spec.start)}-{_hm(spec.end)}"
            message = f"break {_hm(lo)}-{_hm(hi)} is not within the shift {shift}"
            issues.append(cols.issue(row, "breaks", message))
            return None
        if spans and lo_abs < spans[-1][1]:
            issues.append(cols.issue(row, "breaks", f"break {_hm(lo)}-{_hm(hi)} overlaps another"))
            return None
        spans.append((lo_abs, hi_abs))
    start, end = instant(spec.start, "start"), instant(end_min, "end")
    breaks = [(instant(lo, "breaks"), instant(hi, "breaks")) for lo, hi in spans]
    if start is None or end is None:
        return None
    made: list[Break] = []
    for b_lo, b_hi in breaks:
        if b_lo is None or b_hi is None:
            return None
        made.append(Break(b_lo, b_hi))
    return Shift(spec.agent, start, end, spec.role, tuple(made), source=spec.source, note=spec.note)


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)
