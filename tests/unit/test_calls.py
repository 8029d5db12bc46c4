"""calls.transition (table-driven), dispositions, transcripts through CallBook, resync, restarts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import replace

import pytest

from ivr_agent.domain import events as ev
from ivr_agent.domain.callbook import (
    CallBook,
    CallChange,
    call_from_snapshot,
    close_stale,
    snapshot_state,
)
from ivr_agent.domain.calls import (
    _ALLOWED,
    Call,
    CallState,
    Disposition,
    disposition_of,
    end_call,
    new_call,
    transition,
    with_changes,
)
from ivr_agent.errors import InvalidTransition
from tests.unit.transcript import load

S = CallState
CID = "1795633717.0"  # caller leg = Linkedid
C2 = "1795633717.1"  # the caller's ;2 half
A = "1795633717.2"  # agent ;1
A2 = "1795633717.3"  # agent ;2
OTHER = "1795633717.9"  # a channel of another call
IFACE = "Local/agent1@lab-agents/n"


# ------------------------------------------------------------------ event builders


def newchannel(uid: str = CID, at: float = 0.0, state: int = 0, **kw: str) -> ev.Newchannel:
    return ev.Newchannel(at=at, uniqueid=uid, linkedid=CID, channel_state=state, **kw)  # type: ignore[arg-type]


def newstate(uid: str = CID, at: float = 1.0, state: int = 6) -> ev.Newstate:
    return ev.Newstate(at=at, uniqueid=uid, linkedid=CID, channel_state=state)


def join(at: float = 2.0, queue: str = "support") -> ev.QueueCallerJoin:
    return ev.QueueCallerJoin(at=at, uniqueid=CID, linkedid=CID, queue=queue, position=1)


def leave(at: float = 3.0) -> ev.QueueCallerLeave:
    return ev.QueueCallerLeave(at=at, uniqueid=CID, linkedid=CID, queue="support")


def abandon(at: float = 3.0, hold: int = 4) -> ev.QueueCallerAbandon:
    return ev.QueueCallerAbandon(at=at, uniqueid=CID, linkedid=CID, queue="support", hold_time=hold)


def called(at: float = 2.5, dest: str = A) -> ev.AgentCalled:
    return ev.AgentCalled(
        at=at,
        uniqueid=CID,
        linkedid=CID,
        dest_uniqueid=dest,
        dest_linkedid=CID,
        queue="support",
        interface=IFACE,
        member_name="agent1",
    )


def no_answer(at: float = 17.5) -> ev.AgentRingNoAnswer:
    return ev.AgentRingNoAnswer(
        at=at,
        uniqueid=CID,
        linkedid=CID,
        dest_uniqueid=A,
        dest_linkedid=CID,
        queue="support",
        interface=IFACE,
        member_name="agent1",
    )


def connect(at: float = 4.0, hold: int = 2) -> ev.AgentConnect:
    return ev.AgentConnect(
        at=at,
        uniqueid=CID,
        linkedid=CID,
        dest_uniqueid=A,
        dest_linkedid=CID,
        hold_time=hold,
        ring_time=1,
        queue="support",
        interface=IFACE,
        member_name="agent1",
    )


def complete(at: float = 20.0, talk: int = 16, hold: int = 2) -> ev.AgentComplete:
    return ev.AgentComplete(
        at=at,
        uniqueid=CID,
        linkedid=CID,
        dest_uniqueid=A,
        dest_linkedid=CID,
        hold_time=hold,
        talk_time=talk,
        reason="agent",
        queue="support",
        interface=IFACE,
        member_name="agent1",
    )


def bridge_leave(uid: str = CID, at: float = 19.0) -> ev.BridgeLeave:
    return ev.BridgeLeave(at=at, uniqueid=uid, linkedid=CID, bridge_uniqueid="b1")


def hold(at: float = 10.0, uid: str = A) -> ev.Hold:
    return ev.Hold(at=at, uniqueid=uid, linkedid=CID)


def unhold(at: float = 15.0, uid: str = A) -> ev.Unhold:
    return ev.Unhold(at=at, uniqueid=uid, linkedid=CID)


def hangup(
    uid: str = CID, at: float = 30.0, cause: int = 16, txt: str = "Normal Clearing"
) -> ev.Hangup:
    return ev.Hangup(at=at, uniqueid=uid, linkedid=CID, cause=cause, cause_txt=txt)


def talking(uid: str = CID, at: float = 5.0) -> ev.ChannelTalkingStart:
    return ev.ChannelTalkingStart(at=at, uniqueid=uid, linkedid=CID)


def mixmonitor(uid: str, at: float = 1.5) -> ev.MixMonitorStart:
    return ev.MixMonitorStart(at=at, uniqueid=uid, linkedid=CID)


def dial_end(at: float = 1.0, state: int = 6) -> ev.DialEnd:
    # An Originate's own dial: no calling channel, the caller leg is the Dest.
    return ev.DialEnd(
        at=at,
        uniqueid="",
        linkedid="",
        dest_uniqueid=CID,
        dest_linkedid=CID,
        dest_channel_state=state,
        dest_caller_number="13912345678",
        dest_caller_name="李四",
        dest_exten="4008200100",
        dest_vars=ev.ChanVars(caller_kind="talking"),
        dial_status="ANSWER",
    )


def call_in(
    state: CallState, live: frozenset[str] = frozenset({CID, C2, A}), /, **kw: object
) -> Call:
    """A call in `state` with the milestones that state implies."""
    fields: dict[str, object] = {"answered_at": 1.0}
    if state in (S.QUEUED, S.AGENT_RINGING, S.CONNECTED, S.ON_HOLD):
        fields["queued_at"] = 2.0
        fields["queue"] = "support"
    if state is S.AGENT_RINGING:
        fields["agents_ringing"] = 1
    if state in (S.CONNECTED, S.ON_HOLD):
        fields["agent_connected_at"] = 4.0
        fields["agent"] = "agent1"
    if state is S.ON_HOLD:
        fields["held_at"] = 10.0
    if state is S.RINGING:
        fields["answered_at"] = None
    fields.update(kw)
    return replace(
        Call(
            call_id=CID,
            state=state,
            started_at=0.0,
            updated_at=0.0,
            channels=live | {CID},
            live_channels=live,
        ),
        **fields,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------ the transition table

LAST = frozenset({CID})  # only the caller leg still up: its Hangup ends the call

LEGAL: list[tuple[CallState, Callable[[], ev.Event], CallState, frozenset[str]]] = [
    (S.RINGING, newstate, S.IVR, frozenset({CID, C2})),
    (S.RINGING, dial_end, S.IVR, frozenset({CID, C2})),
    (S.RINGING, join, S.QUEUED, frozenset({CID, C2})),
    (S.RINGING, hangup, S.ENDED, LAST),
    (S.IVR, join, S.QUEUED, frozenset({CID, C2})),
    (S.IVR, hangup, S.ENDED, LAST),
    (S.QUEUED, called, S.AGENT_RINGING, frozenset({CID, C2})),
    (S.QUEUED, connect, S.CONNECTED, frozenset({CID, C2, A})),
    (S.QUEUED, leave, S.IVR, frozenset({CID, C2})),
    (S.QUEUED, abandon, S.IVR, frozenset({CID, C2})),
    (S.QUEUED, hangup, S.ENDED, LAST),
    (S.AGENT_RINGING, no_answer, S.QUEUED, frozenset({CID, C2, A})),
    (S.AGENT_RINGING, connect, S.CONNECTED, frozenset({CID, C2, A})),
    (S.AGENT_RINGING, abandon, S.IVR, frozenset({CID, C2, A})),
    (S.AGENT_RINGING, hangup, S.ENDED, LAST),
    (S.CONNECTED, hold, S.ON_HOLD, frozenset({CID, C2, A})),
    (S.CONNECTED, bridge_leave, S.IVR, frozenset({CID, C2, A})),
    (S.CONNECTED, complete, S.IVR, frozenset({CID, C2, A})),
    (S.CONNECTED, hangup, S.ENDED, LAST),
    (S.ON_HOLD, unhold, S.CONNECTED, frozenset({CID, C2, A})),
    (S.ON_HOLD, bridge_leave, S.IVR, frozenset({CID, C2, A})),
    (S.ON_HOLD, complete, S.IVR, frozenset({CID, C2, A})),
    (S.ON_HOLD, hangup, S.ENDED, LAST),
]


@pytest.mark.parametrize(
    ("state", "make", "expected", "live"),
    LEGAL,
    ids=[f"{s.value}-{m.__name__}->{t.value}" for s, m, t, _ in LEGAL],
)
def test_legal_transition(
    state: CallState, make: Callable[[], ev.Event], expected: CallState, live: frozenset[str]
) -> None:
    event = make()
    new = transition(call_in(state, live), event)
    assert new.state is expected
    assert new.updated_at == event.at


def test_every_allowed_pair_is_tested() -> None:
    allowed = {(s, t) for s, targets in _ALLOWED.items() for t in targets}
    assert {(s, t) for s, _, t, _ in LEGAL} == allowed
    assert not _ALLOWED[S.ENDED]
    assert set(_ALLOWED) == set(S)


ILLEGAL: list[tuple[CallState, Callable[[], ev.Event]]] = [
    (S.RINGING, called),
    (S.RINGING, connect),
    (S.IVR, called),
    (S.IVR, connect),
    (S.CONNECTED, join),
    (S.CONNECTED, called),
    (S.ON_HOLD, join),
    (S.ON_HOLD, called),
    (S.ENDED, newstate),
    (S.ENDED, hangup),
    (S.ENDED, join),
    (S.ENDED, connect),
    (S.ENDED, talking),
    (S.ENDED, lambda: ev.Cdr(at=40.0, uniqueid=CID)),
]


@pytest.mark.parametrize(
    ("state", "make"), ILLEGAL, ids=[f"{s.value}-{m.__name__}" for s, m in ILLEGAL]
)
def test_illegal_transition(state: CallState, make: Callable[[], ev.Event]) -> None:
    call = call_in(state)
    event = make()
    with pytest.raises(InvalidTransition) as info:
        transition(call, event)
    assert info.value.call_id == CID
    assert info.value.state is state
    assert info.value.event is event
    assert type(event).__name__ in str(info.value)


SAME_STATE: list[tuple[CallState, Callable[[], ev.Event], dict[str, object]]] = [
    (S.QUEUED, hold, {"held_at": None}),
    (S.CONNECTED, unhold, {"on_hold_time": 0.0}),
    (S.QUEUED, join, {"queued_at": 2.0, "queue": "support"}),
    (S.QUEUED, newstate, {"answered_at": 1.0}),
    (S.AGENT_RINGING, called, {"agents_ringing": 2}),
    (S.AGENT_RINGING, leave, {"agents_ringing": 1}),
    (S.QUEUED, no_answer, {"agents_ringing": 0}),
    (S.IVR, leave, {}),
    (S.IVR, abandon, {"hold_time": 4.0}),
    (S.IVR, complete, {"talk_time": 16.0, "hold_time": 2.0}),
    (S.IVR, bridge_leave, {}),
    (S.CONNECTED, lambda: bridge_leave(A), {}),
    (S.CONNECTED, lambda: hangup(A), {"live_channels": frozenset({CID, C2})}),
    (S.CONNECTED, talking, {"talk_events": 1, "last_talk_at": 5.0}),
    (S.CONNECTED, lambda: talking(A), {"talk_events": 0, "last_talk_at": None}),
    (S.IVR, lambda: mixmonitor(CID), {"recording_started_at": 1.5}),
    (S.IVR, lambda: mixmonitor(C2), {"recording_started_at": None}),
    (S.IVR, lambda: ev.Cdr(at=1.5, uniqueid=C2), {"updated_at": 1.5}),
    (S.IVR, lambda: ev.ChannelTalkingStop(at=6.0, uniqueid=CID, linkedid=CID, duration_ms=900), {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "make", "fields"),
    SAME_STATE,
    ids=[f"{s.value}-{i}" for i, (s, _, _) in enumerate(SAME_STATE)],
)
def test_events_that_only_update_fields(
    state: CallState, make: Callable[[], ev.Event], fields: dict[str, object]
) -> None:
    new = transition(call_in(state), make())
    assert new.state is state
    for name, value in fields.items():
        assert getattr(new, name) == value, name


def test_ringall_busy_agent_keeps_the_other_ringing() -> None:
    call = call_in(S.QUEUED)
    call = transition(call, called(dest=A))
    call = transition(call, called(dest=OTHER))
    call = transition(call, no_answer())  # one busy: the other still rings
    assert (call.state, call.agents_ringing) == (S.AGENT_RINGING, 1)
    call = transition(call, leave())  # precedes the other agent's AgentConnect
    assert call.state is S.AGENT_RINGING
    call = transition(call, connect())
    assert (call.state, call.agents_ringing, call.agent) == (S.CONNECTED, 0, "agent1")


def test_agent_falls_back_to_the_interface() -> None:
    event = replace(connect(), member_name="")
    assert transition(call_in(S.AGENT_RINGING), event).agent == "Local/agent1@lab-agents/n"


def test_agent_connect_records_queue_agent_and_times() -> None:
    new = transition(call_in(S.AGENT_RINGING), connect(at=4.5, hold=3))
    assert (new.agent, new.agent_interface, new.agent_connected_at, new.hold_time) == (
        "agent1",
        "Local/agent1@lab-agents/n",
        4.5,
        3.0,
    )


def test_talk_time_is_measured_to_the_end_of_the_connection() -> None:
    # At a hangup AgentComplete and the caller's BridgeLeave come in either order (both seen on
    # Asterisk 22.10): the same figure either way, from the events' Timestamps.
    by_complete = transition(call_in(S.CONNECTED), complete(at=19.5, talk=15))
    by_leave = transition(call_in(S.CONNECTED), bridge_leave(CID, at=19.5))
    assert by_complete.talk_time == by_leave.talk_time == 15.5
    assert transition(by_complete, bridge_leave(CID, at=19.6)).talk_time == 15.5
    # Redirected: AgentComplete comes at the final hangup, its TalkTime counting the prompt
    assert transition(by_leave, complete(at=30.0, talk=26)).talk_time == 15.5
    held = transition(call_in(S.ON_HOLD), bridge_leave(CID, at=12.0))
    assert (held.talk_time, held.on_hold_time) == (8.0, 2.0)


def test_talk_time_falls_back_to_asterisk_when_the_connect_was_not_seen() -> None:
    unknown = call_in(S.CONNECTED, agent_connected_at=None)
    assert transition(unknown, complete(talk=16)).talk_time == 16.0
    assert transition(unknown, bridge_leave(CID)).talk_time is None


def test_originate_response_gives_a_local_caller_leg_its_dialed_number() -> None:
    def response(uid: str = CID, exten: str = "95000") -> ev.OriginateResponse:
        return ev.OriginateResponse(
            at=1.1, action_id="o1", response="Success", uniqueid=uid, exten=exten
        )

    call = new_call(newchannel(exten="s"))  # a Local `;1` starts at `s` of the caller context
    new = transition(call, response())
    assert (new.dialed_number, new.state, new.updated_at) == ("95000", S.RINGING, 1.1)
    assert transition(call, response(exten="s")).dialed_number == ""
    assert transition(call, response(uid=C2)).dialed_number == ""
    known = replace(call, dialed_number="4008200100")
    assert transition(known, response()).dialed_number == "4008200100"


def test_agent_complete_keeps_the_connect_hold_time() -> None:
    new = transition(call_in(S.CONNECTED, hold_time=2.0), complete(hold=9))
    assert (new.hold_time, new.talk_time) == (2.0, 16.0)


# ------------------------------------------------------------------ caller leg fields


def test_new_call_ringing() -> None:
    call = new_call(newchannel(exten="s", caller_number="13800138000", caller_name="张三"))
    assert (call.call_id, call.state, call.started_at, call.answered_at) == (
        CID,
        S.RINGING,
        0.0,
        None,
    )
    assert (call.caller_number, call.caller_name, call.dialed_number) == ("13800138000", "张三", "")
    assert call.channels == call.live_channels == frozenset({CID})
    assert call.disposition is Disposition.UNKNOWN


def test_new_call_already_up() -> None:
    event = newchannel(at=3.0, state=6, exten="4008200100")
    event = replace(event, vars=ev.ChanVars(caller_kind="sipp", ivr_outcome="x"))
    call = new_call(event)
    assert (call.state, call.answered_at, call.dialed_number) == (S.IVR, 3.0, "4008200100")
    assert (call.caller_kind, call.ivr_outcome) == ("sipp", "x")


def test_caller_leg_updates_caller_id_dialed_number_and_vars() -> None:
    call = new_call(newchannel(exten="s"))
    cid = ev.NewCallerid(
        at=0.5, uniqueid=CID, linkedid=CID, caller_number="139", caller_name="李四", exten="s"
    )
    call = transition(call, cid)
    assert (call.caller_number, call.caller_name, call.dialed_number) == ("139", "李四", "")
    up = ev.Newstate(
        at=1.0,
        uniqueid=CID,
        linkedid=CID,
        channel_state=6,
        exten="4008200100",
        vars=ev.ChanVars(caller_kind="talking"),
    )
    call = transition(call, up)
    assert (call.state, call.answered_at, call.dialed_number, call.caller_kind) == (
        S.IVR,
        1.0,
        "4008200100",
        "talking",
    )
    # later snapshots: empty caller ID does not erase; a new exten is not the dialed number
    later = ev.Hangup(
        at=9.0,
        uniqueid=CID,
        linkedid=CID,
        exten="h",
        vars=ev.ChanVars(call_id=CID, ivr_outcome="silent_line"),
    )
    call = transition(replace(call, live_channels=frozenset({CID, C2})), later)
    assert (call.caller_number, call.dialed_number, call.ivr_outcome, call.caller_kind) == (
        "139",
        "4008200100",
        "silent_line",
        "talking",
    )
    again = ev.Newstate(at=9.5, uniqueid=CID, linkedid=CID, exten="12345", channel_state=6)
    assert transition(replace(call, live_channels=frozenset({C2})), again).dialed_number == (
        "4008200100"
    )


def test_agent_leg_snapshot_does_not_touch_caller_fields() -> None:
    call = new_call(newchannel(caller_number="139"))
    event = ev.Newstate(at=1.0, uniqueid=A, linkedid=CID, channel_state=6, caller_number="agent1")
    call = transition(call, event)
    assert (call.state, call.caller_number, call.answered_at) == (S.RINGING, "139", None)
    assert call.live_channels == frozenset({CID, A})


def test_caller_leg_as_dest_of_an_originate_dial() -> None:
    call = transition(new_call(newchannel()), dial_end(at=1.2))
    assert (call.state, call.answered_at) == (S.IVR, 1.2)
    assert (call.caller_number, call.caller_name, call.dialed_number, call.caller_kind) == (
        "13912345678",
        "李四",
        "4008200100",
        "talking",
    )
    down = transition(new_call(newchannel()), dial_end(state=0))
    assert (down.state, down.answered_at) == (S.RINGING, None)


def test_channels_of_other_calls_are_not_adopted() -> None:
    call = call_in(S.QUEUED, frozenset({CID}))
    foreign = ev.AgentCalled(
        at=2.5,
        uniqueid=CID,
        linkedid=CID,
        dest_uniqueid=OTHER,
        dest_linkedid="x.0",
        queue="support",
        interface=IFACE,
        member_name="agent1",
    )
    assert transition(call, foreign).channels == frozenset({CID})
    stray = ev.Newstate(at=3.0, uniqueid=OTHER, linkedid="x.0")
    assert transition(call, stray).channels == frozenset({CID})
    dest_known = transition(call, called(dest=CID))
    assert dest_known.channels == frozenset({CID})


def test_a_first_seen_hangup_is_not_live() -> None:
    call = transition(call_in(S.IVR, frozenset({CID})), hangup(OTHER.replace(".9", ".7")))
    assert call.state is S.IVR
    assert call.channels == frozenset({CID, "1795633717.7"})
    assert call.live_channels == frozenset({CID})


def test_a_hung_up_agent_leg_in_a_late_agent_complete_stays_dead() -> None:
    call = call_in(S.IVR, frozenset({CID}))
    call = replace(call, channels=frozenset({CID, A}))
    call = transition(call, complete(at=14.0))
    assert call.live_channels == frozenset({CID})
    assert transition(call, hangup(CID, at=14.1)).state is S.ENDED


def test_hangup_cause_is_the_caller_legs() -> None:
    call = transition(call_in(S.CONNECTED), hangup(CID, cause=0, txt="Unknown"))
    call = transition(call, hangup(C2, cause=16))
    call = transition(call, hangup(A, cause=16))
    assert (call.state, call.hangup_cause, call.hangup_cause_txt) == (S.ENDED, 0, "Unknown")


def test_hangup_cause_falls_back_to_the_last_channel() -> None:
    call = call_in(S.CONNECTED, frozenset({A}))
    call = transition(call, hangup(A, cause=26, txt="Answered elsewhere"))
    assert (call.hangup_cause, call.hangup_cause_txt) == (26, "Answered elsewhere")


# ------------------------------------------------------------------ hold, talk, end


def test_hold_time_adds_up() -> None:
    call = call_in(S.CONNECTED)
    call = transition(call, hold(at=10.0))
    assert (call.state, call.held_at) == (S.ON_HOLD, 10.0)
    call = transition(call, unhold(at=15.0))
    assert (call.state, call.held_at, call.on_hold_time) == (S.CONNECTED, None, 5.0)
    call = transition(call, hold(at=16.0))
    call = transition(call, bridge_leave(CID, at=18.0))  # left the bridge while held
    assert (call.state, call.held_at, call.on_hold_time) == (S.IVR, None, 7.0)


def test_hangup_while_on_hold_closes_the_hold() -> None:
    call = transition(call_in(S.ON_HOLD, LAST), hangup(at=30.0))
    assert (call.state, call.held_at, call.on_hold_time) == (S.ENDED, None, 20.0)


def test_end_call_computes_talk_time_without_agent_complete() -> None:
    ended = end_call(call_in(S.CONNECTED), 34.0)
    assert (ended.state, ended.ended_at, ended.talk_time, ended.live_channels) == (
        S.ENDED,
        34.0,
        30.0,
        frozenset(),
    )
    assert ended.disposition is Disposition.ANSWERED
    assert not ended.reconciled
    assert end_call(call_in(S.CONNECTED), 3.0).talk_time == 0.0  # clock skew: never negative


def test_end_call_keeps_agent_complete_talk_time_and_marks_reconciled() -> None:
    ended = end_call(call_in(S.IVR, talk_time=16.0, agent_connected_at=4.0), 40.0, reconciled=True)
    assert (ended.talk_time, ended.reconciled) == (16.0, True)
    assert end_call(call_in(S.QUEUED), 9.0).talk_time is None


DISPOSITIONS: list[tuple[dict[str, object], Disposition]] = [
    ({"ivr_outcome": "silent_line", "agent_connected_at": 4.0}, Disposition.SILENT_LINE),
    ({"ivr_outcome": "SILENT_LINE"}, Disposition.SILENT_LINE),
    ({"ivr_outcome": "after_hours"}, Disposition.AFTER_HOURS),
    ({"ivr_outcome": "blacklisted", "answered_at": None}, Disposition.BLACKLISTED),
    ({"agent_connected_at": 4.0}, Disposition.ANSWERED),
    ({"agent_connected_at": 4.0, "ivr_outcome": "queue_continue"}, Disposition.ANSWERED),
    ({"queued_at": 2.0, "ivr_outcome": "queue_timeout"}, Disposition.NO_AGENT),
    ({"queued_at": 2.0, "ivr_outcome": "queue_joinempty"}, Disposition.NO_AGENT),
    ({"queued_at": 2.0}, Disposition.ABANDONED),
    ({"answered_at": 1.0, "ivr_outcome": "menu_done"}, Disposition.ABANDONED),
    ({"answered_at": 1.0, "hotline": True}, Disposition.ABANDONED),
    ({"answered_at": 1.0}, Disposition.NOT_HOTLINE),  # never in the hotline's dialplan
    ({"answered_at": 1.0, "reconciled": True}, Disposition.ABANDONED),  # partly unseen
    ({"answered_at": None, "queued_at": 2.0}, Disposition.ABANDONED),
    ({"answered_at": None, "reconciled": True}, Disposition.UNKNOWN),
    ({"answered_at": None}, Disposition.FAILED),
]


@pytest.mark.parametrize(("fields", "expected"), DISPOSITIONS)
def test_disposition_rules(fields: dict[str, object], expected: Disposition) -> None:
    assert disposition_of(call_in(S.IVR, **fields)) is expected


# ------------------------------------------------------------------ transcripts


def play(
    name: str, book: CallBook | None = None
) -> tuple[CallBook, list[CallChange], list[ev.Event]]:
    """Feed a transcript through parse() and CallBook.apply(); return the changes and the
    modelled events that the book ignored."""
    book = CallBook() if book is None else book
    changes: list[CallChange] = []
    ignored: list[ev.Event] = []
    for f in load(name):
        event = ev.parse(f)
        if event is None:
            continue
        change = book.apply(event)
        if change is None:
            ignored.append(event)
        else:
            changes.append(change)
    return book, changes, ignored


def ended(changes: list[CallChange]) -> dict[str, Call]:
    return {c.call.call_id: c.call for c in changes if c.ended}


def states(changes: list[CallChange], call_id: str) -> list[str]:
    return [c.state_to.value for c in changes if c.call.call_id == call_id and c.state_changed]


def test_transcript_answered_talking() -> None:
    book, changes, ignored = play("answered_talking")
    assert len(book) == 0
    assert states(changes, CID) == [
        "ringing",
        "ivr",
        "queued",
        "agent_ringing",
        "connected",
        "ivr",
        "ended",
    ]
    (call,) = ended(changes).values()
    assert call.call_id == CID
    # IVR_OUTCOME=queue_continue (synthetic: real Asterisk leaves it '', see
    # test_real_transcripts.py) would lose to the answered call anyway
    assert call.disposition is Disposition.ANSWERED
    assert call.ivr_outcome == "queue_continue"
    assert (call.caller_number, call.caller_name, call.dialed_number) == (
        "13912345678",
        "",
        "4008200100",
    )
    assert (call.queue, call.agent, call.agent_interface) == (
        "support",
        "agent1",
        "Local/agent1@lab-agents/n",
    )
    # talk: measured from AgentConnect to AgentComplete (its TalkTime says 8)
    assert (call.hold_time, call.talk_time) == (1.0, pytest.approx(8.0093))
    assert call.started_at == pytest.approx(1795633717.010)
    assert call.answered_at == pytest.approx(1795633717.0119)
    assert call.queued_at == pytest.approx(1795633717.015)
    assert call.agent_connected_at == pytest.approx(1795633718.5209)
    assert call.ended_at == pytest.approx(1795633726.5322)
    assert call.recording_started_at == pytest.approx(1795633717.013)
    assert call.talk_events == 1
    assert call.last_talk_at == pytest.approx(1795633717.058)
    assert (call.hangup_cause, call.hangup_cause_txt) == (16, "Normal Clearing")
    assert call.channels == frozenset({CID, C2, A, A2})
    assert (call.caller_kind, call.reconciled) == ("talking", False)
    # after the end: the three Cdr events find no call
    assert [type(e).__name__ for e in ignored] == ["Cdr", "Cdr", "Cdr"]
    first = changes[0]
    assert (first.state_from, first.state_to, first.ended) == (None, S.RINGING, False)
    assert isinstance(first.event, ev.Newchannel)


def test_transcript_abandoned_in_queue() -> None:
    _, changes, ignored = play("abandoned_in_queue")
    call = ended(changes)["1795633760.12"]
    assert states(changes, call.call_id) == [
        "ringing", "ivr", "queued", "agent_ringing", "queued", "ivr", "ended",
    ]  # fmt: skip
    assert call.disposition is Disposition.ABANDONED
    assert (call.agent, call.agent_connected_at, call.talk_time, call.hold_time) == (
        "",
        None,
        None,
        19.0,
    )
    assert call.channels == frozenset(
        {"1795633760.12", "1795633760.13", "1795633760.14", "1795633760.15"}
    )
    assert [type(e).__name__ for e in ignored] == ["Cdr"]


def test_transcript_silent_line_while_queued() -> None:
    _, changes, _ = play("silent_line_queued")
    call = ended(changes)["1795633795.30"]
    assert call.disposition is Disposition.SILENT_LINE
    assert (call.ivr_outcome, call.caller_kind, call.talk_events) == ("silent_line", "silent", 0)
    assert call.hold_time == 3.0
    assert call.ended_at == pytest.approx(1795633808.567)


def test_transcript_silent_line_while_bridged() -> None:
    _, changes, ignored = play("silent_line_bridged")
    call = ended(changes)["1795633830.40"]
    assert states(changes, call.call_id)[-3:] == ["connected", "ivr", "ended"]
    assert call.disposition is Disposition.SILENT_LINE  # wins over the answered call
    # talk ends at the Redirect (BridgeLeave of C), not with the late AgentComplete (TalkTime 14)
    assert (call.agent, call.talk_time) == ("agent4", pytest.approx(3.0001))
    assert not ignored  # the late AgentComplete names the dead agent leg but still belongs


def test_transcript_chinese_caller_over_pjsip() -> None:
    _, changes, _ = play("pjsip_zhangsan")
    call = ended(changes)["1795633870.50"]
    assert (call.caller_name, call.caller_number, call.dialed_number) == (
        "张三",
        "13800138000",
        "4008200100",
    )
    assert call.disposition is Disposition.ANSWERED
    assert (call.agent, call.hold_time, call.talk_time) == ("agent2", 2.0, pytest.approx(10.0051))
    assert call.on_hold_time == pytest.approx(5.001)
    assert (call.hangup_cause, call.hangup_cause_txt) == (0, "Unknown")
    assert "on_hold" in states(changes, call.call_id)
    assert call.channels == frozenset({"1795633870.50", "1795633870.51", "1795633870.52"})


def test_transcript_originate_failed() -> None:
    _, changes, ignored = play("originate_failed")
    call = ended(changes)["1795633910.60"]
    assert states(changes, call.call_id) == ["ringing", "ended"]
    assert call.disposition is Disposition.FAILED
    assert (call.answered_at, call.hangup_cause, call.hangup_cause_txt) == (None, 17, "User busy")
    # the OriginateResponse (Uniqueid <null>) and the Cdr come after the end
    assert [type(e).__name__ for e in ignored] == ["OriginateResponse", "Cdr"]


def test_transcript_interleaved_calls_in_the_same_second() -> None:
    book, changes, _ = play("interleaved")
    calls = ended(changes)
    assert set(calls) == {"1795633950.70", "1795633950.72"}
    one, two = calls["1795633950.70"], calls["1795633950.72"]
    assert (one.disposition, one.agent, one.talk_time, one.caller_number) == (
        Disposition.ANSWERED,
        "agent1",
        pytest.approx(4.6991),  # measured; the synthetic AgentComplete says TalkTime 5
        "13100000005",
    )
    assert one.channels == frozenset(
        {"1795633950.70", "1795633950.71", "1795633950.74", "1795633950.75"}
    )
    assert (two.disposition, two.agent, two.hold_time, two.caller_number) == (
        Disposition.ABANDONED,
        "",
        4.0,
        "13200000006",
    )
    assert two.channels == frozenset({"1795633950.72", "1795633950.73"})
    assert len(book) == 0


def test_transcript_replayed_into_the_same_book_is_a_new_call_each_time() -> None:
    book, first, _ = play("answered_talking")
    _, second, _ = play("answered_talking", book)
    assert len(ended(first)) == len(ended(second)) == 1


# ------------------------------------------------------------------ CallBook.apply


def started_book(*events: ev.Event) -> CallBook:
    book = CallBook()
    assert book.apply(newchannel()) is not None
    for event in events:
        book.apply(event)
    return book


def test_book_ignores_what_is_not_a_call_start() -> None:
    book = CallBook()
    assert book.apply(newstate()) is None  # unknown Linkedid
    assert book.apply(newchannel(uid=C2)) is None  # not the caller leg
    assert book.apply(ev.Cdr(at=1.0, uniqueid=CID)) is None
    assert book.apply(ev.FullyBooted(at=1.0)) is None
    assert book.apply(ev.Shutdown(at=1.0)) is None
    assert book.apply(ev.QueueMember(at=1.0, queue="support", name="agent1")) is None
    assert len(book) == 0


def test_book_starts_and_tracks_a_call() -> None:
    book = CallBook()
    change = book.apply(newchannel())
    assert change is not None
    assert (change.state_from, change.state_to, change.ended, change.state_changed) == (
        None,
        S.RINGING,
        False,
        True,
    )
    assert CID in book
    assert "nope" not in book
    assert len(book) == 1
    assert [c.call_id for c in book] == [CID]
    change = book.apply(newchannel(uid=C2))
    assert change is not None
    assert not change.state_changed
    got = book.get(CID)
    assert got is not None
    assert got.live_channels == frozenset({CID, C2})
    assert book.get("nope") is None


def test_book_routes_events_without_linkedid_by_uniqueid() -> None:
    book = started_book(newchannel(uid=C2))
    for event in (
        ev.Cdr(at=2.0, uniqueid=C2),
        ev.Cdr(at=2.1, uniqueid="x", linkedid=CID),
        ev.OriginateResponse(at=2.2, action_id="o1", response="Success", uniqueid=CID),
        ev.UserEvent(at=2.3, name="IvrMenu", uniqueid=C2),
        ev.UserEvent(at=2.4, name="IvrMenu", linkedid=CID),
        dial_end(at=2.5),
    ):
        change = book.apply(event)
        assert change is not None, event
        assert change.call.updated_at == event.at
    assert book.apply(ev.UserEvent(at=3.0, name="Ping")) is None
    assert book.apply(ev.OriginateResponse(at=3.0, action_id="o2", response="Failure")) is None


def test_an_originate_response_ahead_of_its_newchannel_still_gives_the_dialed_number() -> None:
    """Asterisk sends OriginateResponse from the originating thread: on a busy PBX it can come
    before the Local caller leg's own Newchannel (a clean CI run lost the dialed number so)."""
    book = CallBook()
    early = ev.OriginateResponse(
        at=0.1, action_id="o1", response="Success", uniqueid=CID, exten="95000"
    )
    assert book.apply(early) is None  # no call yet: kept for the Newchannel
    change = book.apply(newchannel(at=0.2))
    assert change is not None
    assert change.call.dialed_number == "95000"
    # Only once: a later call of another channel does not pick it up again.
    other = CallBook()
    assert other.apply(ev.OriginateResponse(at=0.1, action_id="o2", response="Failure")) is None
    started = other.apply(newchannel(at=0.2))
    assert started is not None
    assert started.call.dialed_number == ""


