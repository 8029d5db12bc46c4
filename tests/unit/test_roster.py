"""The roster model: who is on duty, who leads, when that changes; overnight shifts, DST, breaks."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr_agent.domain.roster import (
    Agent,
    Break,
    Role,
    Roster,
    RosterError,
    RosterIssue,
    Severity,
    Shift,
    day_start,
    find_overlaps,
    has_errors,
    leader_gaps,
    local_epoch,
    local_text,
    span_text,
)
from ivr_agent.errors import ConfigError

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
AGENTS = {
    f"agent{i}": Agent(f"agent{i}", f"Local/agent{i}@lab-agents/n", ("support",))
    for i in range(1, 5)
}


def at(text: str, tz: ZoneInfo = SH) -> float:
    """'2026-07-01 08:00' local -> epoch."""
    local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    return local.timestamp()


def shift(agent: str, start: str, end: str, role: Role = Role.AGENT, **kw: object) -> Shift:
    return Shift(agent, at(start), at(end), role, **kw)  # type: ignore[arg-type]


def test_local_times_are_site_times() -> None:
    assert at("2026-07-01 08:00") == dt.datetime(2026, 7, 1, 0, 0, tzinfo=dt.UTC).timestamp()
    assert local_epoch(dt.date(2026, 7, 1), dt.time(8), SH) == at("2026-07-01 08:00")
    assert local_text(at("2026-07-01 08:00"), SH) == "2026-07-01 08:00"
    assert day_start(dt.date(2026, 7, 1), SH) == at("2026-07-01 00:00")


def test_dst_gap_has_no_instant_and_ambiguous_hour_is_the_first() -> None:
    assert local_epoch(dt.date(2026, 3, 29), dt.time(2, 30), BERLIN) is None
    first = local_epoch(dt.date(2026, 10, 25), dt.time(2, 30), BERLIN)
    assert first == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC).timestamp()  # still CEST


def test_day_start_when_dst_skips_midnight() -> None:
    # America/Santiago jumps from 00:00 to 01:00 on 2026-09-06: the day starts at the jump.
    tz = ZoneInfo("America/Santiago")
    start = day_start(dt.date(2026, 9, 6), tz)
    assert dt.datetime.fromtimestamp(start, tz).strftime("%H:%M") == "01:00"


def test_span_text() -> None:
    assert span_text(at("2026-07-01 08:00"), at("2026-07-01 17:00"), SH) == (
        "2026-07-01 08:00-17:00"
    )
    assert span_text(at("2026-07-01 00:00"), at("2026-07-02 00:00"), SH) == (
        "2026-07-01 00:00-24:00"
    )
    assert span_text(at("2026-07-01 22:00"), at("2026-07-02 06:00"), SH) == (
        "2026-07-01 22:00-06:00 (+1d)"
    )


def test_on_duty_is_half_open_and_sorted() -> None:
    roster = Roster(
        AGENTS,
        (
            shift("agent2", "2026-07-01 08:00", "2026-07-01 17:00"),
            shift("agent1", "2026-07-01 09:00", "2026-07-01 18:00"),
        ),
    )
    assert roster.on_duty(at("2026-07-01 07:59")) == ()
    assert [d.agent.name for d in roster.on_duty(at("2026-07-01 08:00"))] == ["agent2"]
    assert [d.agent.name for d in roster.on_duty(at("2026-07-01 12:00"))] == ["agent1", "agent2"]
    assert [d.agent.name for d in roster.on_duty(at("2026-07-01 17:00"))] == ["agent1"]
    assert roster.on_duty(at("2026-07-01 18:00")) == ()


def test_overnight_shift_is_on_duty_after_midnight() -> None:
    night = shift("agent3", "2026-07-01 22:00", "2026-07-02 06:00", Role.LEADER)
    roster = Roster(AGENTS, (night,))
    assert roster.on_duty(at("2026-07-02 05:59"))[0].shift == night
    assert roster.leader_at(at("2026-07-02 00:30")) is not None
    assert roster.on_duty(at("2026-07-02 06:00")) == ()


def test_long_shift_found_among_many_short_ones() -> None:
    # The index looks back by the longest shift: a 24 h shift started yesterday still counts.
    shifts = [shift("agent4", "2026-07-01 00:00", "2026-07-02 00:00", Role.LEADER)]
    shifts += [
        shift("agent1", f"2026-07-01 {h:02d}:00", f"2026-07-01 {h:02d}:30") for h in range(24)
    ]
    roster = Roster(AGENTS, tuple(shifts))
    assert [d.agent.name for d in roster.on_duty(at("2026-07-01 23:45"))] == ["agent4"]


def test_breaks_keep_the_agent_on_duty_but_flagged() -> None:
    s = shift(
        "agent1",
        "2026-07-01 08:00",
        "2026-07-01 17:00",
        breaks=(Break(at("2026-07-01 12:00"), at("2026-07-01 12:30")),),
    )
    roster = Roster(AGENTS, (s,))
    assert roster.on_duty(at("2026-07-01 12:00"))[0].on_break
    assert not roster.on_duty(at("2026-07-01 12:30"))[0].on_break
    assert roster.next_change(at("2026-07-01 08:00")) == at("2026-07-01 12:00")
    assert roster.next_change(at("2026-07-01 12:00")) == at("2026-07-01 12:30")
    assert roster.next_change(at("2026-07-01 12:30")) == at("2026-07-01 17:00")
    assert roster.next_change(at("2026-07-01 17:00")) is None


def test_leader_prefers_one_not_on_a_break() -> None:
    lunch = (Break(at("2026-07-01 12:00"), at("2026-07-01 13:00")),)
    a = shift("agent3", "2026-07-01 08:00", "2026-07-01 17:00", Role.LEADER, breaks=lunch)
    b = shift("agent4", "2026-07-01 10:00", "2026-07-01 19:00", Role.LEADER)
    roster = Roster(AGENTS, (a, b, shift("agent1", "2026-07-01 08:00", "2026-07-01 17:00")))
    assert roster.leader_at(at("2026-07-01 11:00")).agent.name == "agent3"  # type: ignore[union-attr]
    assert roster.leader_at(at("2026-07-01 12:15")).agent.name == "agent4"  # type: ignore[union-attr]
    assert [d.agent.name for d in roster.leaders_at(at("2026-07-01 12:15"))] == ["agent4", "agent3"]
    assert roster.leader_at(at("2026-07-01 20:00")) is None


def test_leader_on_a_break_is_still_the_leader_when_alone() -> None:
    lunch = (Break(at("2026-07-01 12:00"), at("2026-07-01 13:00")),)
    a = shift("agent4", "2026-07-01 08:00", "2026-07-01 17:00", Role.LEADER, breaks=lunch)
    leader = Roster(AGENTS, (a,)).leader_at(at("2026-07-01 12:30"))
    assert leader is not None
    assert leader.on_break


def test_next_change_skips_seams_of_back_to_back_days() -> None:
    shifts = tuple(
        shift(name, f"2026-07-0{d} 00:00", f"2026-07-0{d + 1} 00:00", role)
        for d in (1, 2, 3)
        for name, role in (("agent1", Role.AGENT), ("agent4", Role.LEADER))
    )
    roster = Roster(AGENTS, shifts)
    assert roster.next_change(at("2026-06-30 12:00")) == at("2026-07-01 00:00")
    assert roster.next_change(at("2026-07-01 00:00")) == at("2026-07-04 00:00")


def test_next_change_counts_a_role_change_at_a_seam() -> None:
    roster = Roster(
        AGENTS,
        (
            shift("agent4", "2026-07-01 08:00", "2026-07-01 12:00"),
            shift("agent4", "2026-07-01 12:00", "2026-07-01 17:00", Role.LEADER),
        ),
    )
    assert roster.next_change(at("2026-07-01 09:00")) == at("2026-07-01 12:00")


def test_inactive_and_unknown_agents_are_never_on_duty() -> None:
    agents = {**AGENTS, "agent2": Agent("agent2", "PJSIP/1002", active=False)}
    roster = Roster(
        agents,
        (
            shift("agent2", "2026-07-01 08:00", "2026-07-01 17:00"),
            shift("ghost", "2026-07-01 08:00", "2026-07-01 17:00"),
        ),
    )
    assert roster.on_duty(at("2026-07-01 09:00")) == ()
    assert roster.next_change(at("2026-07-01 07:00")) is None
    assert len(roster.shifts_of("agent2")) == 1


def test_shift_overlaps_is_half_open() -> None:
    a = shift("agent1", "2026-07-01 08:00", "2026-07-01 12:00")
    assert a.overlaps(shift("agent1", "2026-07-01 11:00", "2026-07-01 13:00"))
    assert not a.overlaps(shift("agent1", "2026-07-01 12:00", "2026-07-01 13:00"))


def test_find_overlaps_reports_each_clash_once() -> None:
    shifts = [
        shift("agent1", "2026-07-01 08:00", "2026-07-01 20:00"),  # 0
        shift("agent1", "2026-07-01 10:00", "2026-07-01 12:00"),  # 1: inside 0
        shift("agent1", "2026-07-01 13:00", "2026-07-01 14:00"),  # 2: inside 0
        shift("agent1", "2026-07-01 20:00", "2026-07-01 22:00"),  # 3: back to back: fine
        shift("agent2", "2026-07-01 10:00", "2026-07-01 12:00"),  # 4: another agent
    ]
    assert find_overlaps(shifts) == [(0, 1), (0, 2)]
    assert find_overlaps([]) == []


def test_leader_gaps_only_while_someone_is_on_duty() -> None:
    shifts = [
        shift("agent1", "2026-07-01 08:00", "2026-07-01 20:00"),
        shift("agent4", "2026-07-01 09:00", "2026-07-01 12:00", Role.LEADER),
        shift("agent3", "2026-07-01 12:00", "2026-07-01 18:00", Role.LEADER),
    ]
    gaps = leader_gaps(shifts, at("2026-07-01 00:00"), at("2026-07-02 00:00"))
    assert gaps == [
        (at("2026-07-01 08:00"), at("2026-07-01 09:00")),
        (at("2026-07-01 18:00"), at("2026-07-01 20:00")),
    ]
    # Clipped to the window asked about.
    assert leader_gaps(shifts, at("2026-07-01 08:30"), at("2026-07-01 19:00")) == [
        (at("2026-07-01 08:30"), at("2026-07-01 09:00")),
        (at("2026-07-01 18:00"), at("2026-07-01 19:00")),
    ]
    assert leader_gaps([], 0, 1e10) == []


def test_leader_gaps_merge_across_agent_handovers() -> None:
    shifts = [
        shift("agent1", "2026-07-01 08:00", "2026-07-01 12:00"),
        shift("agent2", "2026-07-01 12:00", "2026-07-01 16:00"),
    ]
    assert leader_gaps(shifts, 0, 1e10) == [(at("2026-07-01 08:00"), at("2026-07-01 16:00"))]


def test_issue_text_names_file_row_and_column() -> None:
    issue = RosterIssue("roster.csv", "25:00 is not a time", 5, "结束", "C5")
    assert str(issue) == "roster.csv, row 5, column 结束 (C5): 25:00 is not a time"
    warn = RosterIssue("roster.csv", "no leader", column="role", severity=Severity.WARNING)
    assert str(warn) == "roster.csv, column role: warning: no leader"
    assert not has_errors([warn])
    assert has_errors([warn, issue])


def test_roster_error_is_a_config_error_listing_errors_first() -> None:
    warn = RosterIssue("r.csv", "no leader", severity=Severity.WARNING)
    errors = [RosterIssue("r.csv", f"bad {i}", i) for i in (2, 3)]
    err = RosterError([warn, *errors])
    assert isinstance(err, ConfigError)
    assert err.issues[0] == errors[0]
    assert err.errors == tuple(errors)
    assert str(err) == "r.csv, row 2: bad 2 (and 1 more errors)"
    assert str(RosterError([])) == "invalid roster"


@pytest.mark.parametrize("hour", [0, 6, 23])
def test_every_hour_of_a_24h_day_roster_has_a_leader(hour: int) -> None:
    roster = Roster(
        AGENTS,
        (
            shift("agent1", "2026-07-01 00:00", "2026-07-02 00:00"),
            shift("agent4", "2026-07-01 00:00", "2026-07-02 00:00", Role.LEADER),
        ),
    )
    t = at(f"2026-07-01 {hour:02d}:00")
    assert roster.leader_at(t) is not None
    assert {d.agent.name for d in roster.on_duty(t)} == {"agent1", "agent4"}
