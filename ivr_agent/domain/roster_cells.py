"""Roster file cells -> values: dates (or recurring days), HH:MM times, roles, breaks.

Pure code. Cells come as CSV text or as what openpyxl gives for .xlsx (date, datetime, time,
numbers). Each parser returns a value or raises `CellError` with a message for the operator.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from ivr_agent.domain.roster import Role

Cell = str | int | float | dt.date | dt.time | None  # dt.datetime is a dt.date
MINUTES_PER_DAY: Final = 1440

# Excel stores a time of day as a fraction of a day; openpyxl turns a time-formatted value into
# a time, or into a datetime on one of these days when the value is a whole day or more
# (24:00 typed into a time cell is 1.0).
_EXCEL_DAY_ZERO: Final = frozenset({dt.date(1899, 12, 30), dt.date(1899, 12, 31)})
_EXCEL_DAY_ONE: Final = frozenset({dt.date(1899, 12, 31), dt.date(1900, 1, 1)})

_DATE_RE: Final = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_TIME_RE: Final = re.compile(r"(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?")
_BREAK_SPLIT_RE: Final = re.compile(r"[;；,，、\n]+")
_RANGE_SPLIT_RE: Final = re.compile(r"\s*(?:-|–|—|~|～|至|到)\s*")

_WEEKDAYS: Final = (
    ("mon", "monday", "周一", "星期一"),
    ("tue", "tuesday", "周二", "星期二"),
    ("wed", "wednesday", "周三", "星期三"),
    ("thu", "thursday", "周四", "星期四"),
    ("fri", "friday", "周五", "星期五"),
    ("sat", "saturday", "周六", "星期六"),
    ("sun", "sunday", "周日", "星期日", "周天", "星期天"),
)
_RECURRING: Final[dict[str, frozenset[int]]] = {
    **{name: frozenset({i}) for i, names in enumerate(_WEEKDAYS) for name in names},
    **dict.fromkeys(("daily", "每天", "每日"), frozenset(range(7))),
    **dict.fromkeys(("weekdays", "工作日"), frozenset(range(5))),
    **dict.fromkeys(("weekends", "周末"), frozenset({5, 6})),
}
_ROLES: Final[dict[str, Role]] = {
    **dict.fromkeys(("agent", "坐席", "座席", "客服", "话务员"), Role.AGENT),
    **dict.fromkeys(("leader", "shift leader", "班长", "值班班长", "组长"), Role.LEADER),
}


class CellError(ValueError):
    """A cell that does not hold what its column needs; the message says what to write."""


@dataclass(frozen=True, slots=True)
class Recurring:
    """A recurring day (daily, a weekday, weekdays, weekends): expanded over a date range."""

    word: str
    weekdays: frozenset[int]  # date.weekday(): Monday is 0

    def matches(self, day: dt.date) -> bool:
        return day.weekday() in self.weekdays


def text(cell: Cell) -> str:
    """A cell as trimmed text ('' for empty; whole floats without '.0')."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: how spreadsheets name columns."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def parse_date(cell: Cell) -> dt.date | Recurring:
    if isinstance(cell, dt.datetime):
        if cell.time() != dt.time(0):
            raise CellError(f"{cell:%Y-%m-%d %H:%M} has a time of day: write only the date")
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    if isinstance(cell, dt.time):
        raise CellError(f"{cell:%H:%M} is a time, not a date")
    if isinstance(cell, int | float):
        raise CellError(
            f"{text(cell)} is a number, not a date: format the cell as a date or write 2026-07-01"
        )
    value = text(cell)
    if not value:
        raise CellError("date is empty")
    recurring = _RECURRING.get(value.casefold())
    if recurring is not None:
        return Recurring(value, recurring)
    m = _DATE_RE.fullmatch(value)
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError as err:
            raise CellError(f"{value!r} is not a real date ({err})") from None
    hint = " (write daily for every day)" if value == "*" else ""
    raise CellError(
        f"{value!r} is not a date: write 2026-07-01, or daily, mon..sun, weekdays, weekends{hint}"
    )


def parse_time(cell: Cell, *, end: bool) -> int:
    """Minutes after local midnight; 1440 (24:00) only for an end."""
    minutes: int
    if isinstance(cell, dt.datetime):
        if cell.date() in _EXCEL_DAY_ONE and cell.time() == dt.time(0) and end:
            return MINUTES_PER_DAY
        if cell.date() not in _EXCEL_DAY_ZERO:
            raise CellError(f"{cell:%Y-%m-%d %H:%M} is a date and time: write only HH:MM")
        return _minutes(cell.time())
    if isinstance(cell, dt.date):
        raise CellError(f"{cell:%Y-%m-%d} is a date, not a time: write HH:MM")
    if isinstance(cell, dt.time):
        return _minutes(cell)
    if isinstance(cell, int | float):
        # A time cell without a time format: a fraction of a day.
        raw = float(cell) * MINUTES_PER_DAY
        if not 0 <= raw <= MINUTES_PER_DAY or abs(raw - round(raw)) > 1e-6:
            raise CellError(f"{text(cell)} is not a time: write HH:MM")
        minutes = round(raw)
    else:
        value = text(cell)
        if not value:
            raise CellError("time is empty: write HH:MM")
        m = _TIME_RE.fullmatch(value)
        if not m or int(m[1]) > 24 or int(m[2]) > 59 or (m[3] and int(m[3]) != 0):
            raise CellError(f"{value!r} is not a time: write HH:MM (00:00 to 24:00)")
        minutes = int(m[1]) * 60 + int(m[2])
    if minutes > MINUTES_PER_DAY:
        raise CellError(f"{text(cell)} is past 24:00")
    if minutes == MINUTES_PER_DAY and not end:
        raise CellError("24:00 can only end a shift: a start at midnight is 00:00")
    return minutes


def _minutes(t: dt.time) -> int:
    if t.second or t.microsecond:
        raise CellError(f"{t} has seconds: write HH:MM")
    return t.hour * 60 + t.minute


def parse_role(cell: Cell) -> Role:
    value = text(cell)
    if not value:
        raise CellError("role is empty: write agent (坐席) or leader (班长)")
    role = _ROLES.get(value.casefold())
    if role is None:
        raise CellError(f"{value!r} is not a role: write agent (坐席) or leader (班长)")
    return role


def parse_breaks(cell: Cell) -> tuple[tuple[int, int], ...]:
    """'12:00-12:30; 15:00-15:15' -> ((720, 750), (900, 915)); an end past midnight wraps."""
    value = text(cell)
    if isinstance(cell, dt.date | dt.time):
        raise CellError(f"{value!r} is not a list of breaks: write 12:00-12:30; 15:00-15:15")
    spans: list[tuple[int, int]] = []
    for item in _BREAK_SPLIT_RE.split(value):
        if not item:
            continue
        parts = _RANGE_SPLIT_RE.split(item)
        if len(parts) != 2:
            raise CellError(f"break {item!r} is not a span: write 12:00-12:30")
        try:
            lo = parse_time(parts[0], end=False)
            hi = parse_time(parts[1], end=True)
        except CellError as err:
            raise CellError(f"break {item!r}: {err}") from None
        if hi == lo:
            raise CellError(f"break {item!r} is empty")
        spans.append((lo, hi))
    return tuple(spans)