def test_book_ignores_core_show_channel_events() -> None:
    book = started_book()
    assert book.apply(ev.CoreShowChannel(at=1.0, uniqueid=CID, linkedid=CID)) is None


def test_book_drops_an_ended_call_and_its_late_events() -> None:
    book = started_book(newchannel(uid=C2))
    assert book.apply(hangup(C2, at=5.0)) is not None
    change = book.apply(hangup(CID, at=5.1))
    assert change is not None
    assert (change.ended, change.state_from, change.state_to) == (True, S.RINGING, S.ENDED)
    assert CID not in book
    assert book.apply(hangup(CID, at=5.2)) is None
    assert book.apply(ev.Cdr(at=5.3, uniqueid=C2)) is None
    assert book.apply(complete(at=5.4)) is None


def test_book_keeps_the_call_when_a_transition_is_illegal() -> None:
    book = started_book()
    before = book.get(CID)
    with pytest.raises(InvalidTransition):
        book.apply(connect())
    assert book.get(CID) is before


def test_book_forgets_old_ended_calls() -> None:
    book = CallBook(ended_memory=2)
    for n in range(3):
        lid = f"1795633717.{n * 10}"
        book.apply(ev.Newchannel(at=0.0, uniqueid=lid, linkedid=lid))
        book.apply(ev.Hangup(at=1.0, uniqueid=lid, linkedid=lid))
    # the oldest ended call fell out of memory: a snapshot naming it makes a new call
    snaps = [snap(uid, linkedid=uid) for uid in ("1795633717.0", "1795633717.20")]
    added = book.resync(snaps, now=50.0)
    assert [c.call.call_id for c in added] == ["1795633717.0"]


