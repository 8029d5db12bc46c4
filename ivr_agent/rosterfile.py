"""Roster files: read CSV or Excel .xlsx into a `Table`; write CSV (the import format) and
iCalendar .ics (an agent's shifts for a calendar app).

The adapter between files and `ivr_agent.domain.roster_table`: it knows encodings, delimiters
and openpyxl's cell types, and nothing of shifts' rules.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import openpyxl  # type: ignore[import-untyped, unused-ignore]

from ivr_agent.domain.roster import Agent, Role, RosterError, RosterIssue, Shift, to_local
from ivr_agent.domain.roster_cells import Cell
from ivr_agent.domain.roster_table import Table, make_table

CSV_SUFFIXES: Final = frozenset({".csv", ".txt"})
XLSX_SUFFIXES: Final = frozenset({".xlsx", ".xlsm"})
# Excel in a Chinese locale saves "CSV" as GBK; GB18030 is its superset.
_CSV_ENCODINGS: Final = ("utf-8-sig", "gb18030")
CSV_HEADER: Final = ("date", "start", "end", "agent", "role", "breaks", "note")
_ICS_LINE_OCTETS: Final = 75


@dataclass(frozen=True, slots=True)
class RosterFile:
    table: Table
    sha256: str


def read_roster_file(path: Path) -> RosterFile:
    """The file's table and the sha256 of its bytes; RosterError naming the file if unreadable."""
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(where, "file not found") from None
    except OSError as err:
        raise _fail(where, f"cannot read: {err.strerror}") from None
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        table = read_csv(data, where)
    elif suffix in XLSX_SUFFIXES:
        table = read_xlsx(data, where)
    elif suffix == ".xls":
        raise _fail(where, "old Excel .xls is not read: save it as .xlsx or .csv")
    else:
        raise _fail(where, f"unknown file type {suffix or '(none)'!r}: use .csv or .xlsx")
    return RosterFile(table, hashlib.sha256(data).hexdigest())


def read_csv(data: bytes, where: str) -> Table:
    """UTF-8 (with or without BOM) or GB18030; comma, semicolon or tab separated."""
    text = None
    for encoding in _CSV_ENCODINGS:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise _fail(where, "not text in UTF-8 or GB18030: save the file as CSV UTF-8")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as err:
        raise _fail(where, f"not valid CSV: {err}") from None
    return make_table(where, rows)


def read_xlsx(data: bytes, where: str) -> Table:
    """The first worksheet; cached values of formulas; dates and times as openpyxl gives them."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # noqa: BLE001 - openpyxl raises zipfile, XML and its own errors
        raise _fail(where, f"not a readable .xlsx workbook: {err}") from None
    try:
        sheet = book.worksheets[0]
        rows = [tuple(_xlsx_cell(v) for v in row) for row in sheet.iter_rows(values_only=True)]
        title = str(sheet.title)
    finally:
        book.close()
    return make_table(f"{where}[{title}]", rows)


def _xlsx_cell(value: object) -> Cell:
    if value is None or isinstance(value, str | dt.date | dt.time):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.timedelta):
        # A duration format ([h]:mm): as a fraction of a day, like an unformatted time.
        return value.total_seconds() / 86400
    return str(value)


def _fail(where: str, message: str) -> RosterError:
    return RosterError([RosterIssue(where, message)])


def shifts_to_csv(shifts: Iterable[Shift], tz: ZoneInfo) -> str:
    """Shifts in the import format (English headers), by start then agent: re-importable."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for s in sorted(shifts, key=lambda s: (s.start, s.agent)):
        start = to_local(s.start, tz)
        breaks = "; ".join(f"{_hm(b.start, tz)}-{_hm(b.end, tz)}" for b in s.breaks)
        row = (start.date().isoformat(), _hm(s.start, tz), _end_hm(s, tz), s.agent, s.role.value)
        writer.writerow((*row, breaks, s.note))
    return out.getvalue()


def _hm(ts: float, tz: ZoneInfo) -> str:
    return to_local(ts, tz).strftime("%H:%M")


def _end_hm(s: Shift, tz: ZoneInfo) -> str:
    start, end = to_local(s.start, tz), to_local(s.end, tz)
    if end.time() == dt.time(0) and end.date() > start.date():
        return "24:00"
    return end.strftime("%H:%M")


_ICS_TEXT: Final[Mapping[str, Mapping[str, str]]] = {
    "zh-CN": {"agent": "值班", "leader": "值班班长", "breaks": "休息", "calendar": "值班表"},
    "en": {"agent": "On duty", "leader": "Shift leader", "breaks": "Breaks", "calendar": "Duty"},
}


def shifts_to_ics(
    shifts: Sequence[Shift],
    agents: Mapping[str, Agent],
    tz: ZoneInfo,
    *,
    now: float,
    title: str = "",
    language: str = "zh-CN",
) -> str:
    """An iCalendar (RFC 5545) calendar of the shifts: times in UTC, the site's zone named for
    display; a shift's UID stays the same between exports, so a calendar updates in place."""
    words = _ICS_TEXT.get(language, _ICS_TEXT["en"])
    several = len({s.agent for s in shifts}) > 1
    name = title or words["calendar"]
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ivr-agent//duty roster//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(name)}",
        f"X-WR-TIMEZONE:{tz.key}",
    ]
    for s in sorted(shifts, key=lambda s: (s.start, s.agent)):
        agent = agents.get(s.agent)
        who = (agent.display_name if agent and agent.display_name else s.agent) if several else ""
        summary = words["leader" if s.role is Role.LEADER else "agent"]
        description = (
            [
                f"{words['breaks']}: "
                + ", ".join(f"{_hm(b.start, tz)}-{_hm(b.end, tz)}" for b in s.breaks)
            ]
            if s.breaks
            else []
        )
        if s.note:
            description.append(s.note)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{_uid(s)}",
            f"DTSTAMP:{_utc(now)}",
            f"DTSTART:{_utc(s.start)}",
            f"DTEND:{_utc(s.end)}",
            f"SUMMARY:{_escape(f'{summary} {who}'.strip())}",
        ]
        if description:
            lines.append(f"DESCRIPTION:{_escape(chr(10).join(description))}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(f"{folded}\r\n" for line in lines for folded in _fold(line))


def _uid(s: Shift) -> str:
    if s.id is not None:
        return f"shift-{s.id}@ivr-agent"
    digest = hashlib.sha256(f"{s.agent}|{s.start}|{s.end}".encode()).hexdigest()[:16]
    return f"shift-{digest}@ivr-agent"


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> Iterator[str]:
    """RFC 5545 3.1: lines of at most 75 octets; continuation lines start with a space.
    Never split inside a UTF-8 character."""
    chunk = ""
    for ch in line:
        if len((chunk + ch).encode()) > _ICS_LINE_OCTETS:
            yield chunk
            chunk = " "
        chunk += ch
    yield chunk
