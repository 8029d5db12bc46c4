"""Roster tables -> shifts: columns in English or Chinese, cells as CSV text or Excel values,
overnight shifts, 24:00, breaks, recurring days; every problem located by row, column and cell."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest

from ivr_agent.domain.roster import Break, Role, Severity
from ivr_agent.domain.roster_cells import (
    Cell,
    CellError,
    column_letter,
    parse_breaks,
    parse_date,
    parse_role,
    parse_time,
    text,
)
from ivr_agent.domain.roster_table import ParsedRoster, make_table, parse_table

SH = ZoneInfo("Asia/Shanghai")
HEADER = ("date", "start", "end", "agent", "role")


def at(text: str, tz: ZoneInfo = SH) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz).timestamp()


def parse(
    *rows: Sequence[Cell],
    header: Sequence[Cell] = HEADER,
    tz: ZoneInfo = SH,
    template: tuple[dt.date, dt.date] | None = None,
) -> ParsedRoster:
    return parse_table(make_table("r.csv", [header, *rows]), tz, template=template, source="t")


def excel(text: str) -> dt.datetime:
    """A date or time cell as openpyxl gives it: a naive datetime."""
    return dt.datetime.fromisoformat(text)


def only_issue(parsed: ParsedRoster) -> str:
    assert len(parsed.issues) == 1, parsed.issues
    return str(parsed.issues[0])


def test_a_day_shift() -> None:
    p = parse(("2026-07-01", "08:00", "17:00", "agent1", "agent"))
    assert p.issues == ()
    (rs,) = p.shifts
    assert rs.row == 2
    assert (rs.shift.agent, rs.shift.role, rs.shift.source) == ("agent1", Role.AGENT, "t")
    assert (rs.shift.start, rs.shift.end) == (at("2026-07-01 08:00"), at("2026-07-01 17:00"))
    assert (p.first_day, p.last_day) == (dt.date(2026, 7, 1), dt.date(2026, 7, 1))
    assert (p.start, p.end) == (at("2026-07-01 00:00"), at("2026-07-02 00:00"))
    assert not p.recurring


def test_end_before_start_is_the_next_day_and_24_00_is_midnight() -> None:
    p = parse(
        ("2026-07-01", "22:00", "06:00", "agent1", "leader"),
        ("2026-07-02", "00:00", "24:00", "agent2", "agent"),
    )
    assert p.issues == ()
    night, day = (rs.shift for rs in p.shifts)
    assert (night.start, night.end) == (at("2026-07-01 22:00"), at("2026-07-02 06:00"))
    assert night.role is Role.LEADER
    assert (day.start, day.end) == (at("2026-07-02 00:00"), at("2026-07-03 00:00"))
    assert (p.first_day, p.last_day) == (dt.date(2026, 7, 1), dt.date(2026, 7, 2))


def test_end_equal_to_start_is_24_hours_with_a_warning() -> None:
    p = parse(("2026-07-01", "08:00", "08:00", "agent1", "agent"))
    assert p.shifts[0].shift.end - p.shifts[0].shift.start == 86400
    assert p.issues[0].severity is Severity.WARNING
    assert "row 2, column end (C2): warning: end equals start" in str(p.issues[0])


def test_chinese_headers_any_order_bom_and_case() -> None:
    header = ("\ufeff角色", "坐席", "日期", "开始", "结束", "备注")
    p = parse(("班长", "agent4", "2026/7/1", "8:00", "17:30", "早班"), header=header)
    assert p.issues == ()
    s = p.shifts[0].shift
    assert (s.agent, s.role, s.note) == ("agent4", Role.LEADER, "早班")
    assert s.end == at("2026-07-01 17:30")
    assert p.columns is not None
    assert p.columns["end"] == ("结束", "E")


def test_english_headers_are_case_insensitive() -> None:
    p = parse(
        ("2026-07-01", "08:00", "17:00", "agent1", "Agent"), header=[h.upper() for h in HEADER]
    )
    assert p.issues == ()


def test_title_rows_above_the_header_are_skipped() -> None:
    table = make_table(
        "r.xlsx[Sheet]",
        [("2026年7月值班表",), (), HEADER, ("2026-07-01", "08:00", "17:00", "agent1", "agent")],
    )
    assert table.header_row == 3
    p = parse_table(table, SH)
    assert p.issues == ()
    assert p.shifts[0].row == 4


def test_missing_unknown_and_duplicate_columns() -> None:
    p = parse(
        ("2026-07-01", "08:00", "agent1", "agent", "x", "y"),
        header=("date", "start", "agent", "role", "rank", "Start"),
    )
    messages = [str(i) for i in p.issues]
    assert "r.csv, row 1, column rank (E1): unknown column 'rank'" in messages[0]
    assert "r.csv, row 1, column Start (F1): column start appears twice" in messages[1]
    assert messages[2] == "r.csv, row 1, column end: missing column end (结束)"
    assert p.shifts == ()


def test_values_under_an_empty_header_or_right_of_the_last_column() -> None:
    p = parse(("2026-07-01", "08:00", "17:00", "agent1", "agent", "", "oops"), header=(*HEADER, ""))
    assert [str(i) for i in p.issues] == [
        "r.csv, row 2, column G (G2): a value right of the last column",
    ]
    p = parse(("2026-07-01", "08:00", "17:00", "agent1", "agent", "oops"), header=(*HEADER, ""))
    assert str(p.issues[0]) == "r.csv, row 1, column F (F1): values under a column with no header"


def test_empty_file_and_header_only() -> None:
    assert only_issue(parse_table(make_table("r.csv", []), SH)) == (
        "r.csv: the file has no rows: not even a header"
    )
    assert only_issue(parse()) == "r.csv, row 1: no rows under the header"


def test_blank_rows_are_skipped() -> None:
    p = parse(("", None, "", "", ""), ("2026-07-01", "08:00", "17:00", "agent1", "agent"))
    assert p.issues == ()
    assert p.shifts[0].row == 3


def test_every_bad_cell_of_a_row_is_reported_and_the_row_gives_no_shift() -> None:
    p = parse(
        ("2026-02-30", "25:00", "", "", "boss"),
        ("2026-07-01", "08:00", "17:00", "agent1", "agent"),
    )
    messages = [str(i) for i in p.issues]
    assert messages == [
        "r.csv, row 2, column date (A2): '2026-02-30' is not a real date (day is out of range "
        "for month)",
        "r.csv, row 2, column start (B2): '25:00' is not a time: write HH:MM (00:00 to 24:00)",
        "r.csv, row 2, column end (C2): time is empty: write HH:MM",
        "r.csv, row 2, column agent (D2): agent is empty",
        "r.csv, row 2, column role (E2): 'boss' is not a role: write agent (坐席) or leader (班长)",
    ]
    assert [rs.row for rs in p.shifts] == [3]


def test_star_is_not_a_date_but_the_message_says_what_is() -> None:
    p = parse(("*", "00:00", "24:00", "agent1", "agent"))
    assert "(write daily for every day)" in only_issue(p)


def test_recurring_rows_expand_over_the_template() -> None:
    template = (dt.date(2026, 7, 1), dt.date(2026, 7, 7))  # Wednesday .. Tuesday
    p = parse(
        ("daily", "00:00", "24:00", "agent4", "leader"),
        ("mon", "08:00", "17:00", "agent1", "agent"),
        ("周六", "08:00", "17:00", "agent2", "agent"),
        ("工作日", "18:00", "02:00", "agent3", "agent"),
        template=template,
    )
    assert p.issues == ()
    assert p.recurring
    by_agent: dict[str, list[float]] = {}
    for rs in p.shifts:
        by_agent.setdefault(rs.shift.agent, []).append(rs.shift.start)
    assert len(by_agent["agent4"]) == 7
    assert by_agent["agent1"] == [at("2026-07-06 08:00")]
    assert by_agent["agent2"] == [at("2026-07-04 08:00")]
    assert len(by_agent["agent3"]) == 5
    assert (p.start, p.end) == (at("2026-07-01 00:00"), at("2026-07-08 00:00"))


def test_recurring_rows_need_a_template() -> None:
    p = parse(("daily", "00:00", "24:00", "agent4", "leader"))
    assert only_issue(p) == (
        "r.csv, row 2, column date (A2): daily needs a date range (--from/--until)"
    )
    assert p.first_day is None


def test_one_kind_of_date_per_file() -> None:
    p = parse(
        ("2026-07-01", "08:00", "17:00", "agent1", "agent"),
        ("daily", "00:00", "24:00", "agent4", "leader"),
        template=(dt.date(2026, 7, 1), dt.date(2026, 7, 2)),
    )
    assert "row 3, column date (A3): a recurring day in a file of calendar dates" in only_issue(p)
    assert [rs.row for rs in p.shifts] == [2]


def test_breaks_inside_overnight_shifts() -> None:
    header = (*HEADER, "休息")
    p = parse(
        ("2026-07-01", "22:00", "06:00", "agent1", "agent", "02:00-02:30；23:00-23:15"),
        header=header,
    )
    assert p.issues == ()
    assert p.shifts[0].shift.breaks == (
        Break(at("2026-07-01 23:00"), at("2026-07-01 23:15")),
        Break(at("2026-07-02 02:00"), at("2026-07-02 02:30")),
    )


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        ("07:00-07:30", "break 07:00-07:30 is not within the shift 08:00-17:00"),
        ("16:45-17:15", "break 16:45-17:15 is not within the shift 08:00-17:00"),
        ("12:00-12:30; 12:15-12:45", "break 12:15-12:45 overlaps another"),
        ("12:00", "break '12:00' is not a span: write 12:00-12:30"),
        ("12:00-12:00", "break '12:00-12:00' is empty"),
        ("12:00-1230", "break '12:00-1230': '1230' is not a time"),
    ],
)
def test_bad_breaks(breaks: str, message: str) -> None:
    p = parse(
        ("2026-07-01", "08:00", "17:00", "agent1", "agent", breaks), header=(*HEADER, "breaks")
    )
    assert message in only_issue(p)
    assert "column breaks (F2)" in only_issue(p)


def test_dst_gap_times_are_reported() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = parse(("2026-03-29", "02:30", "10:00", "agent1", "agent"), tz=berlin)
    assert only_issue(p) == (
        "r.csv, row 2, column start (B2): 02:30 on 2026-03-29 does not exist in Europe/Berlin (DST)"
    )


def test_a_night_shift_across_the_dst_change_is_an_hour_shorter() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = parse(("2026-03-28", "22:00", "06:00", "agent1", "agent"), tz=berlin)
    assert p.issues == ()
    assert p.shifts[0].shift.end - p.shifts[0].shift.start == 7 * 3600


# -- cells --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026-07-01", dt.date(2026, 7, 1)),
        ("2026/7/1", dt.date(2026, 7, 1)),
        ("2026.07.01", dt.date(2026, 7, 1)),
        ("2026年7月1日", dt.date(2026, 7, 1)),
        (excel("2026-07-01T00:00"), dt.date(2026, 7, 1)),  # an Excel date cell
        (dt.date(2026, 7, 1), dt.date(2026, 7, 1)),
    ],
)
def test_dates(cell: Cell, expected: dt.date) -> None:
    assert parse_date(cell) == expected


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("", "date is empty"),
        ("01/07/2026", "is not a date"),
        (46204, "46204 is a number, not a date"),
        (dt.time(8), "08:00 is a time, not a date"),
        (excel("2026-07-01T08:00"), "has a time of day"),
    ],
)
def test_bad_dates(cell: Cell, message: str) -> None:
    with pytest.raises(CellError, match=message):
        parse_date(cell)


@pytest.mark.parametrize(
    ("cell", "end", "minutes"),
    [
        ("08:00", False, 480),
        ("8:05", False, 485),
        ("08：00", False, 480),  # a full-width colon from a Chinese input method
        ("17:30:00", True, 1050),
        ("24:00", True, 1440),
        (dt.time(17, 30), True, 1050),
        (0.5, False, 720),  # an Excel time cell without a time format
        (1, True, 1440),
        (excel("1899-12-30T06:00"), False, 360),  # openpyxl: a time past a day's worth
        (excel("1900-01-01T00:00"), True, 1440),  # openpyxl: 24:00 in a time cell
    ],
)
def test_times(cell: Cell, end: bool, minutes: int) -> None:
    assert parse_time(cell, end=end) == minutes


@pytest.mark.parametrize(
    ("cell", "end", "message"),
    [
        ("24:00", False, "24:00 can only end a shift"),
        ("24:30", True, "24:30 is past 24:00"),
        ("12:60", True, "is not a time"),
        ("08:00:30", True, "is not a time"),
        ("noon", True, "is not a time"),
        (1.5, True, "is not a time"),
        (0.0001, True, "is not a time"),
        (dt.time(8, 0, 30), True, "has seconds"),
        (dt.date(2026, 7, 1), True, "is a date, not a time"),
        (excel("2026-07-01T08:00"), True, "is a date and time"),
        (None, True, "time is empty"),
    ],
)
def test_bad_times(cell: Cell, end: bool, message: str) -> None:
    with pytest.raises(CellError, match=message):
        parse_time(cell, end=end)


def test_roles_and_breaks_cells() -> None:
    assert parse_role("值班班长") is Role.LEADER
    assert parse_role(" LEADER ") is Role.LEADER
    assert parse_role("坐席") is Role.AGENT
    with pytest.raises(CellError, match="role is empty"):
        parse_role(None)
    assert parse_breaks(None) == ()
    assert parse_breaks("12:00 - 12:30, 15:00~15:15") == ((720, 750), (900, 915))
    assert parse_breaks("23:50-00:10") == ((1430, 10),)
    with pytest.raises(CellError, match="not a list of breaks"):
        parse_breaks(dt.time(12))


def test_text_and_column_letters() -> None:
    assert text(None) == ""
    assert text(3.0) == "3"
    assert text(" a ") == "a"
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "A",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]


def test_a_break_in_the_dst_gap_is_reported() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = parse(
        ("2026-03-29", "00:00", "08:00", "agent1", "agent", "02:15-02:45"),
        header=(*HEADER, "breaks"),
        tz=berlin,
    )
    assert [str(i).split(": ", 1)[1] for i in p.issues] == [
        "02:15 on 2026-03-29 does not exist in Europe/Berlin (DST)",
        "02:45 on 2026-03-29 does not exist in Europe/Berlin (DST)",
    ]
    assert p.issues[0].cell == "F2"
    assert p.shifts == ()