# ------------------------------------------------------------------ resync


def snap(
    uid: str = CID,
    *,
    linkedid: str = CID,
    state: int = 6,
    app: str = "Queue",
    data: str = "support,r,,,300",
    bridge: str = "",
    duration: int = 30,
    **kw: object,
) -> ev.CoreShowChannel:
    return ev.CoreShowChannel(
        at=100.0,
        uniqueid=uid,
        linkedid=linkedid,
        channel_state=state,
        application=app,
        application_data=data,
        bridge_id=bridge,
        duration=duration,
        **kw,  # type: ignore[arg-type]
    )


def connected_book() -> CallBook:
    book = started_book(
        newchannel(uid=C2), newstate(), join(), newchannel(uid=A, at=2.4), called(), connect()
    )
    book.apply(ev.IvrAgentDisconnected(at=60.0, reason="eof"))
    book.apply(ev.IvrAgentConnected(at=70.0))
    return book


def test_resync_closes_a_call_asterisk_no_longer_has() -> None:
    book = connected_book()
    (change,) = book.resync([], now=100.0)
    call = change.call
    assert (change.ended, change.state_from, change.event) == (True, S.CONNECTED, None)
    assert (call.state, call.reconciled, call.disposition) == (S.ENDED, True, Disposition.ANSWERED)
    assert call.ended_at == 60.0  # it was alive when the link dropped
    assert call.talk_time == 56.0
    assert CID not in book
    assert book.resync([], now=101.0) == []


