"""The checks before an import: known agents, no agent twice at once, a leader whenever staffed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from ivr_agent.domain.roster import Agent, Role, Severity, Shift, has_errors
from ivr_agent.domain.roster_cells import Cell
from ivr_agent.domain.roster_rules import LeaderGap, check, conflicts
from ivr_agent.domain.roster_table import ParsedRoster, make_table, parse_table

SH = ZoneInfo("Asia/Shanghai")
HEADER = ("日期", "开始", "结束", "坐席", "角色")
AGENTS = {
    **{
        f"agent{i}": Agent(f"agent{i}", f"Local/agent{i}@lab-agents/n", ("support",))
        for i in (1, 2, 3, 4)
    },
    "gone": Agent("gone", "PJSIP/1999", active=False),
}


def at(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH).timestamp()


def parsed(*rows: Sequence[Cell]) -> ParsedRoster:
    return parse_table(make_table("排班.csv", [HEADER, *rows]), SH)


def run(
    *rows: Sequence[Cell], kept: Sequence[Shift] = (), leader_gap: LeaderGap = "error"
) -> list[str]:
    return [str(i) for i in check(parsed(*rows), AGENTS, kept, SH, leader_gap=leader_gap)]


LEADER_DAY = ("2026-07-01", "00:00", "24:00", "agent4", "leader")


def test_a_good_roster_has_no_issues() -> None:
    assert run(LEADER_DAY, ("2026-07-01", "08:00", "17:00", "agent1", "agent")) == []


def test_unknown_and_inactive_agents() -> None:
    issues = run(
        LEADER_DAY,
        ("2026-07-01", "08:00", "17:00", "agent9", "agent"),
        ("2026-07-01", "08:00", "17:00", "gone", "agent"),
    )
    assert issues == [
        "排班.csv, row 3, column 坐席 (D3): unknown agent 'agent9' (add it first: ivr-agent "
        "roster agents add)",
        "排班.csv, row 4, column 坐席 (D4): agent 'gone' is inactive",
    ]


def test_overlapping_shifts_of_one_agent_in_the_file() -> None:
    issues = run(
        LEADER_DAY,
        ("2026-07-01", "08:00", "17:00", "agent1", "agent"),
        ("2026-07-01", "16:00", "20:00", "agent1", "agent"),
        ("2026-07-01", "20:00", "22:00", "agent1", "agent"),  # back to back: fine
    )
    assert issues == [
        "排班.csv, row 4, column 开始 (B4): agent1's shift 2026-07-01 16:00-20:00 overlaps row 3 "
        "(2026-07-01 08:00-17:00)",
    ]


def test_exact_duplicate_rows_overlap() -> None:
    row = ("2026-07-01", "08:00", "17:00", "agent1", "agent")
    assert len(run(LEADER_DAY, row, row)) == 1


def test_overlap_with_a_stored_shift_the_import_keeps() -> None:
    # Yesterday's night shift is outside this file's days: the import keeps it.
    night = Shift("agent1", at("2026-06-30 22:00"), at("2026-07-01 06:00"), id=17)
    issues = run(LEADER_DAY, ("2026-07-01", "05:00", "13:00", "agent1", "agent"), kept=[night])
    assert issues == [
        "排班.csv, row 3, column 开始 (B3): agent1's shift 2026-07-01 05:00-13:00 overlaps stored "
        "shift #17 (2026-06-30 22:00-06:00 (+1d))",
    ]


def test_clashes_among_stored_shifts_are_not_the_files() -> None:
    kept = [
        Shift("agent2", at("2026-07-02 08:00"), at("2026-07-02 17:00"), id=1),
        Shift("agent2", at("2026-07-02 09:00"), at("2026-07-02 18:00"), id=2),
    ]
    assert run(LEADER_DAY, kept=kept) == []


def test_a_time_with_agents_but_no_leader_is_an_error_or_a_warning() -> None:
    rows = (
        ("2026-07-01", "08:00", "12:00", "agent4", "leader"),
        ("2026-07-01", "08:00", "17:00", "agent1", "agent"),
    )
    message = "排班.csv, column 角色: no shift leader 2026-07-01 12:00-17:00 while agent1 on duty"
    assert run(*rows) == [message]
    issues = check(parsed(*rows), AGENTS, [], SH, leader_gap="warning")
    assert [i.severity for i in issues] == [Severity.WARNING]
    assert not has_errors(issues)
    assert str(issues[0]) == message.replace(": no", ": warning: no")


def test_a_leader_from_a_kept_shift_covers_the_file() -> None:
    kept = [Shift("agent4", at("2026-06-30 20:00"), at("2026-07-01 10:00"), Role.LEADER, id=3)]
    assert run(("2026-07-01", "08:00", "10:00", "agent1", "agent"), kept=kept) == []


def test_gap_check_runs_to_the_end_of_the_last_overnight_shift() -> None:
    issues = run(
        ("2026-07-01", "08:00", "24:00", "agent4", "leader"),
        ("2026-07-01", "22:00", "06:00", "agent1", "agent"),
    )
    assert issues == [
        "排班.csv, column 角色: no shift leader 2026-07-02 00:00-06:00 while agent1 on duty"
    ]


def test_a_broken_leader_row_is_reported_once_not_as_a_gap_too() -> None:
    issues = run(
        ("2026-07-01", "00:00", "24:00", "agent4", "leadr"),
        ("2026-07-01", "08:00", "17:00", "agent1", "agent"),
    )
    assert len(issues) == 1
    assert "'leadr' is not a role" in issues[0]


def test_bad_rows_do_not_also_count_as_overlaps() -> None:
    issues = run(LEADER_DAY, ("2026-07-01", "8", "17:00", "agent1", "agent"))
    assert len(issues) == 1
    assert "column 开始 (B3): '8' is not a time" in issues[0]


def test_conflicts_for_changes_name_their_shifts() -> None:
    new = [Shift("agent1", at("2026-07-01 08:00"), at("2026-07-01 17:00"), id=5)]
    kept = [Shift("agent1", at("2026-07-01 16:00"), at("2026-07-01 20:00"), id=6)]
    found = conflicts(
        new, kept, SH, window=(new[0].start, new[0].end), name=lambda i: f"shift #{new[i].id}"
    )
    assert [(c.index, c.key, c.severity) for c in found] == [
        (0, "start", Severity.ERROR),
        (None, "role", Severity.ERROR),
    ]
    assert "overlaps stored shift #6" in found[0].message
