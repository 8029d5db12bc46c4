"""Real Asterisk 22.10 traffic (tests/transcripts/real_*.ami, made by record.py) through
events.parse and CallBook.apply, with no event loop: the final call record of each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ivr_agent.domain import events as ev
from ivr_agent.domain.callbook import CallBook
from ivr_agent.domain.calls import Call, CallState, Disposition
from tests.unit.transcript import TRANSCRIPTS, load

D = Disposition
WITH_AGENT = ["ringing", "ivr", "queued", "agent_ringing", "connected", "ivr", "ended"]
QUEUED_ONLY = ["ringing", "ivr", "queued", "ivr", "ended"]


@dataclass(frozen=True)
class Played:
    call: Call
    states: list[str]
    events: list[ev.Event]  # every modelled event of the transcript, in order
    ignored: list[ev.Event]  # those the book did not apply (the call had ended)


def play(name: str) -> Played:
    """Feed the transcript; InvalidTransition or MalformedEvent fail the test."""
    book = CallBook()
    events = [e for f in load(name) if (e := ev.parse(f)) is not None]
    ended: list[Call] = []
    states: list[str] = []
    ignored: list[ev.Event] = []
    for event in events:
        change = book.apply(event)
        if change is None:
            ignored.append(event)
            continue
        if change.state_changed:
            states.append(change.state_to.value)
        if change.ended:
            ended.append(change.call)
    assert len(book) == 0
    (call,) = ended
    return Played(call, states, events, ignored)


def first(events: list[ev.Event], kind: type[ev.Event]) -> ev.Event:
    return next(e for e in events if isinstance(e, kind))


@dataclass(frozen=True)
class Expect:
    name: str
    call_id: str
    number: str
    caller_name: str
    disposition: Disposition
    states: list[str]
    agent: str = ""
    ivr_outcome: str = ""
    talk_events: int = 0
    cause: tuple[int, str] = (16, "Normal Clearing")
    channels: int = 4


EXPECTED = [
    Expect("real_talking_local", "1795636597.12", "13912340001", "张三", D.ANSWERED, WITH_AGENT,
           agent="agent4", talk_events=1),
    Expect("real_silent_local", "1795636553.12", "13912340002", "李四", D.ANSWERED, WITH_AGENT,
           agent="agent4"),
    Expect("real_sip_zhangsanfeng", "1795636572.42", "13912340003", "张三丰", D.ANSWERED,
           WITH_AGENT, agent="agent4", talk_events=1, channels=3),
    Expect("real_abandoned_queue", "1795636615.50", "13912340004", "王五", D.ABANDONED,
           QUEUED_ONLY, talk_events=1, channels=2),
    Expect("real_silent_line_bridged", "1795636639.78", "13912340005", "赵六", D.SILENT_LINE,
           WITH_AGENT, agent="agent2", ivr_outcome="silent_line"),
    Expect("real_silent_line_queued", "1795636654.102", "13912340005", "赵六", D.SILENT_LINE,
           QUEUED_ONLY, ivr_outcome="silent_line", channels=2),
    Expect("real_agent_hangup", "1795636706.268", "13912340008", "周八", D.ANSWERED, WITH_AGENT,
           agent="agent9007", talk_events=1),
]  # fmt: skip


def test_every_real_transcript_is_tested() -> None:
    names = {p.stem for p in TRANSCRIPTS.glob("real_*.ami")}
    assert names == {x.name for x in EXPECTED} | {"real_originate_failed"}


@pytest.mark.parametrize("x", EXPECTED, ids=[x.name for x in EXPECTED])
def test_answered_by_the_hotline(x: Expect) -> None:
    played = play(x.name)
    call, events = played.call, played.events
    assert (call.call_id, call.state) == (x.call_id, CallState.ENDED)
    assert call.disposition is x.disposition
    assert played.states == x.states
    assert (call.caller_number, call.caller_name, call.dialed_number) == (
        x.number,
        x.caller_name,
        "95000",
    )
    assert (call.queue, call.agent, call.ivr_outcome) == ("support", x.agent, x.ivr_outcome)
    assert (call.hangup_cause, call.hangup_cause_txt) == x.cause
    assert (len(call.channels), call.talk_events) == (x.channels, x.talk_events)
    assert not call.reconciled
    # the lab dialplan never sets CALLER_KIND (manager.conf only lists it)
    assert call.caller_kind == ""
    # milestones are the Timestamps of the events that made them, in call order
    start = first(events, ev.Newchannel)
    join = first(events, ev.QueueCallerJoin)
    hangups = [e for e in events if isinstance(e, ev.Hangup)]
    assert call.answered_at is not None
    assert call.queued_at is not None
    assert call.started_at == start.at < call.answered_at < call.queued_at == join.at
    assert call.ended_at == hangups[-1].at == call.updated_at
    assert call.recording_started_at == first(events, ev.MixMonitorStart).at
    # only Cdr records may arrive after the call ended
    assert {type(e) for e in played.ignored} <= {ev.Cdr}


@pytest.mark.parametrize(
    "name",
    ["real_talking_local", "real_silent_local", "real_sip_zhangsanfeng", "real_agent_hangup"],
)
def test_answered_call_times(name: str) -> None:
    played = play(name)
    call, events = played.call, played.events
    connect = first(events, ev.AgentConnect)
    complete = first(events, ev.AgentComplete)
    assert isinstance(connect, ev.AgentConnect)
    assert isinstance(complete, ev.AgentComplete)
    assert call.queued_at is not None
    assert call.ended_at is not None
    assert call.agent_connected_at == connect.at
    assert call.queued_at < connect.at < call.ended_at
    assert call.agent_interface == connect.interface
    # hold: Asterisk's whole seconds (time() differences), within a second of the Timestamps
    assert call.hold_time == connect.hold_time
    assert call.talk_time is not None
    assert abs(call.hold_time - (connect.at - call.queued_at)) < 1.0
    # talk: measured to the end of the connection, close to AgentComplete's whole seconds
    caller_leaves = next(
        e for e in events if isinstance(e, ev.BridgeLeave) and e.uniqueid == call.call_id
    )
    assert call.talk_time == pytest.approx(min(complete.at, caller_leaves.at) - connect.at)
    assert abs(call.talk_time - complete.talk_time) < 1.0
    assert complete.dest_uniqueid in call.channels


def test_caller_hangs_up_first() -> None:
    call = play("real_talking_local").call
    # 9.2 s of speech, then CALLER_WAIT=6 s; TALK_DETECT saw one burst of speech
    assert call.talk_time == pytest.approx(15.19, abs=0.01)
    assert call.last_talk_at == pytest.approx(call.answered_at or 0, abs=0.1)


def test_agent_hangs_up_first() -> None:
    played = play("real_agent_hangup")
    complete = first(played.events, ev.AgentComplete)
    assert isinstance(complete, ev.AgentComplete)
    assert complete.reason == "agent"
    # Asterisk hangs the caller up at once: the hotline's Set(IVR_OUTCOME=queue_...) after
    # Queue() never runs, so an answered call ends with IVR_OUTCOME '' (not queue_continue)
    assert played.call.ivr_outcome == ""
    assert played.call.talk_time == pytest.approx(3.0, abs=0.01)


def test_silent_line_redirect_while_bridged() -> None:
    played = play("real_silent_line_bridged")
    call, events = played.call, played.events
    complete = first(events, ev.AgentComplete)
    assert isinstance(complete, ev.AgentComplete)
    # AgentComplete comes at the caller's final hangup, after the 10.5 s prompt, without the
    # agent leg's snapshot, and its TalkTime counts the prompt
    assert (complete.dest_uniqueid, complete.reason, complete.talk_time) == ("", "caller", 11)
    assert call.agent_connected_at is not None
    assert call.ended_at is not None
    assert call.ended_at - call.agent_connected_at > 10.5
    assert call.talk_time is not None
    assert call.talk_time < 0.1  # redirected right after AgentConnect: talk ends there
    assert (call.hold_time, call.talk_events) == (1.0, 0)


def test_silent_line_redirect_while_queued() -> None:
    played = play("real_silent_line_queued")
    call, events = played.call, played.events
    abandon = first(events, ev.QueueCallerAbandon)
    assert isinstance(abandon, ev.QueueCallerAbandon)
    assert abandon.context == "ivr-agent-silent-line"  # the Redirect is an "abandon"
    assert (call.hold_time, call.talk_time, call.agent_connected_at) == (1.0, None, None)
    assert call.ended_at is not None
    assert call.ended_at - abandon.at == pytest.approx(10.55, abs=0.1)  # the prompt


def test_abandoned_while_all_agents_are_busy() -> None:
    played = play("real_abandoned_queue")
    call, events = played.call, played.events
    abandon = first(events, ev.QueueCallerAbandon)
    assert isinstance(abandon, ev.QueueCallerAbandon)
    assert (call.agent_connected_at, call.talk_time) == (None, None)
    assert call.hold_time == abandon.hold_time == 13
    assert call.queued_at is not None
    assert abs(call.hold_time - (abandon.at - call.queued_at)) < 1.0


def test_sip_caller_over_the_pjsip_trunk() -> None:
    played = play("real_sip_zhangsanfeng")
    start = first(played.events, ev.Newchannel)
    assert isinstance(start, ev.Newchannel)
    # the trunk's caller leg is born ringing, with the dialed number as its extension
    assert (start.channel, start.channel_state) == ("PJSIP/carrier-00000000", 4)
    assert start.exten == "95000"
    assert (start.caller_number, start.caller_name) == ("13912340003", "张三丰")
    assert played.call.hold_time == 4.0  # other calls were queued ahead of it


def test_originate_failed() -> None:
    played = play("real_originate_failed")
    call = played.call
    assert (call.call_id, call.state, call.disposition) == (
        "1795636562.20",
        CallState.ENDED,
        D.FAILED,
    )
    assert played.states == ["ringing", "ended"]
    assert (call.caller_number, call.caller_name, call.dialed_number) == ("13912340007", "孙七", "")
    assert (call.answered_at, call.queued_at, call.hold_time, call.talk_time) == (
        None,
        None,
        None,
        None,
    )
    assert (call.hangup_cause, call.hangup_cause_txt) == (0, "Unknown")
    assert call.started_at <= (call.ended_at or 0) < call.started_at + 0.01
    # No Dial* events; the OriginateResponse (Uniqueid <unknown>) names no channel: not routed
    response = first(played.events, ev.OriginateResponse)
    assert isinstance(response, ev.OriginateResponse)
    assert (response.response, response.reason, response.uniqueid) == ("Failure", 0, "")
    # it came between the two Hangups; the ;2 leg's Cdr too, the ;1 leg's Cdr after the end
    assert [type(e).__name__ for e in played.ignored] == ["OriginateResponse", "Cdr"]
    assert not any(isinstance(e, ev.DialBegin | ev.DialEnd) for e in played.events)


# ------------------------------------------------------------------ the domain author's questions

LOCAL = [x.name for x in EXPECTED if x.name != "real_sip_zhangsanfeng"]


@pytest.mark.parametrize("name", LOCAL)
def test_local_caller_leg_is_up_before_the_originate_dial_ends(name: str) -> None:
    events = play(name).events
    cid = events[0].uniqueid if isinstance(events[0], ev.Newchannel) else ""
    up = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, ev.Newstate) and e.uniqueid == cid and e.channel_state == ev.STATE_UP
    )
    dial_end = next(
        i for i, e in enumerate(events) if isinstance(e, ev.DialEnd) and e.dest_uniqueid == cid
    )
    assert up < dial_end


def test_extra_headers_of_asterisk_22() -> None:
    frames = [f for x in EXPECTED for f in load(x.name)]
    assert not any("TenantID" in f for f in frames)  # tenantid is unset in the lab
    kinds = {f["Event"] for f in frames}
    assert {"SoftHangupRequest", "HangupRequest", "LocalBridge", "BridgeCreate"} <= kinds
    response = next(f for f in frames if f["Event"] == "OriginateResponse")
    assert "ChanVariable.CALL_ID" in response  # channelvars on the OriginateResponse too
