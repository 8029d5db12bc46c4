"""Queue membership follows the roster: adds at shift start, removes at shift end (after the
current call), pauses for breaks, leaves an agent's own pause alone, reconciles any state."""

from __future__ import annotations

import time

import pytest

from ivr_agent.domain.roster import Agent, Break, Role, Roster, Shift
from ivr_agent.domain.roster_membership import (
    ROSTER_PAUSE_PREFIX,
    Action,
    MembershipChange,
    MemberStatus,
    Why,
    desired_queues,
    plan_membership,
)

H = 3600.0
QUEUES = ("support", "leaders")
AGENTS = {
    "agent1": Agent("agent1", "Local/agent1@lab-agents/n", ("support",)),
    "agent2": Agent("agent2", "Local/agent2@lab-agents/n", ("support",)),
    "agent3": Agent("agent3", "Local/agent3@lab-agents/n", ("support", "sales")),
    "agent4": Agent("agent4", "Local/agent4@lab-agents/n", ("support", "leaders")),
}


def iface(name: str) -> str:
    return AGENTS[name].interface


def member(name: str, queue: str = "support", **kw: bool | str) -> MemberStatus:
    return MemberStatus(queue, iface(name), name, **kw)  # type: ignore[arg-type]


def plan(roster: Roster, now: float, *members: MemberStatus) -> list[tuple[object, ...]]:
    changes = plan_membership(roster, now, members, queues=QUEUES)
    return [_short(c) for c in changes]


def _short(c: MembershipChange) -> tuple[object, ...]:
    extra = ("paused",) if c.paused else ("after_call",) if c.after_call else ()
    return (c.action.value, c.queue, c.member, c.why.value, *extra)


ROSTER = Roster(
    AGENTS,
    (
        Shift("agent1", 8 * H, 17 * H, breaks=(Break(12 * H, 12.5 * H),)),
        Shift("agent2", 13 * H, 22 * H),
        Shift("agent4", 8 * H, 20 * H, Role.LEADER),
        Shift("agent3", 8 * H, 17 * H),
    ),
)


def test_shift_start_adds_the_agent_to_its_queues() -> None:
    assert plan(ROSTER, 8 * H) == [
        ("add", "leaders", "agent4", "on_duty"),
        ("add", "support", "agent1", "on_duty"),
        ("add", "support", "agent3", "on_duty"),  # sales is not managed: left alone
        ("add", "support", "agent4", "on_duty"),
    ]


def test_in_sync_means_nothing_to_do() -> None:
    members = [member("agent1"), member("agent3"), member("agent4"), member("agent4", "leaders")]
    assert plan(ROSTER, 9 * H, *members) == []


def test_shift_end_removes_a_free_agent() -> None:
    members = [
        member("agent1"),
        member("agent2"),
        member("agent3"),
        member("agent4"),
        member("agent4", "leaders"),
    ]
    assert plan(ROSTER, 17 * H, *members) == [
        ("remove", "support", "agent1", "off_duty"),
        ("remove", "support", "agent3", "off_duty"),
    ]


def test_agent_on_a_call_at_shift_end_is_paused_then_removed_after_the_call() -> None:
    members = [
        member("agent1", in_call=True),
        member("agent2"),
        member("agent3"),
        member("agent4"),
        member("agent4", "leaders"),
    ]
    changes = plan_membership(ROSTER, 17 * H, members, queues=QUEUES)
    assert [_short(c) for c in changes] == [
        ("pause", "support", "agent1", "off_duty"),
        ("remove", "support", "agent1", "off_duty", "after_call"),
        ("remove", "support", "agent3", "off_duty"),
    ]
    assert changes[0].pause_reason == "roster:off_duty"
    # Once paused, a later plan during the same call only repeats the deferred removal.
    others = [member("agent2"), member("agent4"), member("agent4", "leaders")]
    paused = member("agent1", in_call=True, paused=True, paused_reason="roster:off_duty")
    assert plan(ROSTER, 17.1 * H, paused, *others) == [
        ("remove", "support", "agent1", "off_duty", "after_call"),
    ]
    # The call ends: now it goes.
    done = member("agent1", paused=True, paused_reason="roster:off_duty")
    assert plan(ROSTER, 17.2 * H, done, *others) == [("remove", "support", "agent1", "off_duty")]


def test_an_agent_paused_by_hand_and_on_a_call_is_not_paused_again() -> None:
    own = member("agent1", in_call=True, paused=True, paused_reason="toilet")
    assert plan(Roster(AGENTS, ()), 0, own) == [
        ("remove", "support", "agent1", "off_duty", "after_call")
    ]


def test_breaks_pause_and_unpause_with_the_roster_reason() -> None:
    roster = Roster(AGENTS, (ROSTER.shifts[0],))
    changes = plan_membership(roster, 12 * H, [member("agent1")], queues=QUEUES)
    assert [_short(c) for c in changes] == [("pause", "support", "agent1", "break")]
    assert changes[0].pause_reason == ROSTER_PAUSE_PREFIX + "break"
    on_break = member("agent1", paused=True, paused_reason="roster:break")
    assert plan(roster, 12.2 * H, on_break) == []
    assert plan(roster, 12.5 * H, on_break) == [("unpause", "support", "agent1", "break_over")]