def test_resync_without_a_known_drop_ends_the_call_now() -> None:
    book = started_book(newstate(), join())
    (change,) = book.resync([], now=100.0)  # no marker: every channel is unconfirmed
    assert change.call.ended_at == 100.0
    assert change.call.disposition is Disposition.ABANDONED


def test_resync_keeps_calls_heard_from_since_the_reconnect() -> None:
    book = connected_book()
    book.apply(talking(at=71.0))  # the caller leg spoke after the reconnect
    (change,) = book.resync([], now=100.0)  # so the snapshot (taken earlier) lacks nothing
    call = change.call
    assert (change.ended, call.state, call.reconciled) == (False, S.CONNECTED, True)
    assert call.live_channels == frozenset({CID})  # C2 and A hung up unseen: pruned
    assert book.get(CID) is call


def test_resync_counts_a_dest_channel_as_heard_from() -> None:
    book = connected_book()
    book.apply(dial_end(at=75.0))  # names the caller leg as Dest
    book.apply(complete(at=76.0))  # names the agent leg as Dest
    (change,) = book.resync([], now=100.0)
    assert change.call.live_channels == frozenset({CID, A})  # only C2 was lost


def test_resync_prunes_lost_channels_and_adds_new_ones() -> None:
    book = connected_book()
    live = [snap(CID, bridge="b1"), snap(A2, app="Wait", data="60")]
    (change,) = book.resync(live, now=100.0)
    call = change.call
    assert (change.ended, change.state_from, change.state_to) == (False, S.CONNECTED, S.CONNECTED)
    assert call.live_channels == frozenset({CID, A2})
    assert call.channels == frozenset({CID, C2, A, A2})
    assert call.reconciled
    assert book.apply(hangup(A2, at=101.0)) is not None  # the new channel is routed


