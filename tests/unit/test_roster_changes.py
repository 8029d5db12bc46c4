"""Change requests: asked with a reason, decided by someone else, applied only if the roster
still allows it; history is never changed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr_agent.domain.roster import Agent, Break, Role, Severity, Shift
from ivr_agent.domain.roster_changes import (
    ChangeError,
    ChangeKind,
    ChangeStatus,
    Edit,
    ShiftDiff,
    Swap,
    apply,
    check_change,
    decide,
    new_request,
    payload_from_json,
    payload_to_json,
    shift_ids,
    shift_to_json,
)

SH = ZoneInfo("Asia/Shanghai")
AGENTS = {
    **{
        f"agent{i}": Agent(f"agent{i}", f"Local/agent{i}@lab-agents/n", ("support",))
        for i in range(1, 5)
    },
    "gone": Agent("gone", "PJSIP/1999", active=False),
}


def at(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH).timestamp()


EARLY = Shift("agent1", at("2026-07-01 08:00"), at("2026-07-01 16:00"), id=1)
LATE = Shift("agent2", at("2026-07-01 16:00"), at("2026-07-02 00:00"), id=2)
LEAD = Shift("agent4", at("2026-07-01 00:00"), at("2026-07-02 00:00"), Role.LEADER, id=3)
CURRENT = {s.id: s for s in (EARLY, LATE, LEAD) if s.id is not None}
BEFORE = at("2026-06-30 12:00")


def test_a_request_needs_who_and_why_and_a_sensible_payload() -> None:
    req = new_request(" agent1 ", Swap(1, 2), " family ", 10.0)
    assert (req.requested_by, req.reason, req.status, req.kind) == (
        "agent1",
        "family",
        ChangeStatus.PENDING,
        ChangeKind.SWAP,
    )
    for who, payload, reason, message in [
        ("", Swap(1, 2), "x", "who asks"),
        ("agent1", Swap(1, 2), " ", "needs a reason"),
        ("agent1", Swap(1, 1), "x", "two different shifts"),
        ("agent1", Edit(remove=True), "x", "remove needs the shift"),
        ("agent1", Edit(agent="agent1"), "x", "a new shift needs"),
        ("agent1", Edit(shift=1), "x", "changes nothing"),
        ("agent1", Edit(shift=1, remove=True, agent="agent2"), "x", "remove takes no other"),
    ]:
        with pytest.raises(ChangeError, match=message):
            new_request(who, payload, reason, 10.0)


def test_decisions_are_made_once_by_someone_else() -> None:
    req = dataclasses.replace(new_request("agent1", Swap(1, 2), "family", 10.0), id=7)
    with pytest.raises(ChangeError, match="agent1 asked for it, so someone else decides"):
        decide(req, approve=True, by="agent1", at=20.0)
    with pytest.raises(ChangeError, match="who decides"):
        decide(req, approve=True, by=" ", at=20.0)
    approved = decide(req, approve=True, by="lead", at=20.0, note="ok")
    assert (approved.status, approved.decided_by, approved.decided_at, approved.decision_note) == (
        ChangeStatus.APPROVED,
        "lead",
        20.0,
        "ok",
    )
    assert decide(req, approve=False, by="lead", at=20.0).status is ChangeStatus.REJECTED
    with pytest.raises(ChangeError, match="change #7 is already approved"):
        decide(approved, approve=False, by="lead", at=21.0)


def test_swap_exchanges_agents_and_keeps_times() -> None:
    diff = apply(Swap(1, 2), CURRENT, source="change:7")
    assert diff.before == (EARLY, LATE)
    a, b = diff.after
    assert (a.id, a.agent, a.start, a.source) == (1, "agent2", EARLY.start, "change:7")
    assert (b.id, b.agent, b.start) == (2, "agent1", LATE.start)
    assert diff.removed == ()
    assert check_change(diff, AGENTS, list(CURRENT.values()), SH, at=BEFORE, label="c") == ()


def test_swap_of_one_agents_own_shifts_or_missing_ones() -> None:
    own = {**CURRENT, 4: dataclasses.replace(LATE, agent="agent1", id=4)}
    with pytest.raises(ChangeError, match="both agent1's"):
        apply(Swap(1, 4), own, source="")
    with pytest.raises(ChangeError, match="no shift #9"):
        apply(Swap(1, 9), CURRENT, source="")


def test_edit_moves_hands_over_adds_and_removes() -> None:
    moved = apply(Edit(shift=1, end=at("2026-07-01 15:00")), CURRENT, source="edit")
    assert moved.after[0].end == at("2026-07-01 15:00")
    assert moved.after[0].agent == "agent1"
    handed = apply(Edit(shift=1, agent="agent3"), CURRENT, source="edit")
    assert handed.after[0].agent == "agent3"
    new = apply(
        Edit(agent="agent3", start=at("2026-07-01 10:00"), end=at("2026-07-01 14:00")),
        CURRENT,
        source="edit",
    )
    assert new.before == ()
    assert (new.after[0].id, new.after[0].role) == (None, Role.AGENT)
    removed = apply(Edit(shift=2, remove=True), CURRENT, source="edit")
    assert removed.removed == (LATE,)
    for diff in (moved, handed, new, removed):
        issues = check_change(diff, AGENTS, list(CURRENT.values()), SH, at=BEFORE, label="edit")
        assert issues == ()


def test_a_change_that_overlaps_or_leaves_no_leader() -> None:
    others = list(CURRENT.values())
    overlap = apply(Edit(shift=1, end=at("2026-07-01 17:00"), agent="agent2"), CURRENT, source="")
    issues = check_change(overlap, AGENTS, others, SH, at=BEFORE, label="change #7")
    assert [str(i) for i in issues] == [
        "change #7, column start: agent2's shift 2026-07-01 08:00-17:00 overlaps stored shift #2 "
        "(2026-07-01 16:00-24:00)"
    ]
    no_leader = apply(Edit(shift=3, role=Role.AGENT), CURRENT, source="")
    issues = check_change(no_leader, AGENTS, others, SH, at=BEFORE, label="edit")
    assert [i.column for i in issues] == ["role"]
    assert "no shift leader 2026-07-01 00:00-24:00" in issues[0].message
    warn = check_change(no_leader, AGENTS, others, SH, at=BEFORE, label="e", leader_gap="warning")
    assert [i.severity for i in warn] == [Severity.WARNING]


def test_history_and_shapes_and_agents() -> None:
    others = list(CURRENT.values())
    past = apply(Edit(shift=1, agent="agent3"), CURRENT, source="")
    issues = check_change(past, AGENTS, others, SH, at=at("2026-07-01 16:00"), label="c")
    assert "shift #1 (2026-07-01 08:00-16:00) has ended: history" in issues[0].message
    too_long = apply(Edit(shift=1, end=at("2026-07-02 09:00")), CURRENT, source="")
    assert (
        "within 24 hours"
        in check_change(too_long, AGENTS, others, SH, at=BEFORE, label="c")[0].message
    )
    backwards = apply(Edit(shift=1, end=at("2026-07-01 07:00")), CURRENT, source="")
    assert (
        "must end after it starts"
        in check_change(backwards, AGENTS, others, SH, at=BEFORE, label="c")[0].message
    )
    new_past = apply(
        Edit(agent="agent3", start=at("2026-06-01 10:00"), end=at("2026-06-01 12:00")),
        CURRENT,
        source="",
    )
    assert (
        "is in the past"
        in check_change(new_past, AGENTS, others, SH, at=BEFORE, label="c")[0].message
    )
    inactive = apply(Edit(shift=1, agent="gone"), CURRENT, source="")
    assert (
        "'gone' is not an active agent"
        in check_change(inactive, AGENTS, others, SH, at=BEFORE, label="c")[0].message
    )


def test_breaks_must_fit_a_moved_shift() -> None:
    with_break = dataclasses.replace(
        EARLY, breaks=(Break(at("2026-07-01 12:00"), at("2026-07-01 12:30")),)
    )
    current = {**CURRENT, 1: with_break}
    moved = apply(Edit(shift=1, end=at("2026-07-01 11:00")), current, source="")
    issues = check_change(moved, AGENTS, list(current.values()), SH, at=BEFORE, label="c")
    assert issues[0].column == "breaks"
    cleared = apply(Edit(shift=1, end=at("2026-07-01 11:00"), breaks=()), current, source="")
    assert [
        i.column
        for i in check_change(cleared, AGENTS, list(current.values()), SH, at=BEFORE, label="c")
    ] == []


def test_empty_diff_has_nothing_to_check() -> None:
    assert check_change(ShiftDiff((), ()), AGENTS, [], SH, at=0, label="c") == ()


def test_payload_json_round_trip() -> None:
    edit = Edit(
        shift=None,
        agent="agent1",
        start=at("2026-07-01 08:00"),
        end=at("2026-07-01 16:00"),
        role=Role.LEADER,
        breaks=(Break(at("2026-07-01 12:00"), at("2026-07-01 12:30")),),
    )
    data = payload_to_json(edit)
    assert data["start"] == "2026-07-01T00:00:00.000000Z"
    assert payload_from_json(ChangeKind.CHANGE, data) == edit
    removal = Edit(shift=3, remove=True)
    assert payload_from_json(ChangeKind.CHANGE, payload_to_json(removal)) == removal
    assert payload_from_json(ChangeKind.SWAP, payload_to_json(Swap(1, 2))) == Swap(1, 2)
    for bad in ({"shift": "1"}, {"agent": 5}, {"breaks": "x"}, {"breaks": [1]}, {"start": 5}):
        with pytest.raises(ValueError, match=r"^(not a|agent|breaks)"):
            payload_from_json(ChangeKind.CHANGE, bad)
    assert shift_ids(Swap(1, 2)) == (1, 2)
    assert shift_ids(Edit(agent="a")) == ()
    assert shift_to_json(EARLY)["start"] == "2026-07-01T00:00:00.000000Z"