def test_an_agents_own_pause_is_left_alone_while_on_duty() -> None:
    roster = Roster(AGENTS, (ROSTER.shifts[0],))
    own = member("agent1", paused=True, paused_reason="after-call work")
    assert plan(roster, 9 * H, own) == []
    assert plan(roster, 12 * H, own) == []  # already paused: the break needs nothing
    assert plan(roster, 13 * H, own) == []  # and its end does not unpause the agent's own pause
    bare = member("agent1", paused=True)  # a pause without a reason is the agent's too
    assert plan(roster, 13 * H, bare) == []


def test_an_agent_starting_on_a_break_is_added_paused() -> None:
    roster = Roster(AGENTS, (ROSTER.shifts[0],))
    changes = plan_membership(roster, 12.1 * H, [], queues=QUEUES)
    assert [_short(c) for c in changes] == [("add", "support", "agent1", "break", "paused")]
    assert changes[0].pause_reason == "roster:break"


def test_back_on_duty_while_still_paused_for_shift_end_unpauses() -> None:
    # The shift was extended during the call that was ending it.
    roster = Roster(AGENTS, (Shift("agent1", 8 * H, 19 * H),))
    m = member("agent1", in_call=True, paused=True, paused_reason="roster:off_duty")
    assert plan(roster, 17.5 * H, m) == [("unpause", "support", "agent1", "on_duty")]


def test_leader_queue_follows_the_role_not_the_agents_queues() -> None:
    roster = Roster(
        AGENTS,
        (
            Shift("agent1", 8 * H, 17 * H, Role.LEADER),  # a leader today, not in leaders by config
            Shift("agent4", 8 * H, 17 * H, Role.AGENT),  # agent4 is in leaders by config
        ),
    )
    assert plan(roster, 9 * H, member("agent4", "leaders")) == [
        ("add", "leaders", "agent1", "on_duty"),
        ("add", "support", "agent1", "on_duty"),
        ("add", "support", "agent4", "on_duty"),
        ("remove", "leaders", "agent4", "off_duty"),
    ]


def test_unknown_interfaces_are_removed_and_static_members_paused() -> None:
    stranger = MemberStatus("support", "PJSIP/9999", "visitor")
    static_off = member("agent2", static=True)
    assert plan(
        ROSTER,
        9 * H,
        stranger,
        static_off,
        member("agent1"),
        member("agent3"),
        member("agent4"),
        member("agent4", "leaders"),
    ) == [
        ("pause", "support", "agent2", "off_duty"),
        ("remove", "support", "visitor", "not_an_agent"),
    ]
    # A static member paused off duty: nothing more; on duty again: unpaused.
    static_paused = member("agent2", static=True, paused=True, paused_reason="roster:off_duty")
    assert plan(Roster(AGENTS, ()), 9 * H, static_paused) == []
    assert plan(
        ROSTER,
        14 * H,
        static_paused,
        member("agent1"),
        member("agent3"),
        member("agent4"),
        member("agent4", "leaders"),
    ) == [("unpause", "support", "agent2", "on_duty")]


def test_unmanaged_queues_and_duplicate_reports_are_ignored() -> None:
    members = [member("agent3", "sales"), member("agent1"), member("agent1")]
    roster = Roster(AGENTS, (Shift("agent1", 0, 10 * H),))
    assert plan(roster, H, *members) == []


def test_inactive_agents_are_removed() -> None:
    agents = {**AGENTS, "agent1": Agent("agent1", iface("agent1"), ("support",), active=False)}
    roster = Roster(agents, (Shift("agent1", 0, 10 * H),))
    assert plan(roster, H, member("agent1")) == [("remove", "support", "agent1", "off_duty")]


def test_default_managed_queues_are_the_agents_and_the_leaders() -> None:
    changes = plan_membership(ROSTER, 9 * H, [])
    assert {c.queue for c in changes} == {"support", "leaders", "sales"}


def test_desired_queues() -> None:
    duty = ROSTER.on_duty(9 * H)
    by_name = {d.agent.name: d for d in duty}
    assert desired_queues(by_name["agent4"], QUEUES) == {"support", "leaders"}
    assert desired_queues(by_name["agent3"], QUEUES) == {"support"}
    assert desired_queues(by_name["agent3"], ("support", "sales")) == {"support", "sales"}


@pytest.mark.parametrize("status", ["empty", "full", "half"])
def test_reconcile_200_agents_5_queues_is_fast(status: str) -> None:
    queues = [f"q{i}" for i in range(5)]
    agents = {f"a{i}": Agent(f"a{i}", f"PJSIP/{1000 + i}", tuple(queues)) for i in range(200)}
    # A month of shifts: half the agents on duty now, half off.
    shifts = tuple(
        Shift(
            f"a{i}",
            d * 24 * H + (0 if i % 2 else 12 * H),
            d * 24 * H + (12 * H if i % 2 else 24 * H),
        )
        for i in range(200)
        for d in range(30)
    )
    roster = Roster(agents, shifts)
    now = 15 * 24 * H + 6 * H
    members = {
        "empty": [],
        "full": [MemberStatus(q, a.interface, a.name) for a in agents.values() for q in queues],
        "half": [
            MemberStatus(q, a.interface, a.name, in_call=True)
            for a in list(agents.values())[:100]
            for q in queues
        ],
    }[status]
    started = time.perf_counter()
    changes = plan_membership(roster, now, members, queues=queues)
    elapsed = time.perf_counter() - started
    on_duty = {c.interface for c in changes if c.action is Action.ADD}
    if status == "empty":
        assert len(changes) == 100 * 5
    assert len(on_duty) <= 100
    assert all(c.why in {Why.ON_DUTY, Why.OFF_DUTY} for c in changes)
    assert elapsed < 0.25, elapsed  # typically ~1 ms; generous for a loaded CI machine