def test_resync_leaves_a_consistent_call_alone() -> None:
    book = connected_book()
    live = [snap(CID, bridge="b1"), snap(C2, app="Wait"), snap(A, app="AppQueue")]
    assert book.resync(live, now=100.0) == []
    call = book.get(CID)
    assert call is not None
    assert not call.reconciled


def test_resync_takes_the_state_of_a_quiet_call_from_asterisk() -> None:
    book = started_book(newchannel(uid=C2), newstate(), join())
    book.apply(ev.IvrAgentConnected(at=70.0))
    live = [snap(CID, bridge="b1"), snap(C2, app="Wait")]
    (change,) = book.resync(live, now=100.0)  # AgentConnect was missed
    call = change.call
    assert (change.state_from, change.state_to) == (S.QUEUED, S.CONNECTED)
    assert (call.agent_connected_at, call.queued_at, call.reconciled) == (100.0, 2.0, True)


def test_resync_state_agrees_with_hold_and_ringing_agents() -> None:
    book = connected_book()
    book.apply(hold(at=65.0))
    book.apply(ev.IvrAgentConnected(at=80.0))  # a second reconnect: the call is quiet again
    live = [snap(CID, bridge="b1"), snap(C2, app="Wait"), snap(A, app="AppQueue")]
    assert book.resync(live, now=100.0) == []
    call = book.get(CID)
    assert call is not None
    assert call.state is S.ON_HOLD


