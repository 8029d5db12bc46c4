"""Roster files: CSV as Excel saves it (BOM, GBK, semicolons), .xlsx via openpyxl, CSV and
iCalendar export; the lab's roster file."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from ivr_agent import rosterfile
from ivr_agent.domain.roster import Agent, Break, Role, RosterError, Shift
from ivr_agent.domain.roster_rules import check
from ivr_agent.domain.roster_table import parse_table

SH = ZoneInfo("Asia/Shanghai")
LAB = Path(__file__).resolve().parents[2] / "dialplan" / "lab" / "roster.csv"
LAB_AGENTS = {
    f"agent{i}": Agent(f"agent{i}", f"Local/agent{i}@lab-agents/n", ("support",))
    for i in range(1, 5)
}


def at(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH).timestamp()


def test_csv_utf8_with_bom_and_chinese_headers(tmp_path: Path) -> None:
    path = tmp_path / "排班.csv"
    body = "日期,开始,结束,坐席,角色\r\n2026-07-01,08:00,17:00,agent1,坐席\r\n"
    path.write_bytes(body.encode("utf-8-sig"))
    got = rosterfile.read_roster_file(path)
    assert got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert got.table.file == str(path)
    assert got.table.header == ("日期", "开始", "结束", "坐席", "角色")  # the BOM is gone
    parsed = parse_table(got.table, SH)
    assert parsed.issues == ()
    assert parsed.shifts[0].shift.start == at("2026-07-01 08:00")


def test_csv_saved_by_excel_in_a_chinese_locale(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    body = "日期;开始;结束;坐席;角色\r\n2026/7/1;8:00;17:00;agent1;班长\r\n"
    path.write_bytes(body.encode("gbk"))
    parsed = parse_table(rosterfile.read_roster_file(path).table, SH)
    assert parsed.issues == ()
    assert parsed.shifts[0].shift.role is Role.LEADER


def test_csv_that_is_not_text_or_not_csv(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xff\xfe\x00\x81\xff")
    with pytest.raises(RosterError, match=r"r\.csv: not text in UTF-8 or GB18030"):
        rosterfile.read_roster_file(path)
    path.write_text('date,start\n"2026-07-01,08:00\n')
    with pytest.raises(RosterError, match="not valid CSV"):
        rosterfile.read_roster_file(path)


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="file not found"):
        rosterfile.read_roster_file(tmp_path / "nope.csv")
    with pytest.raises(RosterError, match="cannot read"):
        rosterfile.read_roster_file(tmp_path)  # a folder
    for name, message in (("r.xls", "save it as .xlsx"), ("r.ods", "use .csv or .xlsx")):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(RosterError, match=message):
            rosterfile.read_roster_file(tmp_path / name)
    (tmp_path / "r.xlsx").write_bytes(b"not a zip")
    with pytest.raises(RosterError, match=r"r\.xlsx: not a readable \.xlsx workbook"):
        rosterfile.read_roster_file(tmp_path / "r.xlsx")


def test_xlsx_with_real_date_and_time_cells(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "七月"
    sheet.append(["2026年7月值班表"])
    sheet.append(["日期", "开始", "结束", "坐席", "角色", "休息"])
    sheet.append(
        [dt.date(2026, 7, 1), dt.time(8), dt.time(17, 30), "agent1", "坐席", "12:00-12:30"]
    )
    sheet.append(["2026-07-01", "22:00", 1.0, "agent2", "agent", None])
    sheet["C4"].number_format = "hh:mm"  # 24:00 typed into a time cell is the number 1.0
    sheet.append([dt.date(2026, 7, 1), dt.time(0), dt.timedelta(days=1), "agent4", "班长", None])
    sheet.append([dt.date(2026, 7, 1), "8:00", "9:00", True, "agent", None])
    path = tmp_path / "roster.xlsx"
    book.save(path)
    table = rosterfile.read_roster_file(path).table
    assert table.file == f"{path}[七月]"
    assert table.header_row == 2
    parsed = parse_table(table, SH)
    assert [str(i) for i in parsed.issues] == []
    a1, a2, a4, odd = (rs.shift for rs in parsed.shifts)
    assert (a1.start, a1.end) == (at("2026-07-01 08:00"), at("2026-07-01 17:30"))
    assert a1.breaks == (Break(at("2026-07-01 12:00"), at("2026-07-01 12:30")),)
    assert (a2.start, a2.end) == (at("2026-07-01 22:00"), at("2026-07-02 00:00"))
    assert (a4.start, a4.end) == (at("2026-07-01 00:00"), at("2026-07-02 00:00"))
    assert odd.agent == "True"  # then an unknown agent for the checks, reported on its row
    issues = check(parsed, LAB_AGENTS, [], SH)
    assert any("row 6, column 坐席 (D6): unknown agent 'True'" in str(i) for i in issues)


def test_xlsx_errors_name_the_sheet_and_cell(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["date", "start", "end", "agent", "role"])
    book.active.append([46204, "08:00", "17:00", "agent1", "agent"])
    path = tmp_path / "r.xlsx"
    book.save(path)
    parsed = parse_table(rosterfile.read_roster_file(path).table, SH)
    assert [str(i) for i in parsed.issues] == [
        f"{path}[Sheet], row 2, column date (A2): 46204 is a number, not a date: format the "
        "cell as a date or write 2026-07-01"
    ]


def test_csv_export_round_trips() -> None:
    shifts = [
        Shift("agent2", at("2026-07-01 22:00"), at("2026-07-02 06:00"), note="夜班, 含交接"),
        Shift(
            "agent1",
            at("2026-07-01 08:00"),
            at("2026-07-01 17:00"),
            breaks=(Break(at("2026-07-01 12:00"), at("2026-07-01 12:30")),),
        ),
        Shift("agent4", at("2026-07-01 00:00"), at("2026-07-02 00:00"), Role.LEADER),
    ]
    text = rosterfile.shifts_to_csv(shifts, SH)
    assert text.splitlines() == [
        "date,start,end,agent,role,breaks,note",
        "2026-07-01,00:00,24:00,agent4,leader,,",
        "2026-07-01,08:00,17:00,agent1,agent,12:00-12:30,",
        '2026-07-01,22:00,06:00,agent2,agent,,"夜班, 含交接"',
    ]
    table = rosterfile.read_csv(text.encode("utf-8-sig"), "export.csv")
    parsed = parse_table(table, SH)
    assert parsed.issues == ()
    key = lambda s: (s.start, s.agent)  # noqa: E731
    again = sorted((rs.shift for rs in parsed.shifts), key=key)
    assert [(s.agent, s.start, s.end, s.role, s.breaks, s.note) for s in again] == [
        (s.agent, s.start, s.end, s.role, s.breaks, s.note) for s in sorted(shifts, key=key)
    ]


def test_ics_export_is_rfc5545() -> None:
    agents = {"agent1": Agent("agent1", "PJSIP/1001", display_name="王小明")}
    shifts = [
        Shift(
            "agent1",
            at("2026-07-01 08:00"),
            at("2026-07-01 17:00"),
            breaks=(Break(at("2026-07-01 12:00"), at("2026-07-01 12:30")),),
            id=42,
            note="备注; 一, 二\n三" + "很长" * 40,
        ),
        Shift("agent1", at("2026-07-02 22:00"), at("2026-07-03 06:00"), Role.LEADER),
    ]
    text = rosterfile.shifts_to_ics(
        shifts, agents, SH, now=at("2026-06-30 09:00"), title="客服热线 agent1"
    )
    assert text.endswith("END:VCALENDAR\r\n")
    lines = text.split("\r\n")[:-1]
    assert all(len(line.encode()) <= 75 for line in lines)
    assert lines[:7] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ivr-agent//duty roster//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:客服热线 agent1",
        "X-WR-TIMEZONE:Asia/Shanghai",
    ]
    unfolded = text.replace("\r\n ", "").split("\r\n")
    assert "UID:shift-42@ivr-agent" in unfolded
    assert "DTSTAMP:20260630T010000Z" in unfolded
    assert "DTSTART:20260701T000000Z" in unfolded
    assert "DTEND:20260701T090000Z" in unfolded
    assert "SUMMARY:值班" in unfolded  # one agent's calendar: no name in the title
    assert "SUMMARY:值班班长" in unfolded
    description = next(x for x in unfolded if x.startswith("DESCRIPTION:"))
    assert description.startswith("DESCRIPTION:休息: 12:00-12:30\\n备注\\; 一\\, 二\\n三很长")
    assert unfolded.count("BEGIN:VEVENT") == 2
    uids = [x for x in unfolded if x.startswith("UID:")]
    assert uids[1].startswith("UID:shift-")
    assert uids[1] != uids[0]
    # Same shift, same UID: a calendar app updates the event instead of adding another.
    assert text == rosterfile.shifts_to_ics(
        shifts, agents, SH, now=at("2026-06-30 09:00"), title="客服热线 agent1"
    )


def test_ics_for_several_agents_names_them_and_speaks_english() -> None:
    agents = {"agent1": Agent("agent1", "PJSIP/1001", display_name="Wang")}
    shifts = [
        Shift("agent1", at("2026-07-01 08:00"), at("2026-07-01 17:00")),
        Shift("agent2", at("2026-07-01 08:00"), at("2026-07-01 17:00"), Role.LEADER),
    ]
    text = rosterfile.shifts_to_ics(shifts, agents, SH, now=0, language="en")
    assert "SUMMARY:On duty Wang\r\n" in text
    assert "SUMMARY:Shift leader agent2\r\n" in text
    assert "X-WR-CALNAME:Duty\r\n" in text


def test_the_lab_roster_is_every_day_all_day_with_agent4_leading() -> None:
    table = rosterfile.read_roster_file(LAB).table
    parsed = parse_table(table, SH, template=(dt.date(2026, 7, 1), dt.date(2026, 7, 28)))
    assert parsed.issues == ()
    assert parsed.recurring
    assert len(parsed.shifts) == 4 * 28
    assert check(parsed, LAB_AGENTS, [], SH) == ()
    leaders = {rs.shift.agent for rs in parsed.shifts if rs.shift.role is Role.LEADER}
    assert leaders == {"agent4"}