def test_resync_moves_a_held_call_that_left_the_bridge() -> None:
    book = connected_book()
    book.apply(hold(at=65.0))
    book.apply(ev.IvrAgentConnected(at=80.0))
    live = [snap(CID, app="Playback", data="x"), snap(C2, app="Wait")]
    (change,) = book.resync(live, now=100.0)
    call = change.call
    assert (call.state, call.held_at, call.on_hold_time) == (S.IVR, None, 35.0)
    assert call.live_channels == frozenset({CID, C2})


def test_resync_adds_calls_it_did_not_know() -> None:
    book = CallBook()
    live = [
        snap("9.0", linkedid="9.0", bridge="b9", duration=45,
             caller_number="138", caller_name="张三", exten="4008200100"),
        snap("9.1", linkedid="9.0", app="Wait", duration=44),
        snap("9.2", linkedid="9.0", app="AppQueue", duration=20,
             vars=ev.ChanVars(agent_id="agent3")),
        snap("8.0", linkedid="8.0", state=4, app="", data="", duration=1),
    ]  # fmt: skip
    changes = book.resync(live, now=100.0)
    assert [(c.state_from, c.state_to, c.ended, c.event) for c in changes] == [
        (None, S.CONNECTED, False, None),
        (None, S.RINGING, False, None),
    ]
    call = changes[0].call
    assert (call.call_id, call.started_at, call.reconciled) == ("9.0", 55.0, True)
    assert (call.caller_number, call.caller_name, call.dialed_number) == (
        "138",
        "张三",
        "4008200100",
    )
    assert (call.queue, call.agent, call.queued_at, call.answered_at, call.agent_connected_at) == (
        "support",
        "agent3",
        100.0,
        100.0,
        100.0,
    )
    assert call.live_channels == frozenset({"9.0", "9.1", "9.2"})
    ringing = changes[1].call
    assert (ringing.answered_at, ringing.queued_at, ringing.started_at) == (None, None, 99.0)
    assert len(book) == 2
    change = book.apply(ev.Hangup(at=101.0, uniqueid="8.0", linkedid="8.0"))
    assert change is not None
    assert change.call.disposition is Disposition.UNKNOWN  # never up, start unseen


def test_resync_adds_a_call_whose_caller_leg_is_gone() -> None:
    live = [snap("7.3", linkedid="7.0", app="Wait", connected_number="137", connected_name="王五")]
    (change,) = CallBook().resync(live, now=100.0)
    call = change.call
    assert (call.call_id, call.state, call.caller_number, call.caller_name) == (
        "7.0",
        S.IVR,
        "137",
        "王五",
    )
    assert (call.dialed_number, call.caller_kind, call.ivr_outcome) == ("", "", "")


def test_resync_does_not_bring_back_a_call_that_just_ended() -> None:
    book = started_book()
    book.apply(ev.IvrAgentConnected(at=1.0))
    book.apply(hangup(CID, at=2.0))  # after the snapshot was taken, before it was applied
    assert book.resync([snap(CID)], now=3.0) == []
    assert len(book) == 0


def test_resync_after_a_call_started_since_the_reconnect() -> None:
    book = CallBook()
    book.apply(ev.IvrAgentConnected(at=1.0))
    book.apply(newchannel(at=2.0))  # the snapshot did not have it yet
    assert book.resync([], now=3.0) == []
    assert CID in book


def test_snapshot_state() -> None:
    assert snapshot_state(snap(bridge="b")) is S.CONNECTED
    assert snapshot_state(snap()) is S.QUEUED
    assert snapshot_state(snap(app="Playback")) is S.IVR
    assert snapshot_state(snap(app="", state=5)) is S.RINGING


def test_call_from_snapshot_of_a_queued_caller() -> None:
    call = call_from_snapshot(
        [snap(CID, duration=12, vars=ev.ChanVars(caller_kind="sipp", ivr_outcome="x"))], now=50.0
    )
    assert (call.state, call.started_at, call.queued_at, call.queue, call.agent_connected_at) == (
        S.QUEUED,
        38.0,
        50.0,
        "support",
        None,
    )
    assert (call.caller_kind, call.ivr_outcome) == ("sipp", "x")


# ------------------------------------------------------------------ restarts


def test_close_stale() -> None:
    live = call_in(S.CONNECTED, updated_at=40.0)
    gone = replace(call_in(S.QUEUED, updated_at=30.0), call_id="1795633700.0")
    done = end_call(replace(call_in(S.IVR), call_id="1795633600.0"), 20.0)
    closed = close_stale([live, gone, done], {CID}, now=100.0)
    assert [c.call_id for c in closed] == ["1795633700.0"]
    (call,) = closed
    assert (call.state, call.ended_at, call.reconciled, call.disposition) == (
        S.ENDED,
        100.0,
        True,
        Disposition.ABANDONED,
    )


def test_restore_adopts_open_calls() -> None:
    book = CallBook()
    open_call = call_in(S.CONNECTED)
    book.restore([open_call, end_call(replace(call_in(S.IVR), call_id="x.0"), 5.0)])
    assert len(book) == 1
    change = book.apply(ev.Cdr(at=50.0, uniqueid=A))
    assert change is not None  # its channels are routed
    assert change.call.call_id == CID


def test_restore_during_a_resync_window() -> None:
    book = CallBook()
    book.apply(ev.IvrAgentConnected(at=1.0))
    book.restore([call_in(S.CONNECTED)])
    (change,) = book.resync([], now=100.0)
    assert change.ended


def test_with_changes_is_dataclasses_replace() -> None:
    call = Call(
        call_id="1.1",
        state=CallState.CONNECTED,
        started_at=1.0,
        updated_at=2.0,
        caller_number="13800138000",
        channels=frozenset({"1.1"}),
        agent="agent1",
    )
    changes = {"state": CallState.ON_HOLD, "held_at": 3.5, "updated_at": 3.5, "talk_events": 2}
    got = with_changes(call, changes)
    assert got == replace(call, **changes)
    assert [getattr(got, f.name) for f in dataclasses.fields(Call)] == [
        getattr(replace(call, **changes), f.name) for f in dataclasses.fields(Call)
    ]
    assert call.state is CallState.CONNECTED  # the original is untouched
    assert with_changes(call, {}) == call
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.state = CallState.ENDED  # type: ignore[misc]


def test_an_agents_outbound_call_is_not_a_hotline_call() -> None:
    """The PBX carries other calls too: an agent's line calling out (click-to-dial) is answered
    and hangs up without ever running the hotline's dialplan (no CALL_ID) nor joining a queue.
    It must not count as a caller who abandoned the hotline."""
    out = ev.ChanVars(call_id="")
    book = CallBook()
    book.apply(newchannel(channel="Local/agent51@lab-agents-00000001;1", vars=out))
    book.apply(ev.Newstate(at=1.0, uniqueid=CID, linkedid=CID, channel_state=6, vars=out))
    change = book.apply(ev.Hangup(at=9.0, uniqueid=CID, linkedid=CID, cause=16))
    assert change is not None
    assert change.call.disposition is Disposition.NOT_HOTLINE
    # The same, but the caller leg ran the hotline (CALL_ID set) and hung up in the prompt.
    hot = ev.ChanVars(call_id=CID)
    book = CallBook()
    book.apply(newchannel(vars=hot))
    book.apply(ev.Newstate(at=1.0, uniqueid=CID, linkedid=CID, channel_state=6, vars=hot))
    change = book.apply(ev.Hangup(at=9.0, uniqueid=CID, linkedid=CID, cause=16))
    assert change is not None
    assert change.call.hotline
    assert change.call.disposition is Disposition.ABANDONED
