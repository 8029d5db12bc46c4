"""events.parse: every modelled event, the ignored ones, MalformedEvent, header normalisation."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest

from ivr_agent.domain import events as ev
from ivr_agent.errors import IvrAgentError
from tests.unit.transcript import TRANSCRIPTS, frames, load

T = "1795633717.250000"
E = TypeVar("E", bound=ev.Event)


def chan(prefix: str = "", **over: str) -> dict[str, str]:
    """A channel snapshot as Asterisk 22 writes it (with `Dest` for the second channel)."""
    snap = {
        "Channel": "PJSIP/sipp-00000000",
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "CallerIDNum": "13800138000",
        "CallerIDName": "张三",
        "ConnectedLineNum": "<unknown>",
        "ConnectedLineName": "<unknown>",
        "Language": "en",
        "AccountCode": "",
        "Context": "ivr-agent-hotline",
        "Exten": "4008200100",
        "Priority": "1",
        "Uniqueid": "1795633717.0",
        "Linkedid": "1795633717.0",
        "ChanVariable.CALL_ID": "1795633717.0",
        "ChanVariable.CALLER_KIND": "sipp",
        "ChanVariable.AGENT_ID": "",
        "ChanVariable.IVR_OUTCOME": "",
    }
    snap.update(over)
    return {prefix + k: v for k, v in snap.items()}


def agent(**over: str) -> dict[str, str]:
    return chan(
        "Dest",
        Channel="Local/agent1@lab-agents-00000001;1",
        Uniqueid="1795633717.2",
        CallerIDName="<unknown>",
        **over,
    )


def frame(name: str, *parts: dict[str, str], stamp: str | None = T, **extra: str) -> dict[str, str]:
    out = {"Event": name, "Privilege": "call,all"}
    if stamp is not None:
        out["Timestamp"] = stamp
    for part in parts:
        out.update(part)
    out.update(extra)
    return out


def parsed(kind: type[E], f: dict[str, str], now: float = 0.0) -> E:
    event = ev.parse(f, now)
    assert type(event) is kind
    return event


# ------------------------------------------------------------------ channel snapshot fields


def test_channel_snapshot_fields() -> None:
    e = parsed(ev.Newchannel, frame("Newchannel", chan(ChannelState="4")))
    assert e.at == 1795633717.25
    assert e.uniqueid == e.linkedid == "1795633717.0"
    assert e.channel == "PJSIP/sipp-00000000"
    assert e.channel_state == 4
    assert (e.caller_number, e.caller_name) == ("13800138000", "张三")
    assert (e.connected_number, e.connected_name) == ("", "")  # `<unknown>` -> ''
    assert (e.context, e.exten) == ("ivr-agent-hotline", "4008200100")
    assert e.vars == ev.ChanVars(call_id="1795633717.0", caller_kind="sipp")


def test_unknown_caller_id_becomes_empty() -> None:
    e = parsed(
        ev.Newstate, frame("Newstate", chan(CallerIDNum="<unknown>", CallerIDName="<unknown>"))
    )
    assert (e.caller_number, e.caller_name) == ("", "")


def test_empty_channel_variables_share_one_object() -> None:
    f = frame("Newstate", chan(**{"ChanVariable.CALL_ID": "", "ChanVariable.CALLER_KIND": ""}))
    assert parsed(ev.Newstate, f).vars is ev.NO_VARS


def test_channel_variables_are_optional() -> None:
    f = {k: v for k, v in frame("Newstate", chan()).items() if not k.startswith("ChanVariable")}
    assert parsed(ev.Newstate, f).vars is ev.NO_VARS


def test_all_four_channel_variables() -> None:
    f = frame(
        "Hangup",
        chan(
            **{
                "ChanVariable.CALL_ID": "c",
                "ChanVariable.AGENT_ID": "agent1",
                "ChanVariable.IVR_OUTCOME": "silent_line",
                "ChanVariable.CALLER_KIND": "silent",
            }
        ),
    )
    assert parsed(ev.Hangup, f).vars == ev.ChanVars(
        call_id="c", agent_id="agent1", ivr_outcome="silent_line", caller_kind="silent"
    )


def test_missing_timestamp_uses_now() -> None:
    assert parsed(ev.Newstate, frame("Newstate", chan(), stamp=None), now=42.5).at == 42.5


def test_optional_snapshot_headers_default() -> None:
    f = {"Event": "Newstate", "Uniqueid": "1.1", "Linkedid": "1.0"}
    e = parsed(ev.Newstate, f, now=1.0)
    assert (e.channel, e.channel_state, e.caller_number, e.exten, e.vars) == (
        "",
        0,
        "",
        "",
        ev.NO_VARS,
    )


# ------------------------------------------------------------------ each modelled event


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Newchannel", ev.Newchannel),
        ("Newstate", ev.Newstate),
        ("NewCallerid", ev.NewCallerid),
        ("NewConnectedLine", ev.NewConnectedLine),
        ("Unhold", ev.Unhold),
        ("ChannelTalkingStart", ev.ChannelTalkingStart),
        ("MixMonitorStart", ev.MixMonitorStart),
        ("MixMonitorStop", ev.MixMonitorStop),
    ],
)
def test_plain_channel_events(name: str, kind: type[ev.ChannelEvent]) -> None:
    assert parsed(kind, frame(name, chan())).uniqueid == "1795633717.0"


def test_dial_begin_of_an_originate_has_only_a_dest_channel() -> None:
    e = parsed(ev.DialBegin, frame("DialBegin", agent(), DialString="s@lab-caller-talking/n"))
    assert (e.uniqueid, e.linkedid, e.channel) == ("", "", "")
    assert e.dest_uniqueid == "1795633717.2"
    assert e.dest_linkedid == "1795633717.0"
    assert e.dest_channel == "Local/agent1@lab-agents-00000001;1"
    assert e.dest_channel_state == 6
    assert (e.dest_caller_number, e.dest_caller_name) == ("13800138000", "")
    assert (e.dest_connected_number, e.dest_connected_name) == ("", "")
    assert (e.dest_context, e.dest_exten) == ("ivr-agent-hotline", "4008200100")
    assert e.dest_vars.caller_kind == "sipp"
    assert e.dial_string == "s@lab-caller-talking/n"


def test_dial_end() -> None:
    e = parsed(ev.DialEnd, frame("DialEnd", chan(), agent(), DialStatus="BUSY"))
    assert (e.uniqueid, e.dest_uniqueid, e.dial_status, e.forward) == (
        "1795633717.0",
        "1795633717.2",
        "BUSY",
        "",
    )


def test_dest_variables() -> None:
    f = frame("DialEnd", chan(), agent(**{"ChanVariable.AGENT_ID": "agent1"}))
    assert parsed(ev.DialEnd, f).dest_vars.agent_id == "agent1"


def test_queue_caller_join_leave_abandon() -> None:
    j = parsed(
        ev.QueueCallerJoin,
        frame("QueueCallerJoin", chan(), Queue="support", Position="2", Count="3"),
    )
    assert (j.queue, j.position, j.count) == ("support", 2, 3)
    leave = parsed(
        ev.QueueCallerLeave, frame("QueueCallerLeave", chan(), Queue="support", Position="1")
    )
    assert (leave.queue, leave.position, leave.count) == ("support", 1, 0)
    a = parsed(
        ev.QueueCallerAbandon,
        frame(
            "QueueCallerAbandon",
            chan(),
            Queue="support",
            Position="1",
            OriginalPosition="2",
            HoldTime="19",
        ),
    )
    assert (a.queue, a.position, a.original_position, a.hold_time) == ("support", 1, 2, 19)


MEMBER = {"Queue": "support", "MemberName": "agent1", "Interface": "Local/agent1@lab-agents/n"}


def test_agent_called() -> None:
    e = parsed(ev.AgentCalled, frame("AgentCalled", chan(), agent(), MEMBER))
    assert (e.queue, e.member_name, e.interface) == (
        "support",
        "agent1",
        "Local/agent1@lab-agents/n",
    )
    assert (e.uniqueid, e.dest_uniqueid) == ("1795633717.0", "1795633717.2")


def test_agent_connect() -> None:
    e = parsed(
        ev.AgentConnect,
        frame("AgentConnect", chan(), agent(), MEMBER, HoldTime="12", RingTime="3"),
    )
    assert (e.hold_time, e.ring_time, e.member_name) == (12, 3, "agent1")


def test_agent_complete() -> None:
    e = parsed(
        ev.AgentComplete,
        frame("AgentComplete", chan(), agent(), MEMBER, HoldTime="1", TalkTime="8", Reason="agent"),
    )
    assert (e.hold_time, e.talk_time, e.reason) == (1, 8, "agent")


def test_agent_complete_after_a_redirect_has_no_agent_snapshot() -> None:
    # Asterisk 22.10 (real_silent_line_bridged.ami): sent at the caller's final hangup, when the
    # agent leg is gone: no Dest* headers at all.
    f = frame("AgentComplete", chan(), MEMBER, HoldTime="1", TalkTime="11", Reason="caller")
    e = parsed(ev.AgentComplete, f)
    assert (e.dest_uniqueid, e.dest_linkedid, e.dest_channel) == ("", "", "")
    assert (e.uniqueid, e.member_name, e.talk_time) == ("1795633717.0", "agent1", 11)


def test_agent_ring_no_answer() -> None:
    e = parsed(
        ev.AgentRingNoAnswer, frame("AgentRingNoAnswer", chan(), agent(), MEMBER, RingTime="15000")
    )
    assert e.ring_time == 15000


def test_agent_event_without_member_details() -> None:
    e = parsed(ev.AgentCalled, frame("AgentCalled", chan(), agent(), Queue="support"))
    assert (e.interface, e.member_name) == ("", "")


@pytest.mark.parametrize(
    ("name", "kind"), [("BridgeEnter", ev.BridgeEnter), ("BridgeLeave", ev.BridgeLeave)]
)
def test_bridge_events(name: str, kind: type[ev.BridgeEvent]) -> None:
    f = frame(
        name,
        {"BridgeUniqueid": "8f0c", "BridgeType": "basic", "BridgeNumChannels": "2"},
        chan(),
    )
    e = parsed(kind, f)
    assert (e.bridge_uniqueid, e.bridge_type, e.bridge_num_channels) == ("8f0c", "basic", 2)


def test_hold() -> None:
    assert parsed(ev.Hold, frame("Hold", chan(), MusicClass="default")).music_class == "default"
    assert parsed(ev.Hold, frame("Hold", chan())).music_class == ""


def test_channel_talking_stop() -> None:
    f = frame("ChannelTalkingStop", chan(), Duration="9195")
    assert parsed(ev.ChannelTalkingStop, f).duration_ms == 9195


def test_hangup() -> None:
    e = parsed(ev.Hangup, frame("Hangup", chan(), **{"Cause": "17", "Cause-txt": "User busy"}))
    assert (e.cause, e.cause_txt) == (17, "User busy")


def test_core_show_channel_has_no_timestamp() -> None:
    f = frame(
        "CoreShowChannel",
        chan(),
        stamp=None,
        ActionID="resync-1",
        BridgeId="8f0c",
        Application="Queue",
        ApplicationData="support,r,,,300",
        Duration="01:02:03",
    )
    e = parsed(ev.CoreShowChannel, f, now=99.0)
    assert e.at == 99.0
    assert (e.application, e.application_data, e.bridge_id, e.action_id) == (
        "Queue",
        "support,r,,,300",
        "8f0c",
        "resync-1",
    )
    assert e.duration == 3723


def test_core_show_channel_long_and_missing_duration() -> None:
    f = frame("CoreShowChannel", chan(), Duration="100:00:00")
    assert parsed(ev.CoreShowChannel, f).duration == 360_000
    assert parsed(ev.CoreShowChannel, frame("CoreShowChannel", chan())).duration == 0


def test_cdr() -> None:
    f = frame(
        "Cdr",
        AccountCode="",
        Source="13912345678",
        Destination="s",
        DestinationContext="ivr-agent-hotline",
        CallerID='"" <13912345678>',
        Channel="Local/s@lab-caller-talking-00000000;1",
        DestinationChannel="Local/agent1@lab-agents-00000001;1",
        LastApplication="Queue",
        LastData="support,r,,,300",
        StartTime="2026-11-25 10:15:17",
        AnswerTime="2026-11-25 10:15:17",
        EndTime="2026-11-25 10:15:26",
        Duration="9",
        BillableSeconds="8",
        Disposition="ANSWERED",
        AMAFlags="DOCUMENTATION",
        UniqueID="1795633717.0",
        UserField="",
    )
    e = parsed(ev.Cdr, f)
    assert e.uniqueid == "1795633717.0"
    assert e.linkedid == ""  # cdr_manager sends no Linkedid unless mapped
    assert (e.source, e.destination, e.destination_context) == (
        "13912345678",
        "s",
        "ivr-agent-hotline",
    )
    assert e.caller_id == '"" <13912345678>'
    assert (e.channel, e.destination_channel) == (
        "Local/s@lab-caller-talking-00000000;1",
        "Local/agent1@lab-agents-00000001;1",
    )
    assert e.last_application == "Queue"
    assert (e.start_time, e.answer_time, e.end_time) == (
        "2026-11-25 10:15:17",
        "2026-11-25 10:15:17",
        "2026-11-25 10:15:26",
    )
    assert (e.duration, e.billable_seconds, e.disposition) == (9, 8, "ANSWERED")


def test_cdr_with_mapped_linkedid() -> None:
    assert parsed(ev.Cdr, frame("Cdr", UniqueID="1.1", Linkedid="1.0")).linkedid == "1.0"


def test_originate_response_success() -> None:
    f = frame(
        "OriginateResponse",
        ActionID="ivr-agent-originate-1",
        Response="Success",
        Channel="Local/s@lab-caller-talking-00000000;1",
        Context="ivr-agent-hotline",
        Exten="4008200100",
        Reason="4",
        Uniqueid="1795633717.0",
        CallerIDNum="13912345678",
        CallerIDName="<unknown>",
    )
    e = parsed(ev.OriginateResponse, f)
    assert (e.action_id, e.response, e.reason, e.uniqueid) == (
        "ivr-agent-originate-1",
        "Success",
        4,
        "1795633717.0",
    )
    assert (e.channel, e.context, e.exten) == (
        "Local/s@lab-caller-talking-00000000;1",
        "ivr-agent-hotline",
        "4008200100",
    )
    assert (e.caller_number, e.caller_name) == ("13912345678", "")


@pytest.mark.parametrize("uniqueid", ["<null>", "<unknown>"])  # <unknown>: Asterisk 22.10
def test_originate_response_failure_has_no_uniqueid(uniqueid: str) -> None:
    f = frame("OriginateResponse", ActionID="x", Response="Failure", Reason="5", Uniqueid=uniqueid)
    e = parsed(ev.OriginateResponse, f)
    assert (e.response, e.reason, e.uniqueid) == ("Failure", 5, "")


def test_user_event_from_dialplan() -> None:
    f = frame("UserEvent", chan(), UserEvent="IvrMenu", Choice="2", Note="请稍候")
    e = parsed(ev.UserEvent, f)
    assert (e.name, e.uniqueid, e.linkedid, e.channel) == (
        "IvrMenu",
        "1795633717.0",
        "1795633717.0",
        "PJSIP/sipp-00000000",
    )
    assert e.field("Choice") == "2"
    assert e.field("Note") == "请稍候"
    assert e.field("Missing") == ""
    assert e.field("Missing", "x") == "x"


def test_user_event_from_ami_has_no_channel() -> None:
    e = parsed(ev.UserEvent, frame("UserEvent", UserEvent="Ping"))
    assert (e.uniqueid, e.linkedid, e.channel) == ("", "", "")


def test_fully_booted_and_shutdown() -> None:
    b = parsed(
        ev.FullyBooted,
        frame("FullyBooted", Status="Fully Booted", Uptime="3", LastReload="3"),
    )
    assert (b.status, b.uptime, b.last_reload) == ("Fully Booted", 3, 3)
    s = parsed(ev.Shutdown, frame("Shutdown", Shutdown="Cleanly", Restart="True"))
    assert (s.shutdown, s.restart) == ("Cleanly", True)
    assert (
        parsed(ev.Shutdown, frame("Shutdown", Shutdown="Uncleanly", Restart="False")).restart
        is False
    )


def test_queue_params() -> None:
    f = frame(
        "QueueParams",
        stamp=None,
        Queue="support",
        Max="0",
        Strategy="rrmemory",
        Calls="2",
        Holdtime="7",
        TalkTime="40",
        Completed="10",
        Abandoned="3",
        ServiceLevel="60",
        ServicelevelPerf="80.0",
        Weight="0",
        ActionID="qs-1",
    )
    e = parsed(ev.QueueParams, f, now=5.0)
    assert (e.at, e.queue, e.max, e.strategy, e.calls) == (5.0, "support", 0, "rrmemory", 2)
    assert (e.hold_time, e.talk_time, e.completed, e.abandoned, e.service_level) == (
        7,
        40,
        10,
        3,
        60,
    )
    assert e.action_id == "qs-1"


def test_queue_member() -> None:
    f = frame(
        "QueueMember",
        stamp=None,
        Queue="support",
        Name="agent1",
        Location="Local/agent1@lab-agents/n",
        StateInterface="Local/agent1@lab-agents/n",
        Membership="dynamic",
        Penalty="0",
        CallsTaken="4",
        LastCall="1795633700",
        LastPause="0",
        LoginTime="1795633000",
        InCall="1",
        Status="2",
        Paused="1",
        PausedReason="lunch",
        Wrapuptime="0",
        ActionID="qs-1",
    )
    e = parsed(ev.QueueMember, f)
    assert (e.queue, e.name, e.location, e.state_interface, e.membership) == (
        "support",
        "agent1",
        "Local/agent1@lab-agents/n",
        "Local/agent1@lab-agents/n",
        "dynamic",
    )
    assert (e.penalty, e.calls_taken, e.last_call, e.in_call, e.status) == (
        0,
        4,
        1795633700,
        True,
        2,
    )
    assert (e.paused, e.paused_reason, e.action_id) == (True, "lunch", "qs-1")


def test_adapter_markers() -> None:
    c = parsed(ev.IvrAgentConnected, {"Event": "IvrAgentConnected"}, now=7.0)
    assert c.at == 7.0
    d = parsed(ev.IvrAgentDisconnected, {"Event": "IvrAgentDisconnected", "Reason": "eof"}, now=8.0)
    assert (d.at, d.reason) == (8.0, "eof")


# ------------------------------------------------------------------ not modelled


@pytest.mark.parametrize(
    "f",
    [
        {"Event": "VarSet", "Timestamp": T, "Variable": "CALL_ID", "Value": "1"},
        {"Event": "Newexten", "Timestamp": T, "Uniqueid": "1.0"},
        {"Event": "TestEvent", "Type": "StateChange"},
        {"Event": "RTCPSent", "Timestamp": "not even a number"},
        {"Event": "QueueMemberStatus", "Queue": "support"},
        {"Response": "Success", "Message": "Originate successfully queued"},
        {},
    ],
)
def test_unmodelled_frames_are_none(f: dict[str, str]) -> None:
    assert ev.parse(f) is None


def test_the_required_event_names_are_modelled() -> None:
    required = {
        "Newchannel", "Newstate", "NewCallerid", "NewConnectedLine", "DialBegin", "DialEnd",
        "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled",
        "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "BridgeEnter", "BridgeLeave",
        "Hold", "Unhold", "ChannelTalkingStart", "ChannelTalkingStop", "MixMonitorStart",
        "MixMonitorStop", "Hangup", "Cdr", "OriginateResponse", "UserEvent", "FullyBooted",
        "Shutdown", "CoreShowChannel", "QueueMember", "QueueParams", "IvrAgentConnected",
        "IvrAgentDisconnected",
    }  # fmt: skip
    assert required <= ev.MODELLED


# ------------------------------------------------------------------ malformed frames


def without(d: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize(
    ("f", "header", "value"),
    [
        (frame("Hangup", without(chan(), "Uniqueid")), "Uniqueid", None),
        (frame("Newchannel", without(chan(), "Linkedid")), "Linkedid", None),
        (frame("Hangup", chan(), Cause="sixteen"), "Cause", "sixteen"),
        (frame("Newstate", chan(ChannelState="Up")), "ChannelState", "Up"),
        (frame("Newstate", chan(), stamp="yesterday"), "Timestamp", "yesterday"),
        (frame("Newstate", chan(), stamp="nan"), "Timestamp", "nan"),
        (frame("Newstate", chan(), stamp="inf"), "Timestamp", "inf"),
        (frame("AgentConnect", chan(), MEMBER), "DestUniqueid", None),
        (frame("AgentConnect", chan(), agent(ChannelState="x"), MEMBER), "DestChannelState", "x"),
        (frame("AgentConnect", chan(), agent(), MEMBER, HoldTime="1.5"), "HoldTime", "1.5"),
        (frame("DialEnd", chan()), "DestUniqueid", None),
        (frame("QueueCallerJoin", chan(), Position="1"), "Queue", None),
        (frame("QueueCallerJoin", chan(), Queue="q", Position="first"), "Position", "first"),
        (frame("BridgeEnter", chan()), "BridgeUniqueid", None),
        (frame("ChannelTalkingStop", chan(), Duration="9.1s"), "Duration", "9.1s"),
        (frame("CoreShowChannel", chan(), Duration="00:xx:01"), "Duration", "00:xx:01"),
        (frame("CoreShowChannel", chan(), Duration="1::2"), "Duration", "1::2"),
        (frame("Cdr", Source="1"), "UniqueID", None),
        (frame("Cdr", UniqueID="1.0", Duration="-"), "Duration", "-"),
        (frame("OriginateResponse", ActionID="x"), "Response", None),
        (frame("UserEvent", chan()), "UserEvent", None),
        (frame("QueueMember", Queue="support"), "Name", None),
        (frame("QueueParams", Calls="2"), "Queue", None),
        (frame("FullyBooted", Uptime="soon"), "Uptime", "soon"),
    ],
)
def test_malformed(f: dict[str, str], header: str, value: str | None) -> None:
    event = f["Event"]
    with pytest.raises(ev.MalformedEvent) as info:
        ev.parse(f)
    err = info.value
    assert (err.event, err.header, err.value) == (event, header, value)
    assert isinstance(err, ValueError)
    assert isinstance(err, IvrAgentError)
    assert event in str(err)
    assert header in str(err)


def test_malformed_messages() -> None:
    assert str(ev.MalformedEvent("Hangup", "Uniqueid")) == "Hangup: missing header 'Uniqueid'"
    assert (
        str(ev.MalformedEvent("Hangup", "Cause", "x")) == "Hangup: bad value 'x' for header 'Cause'"
    )


# ------------------------------------------------------------------ transcripts


def test_loader_normalises_channel_variables() -> None:
    text = (
        "# a note\r\n"
        "Event: AgentConnect\r\n"
        "ChanVariable: CALL_ID=1.0\r\n"
        "ChanVariable(PJSIP/a-1): IVR_OUTCOME=x=y\r\n"
        "DestChanVariable: AGENT_ID=agent1\r\n"
        "AccountCode:\r\n"
        "Output: a\r\n"
        "Output: b\r\n"
        "\r\n"
        "\r\n"
        "Event: Ping\r\n"
    )
    assert frames(text) == [
        {
            "Event": "AgentConnect",
            "ChanVariable.CALL_ID": "1.0",
            "ChanVariable.IVR_OUTCOME": "x=y",
            "DestChanVariable.AGENT_ID": "agent1",
            "AccountCode": "",
            "Output": "a\nb",
        },
        {"Event": "Ping"},
    ]
    with pytest.raises(ValueError, match="not a header line"):
        frames("Event: Hangup\nno colon here\n")


@pytest.mark.parametrize("path", sorted(TRANSCRIPTS.glob("*.ami")), ids=lambda p: p.stem)
def test_every_transcript_frame_parses(path: Path) -> None:
    modelled = 0
    for f in load(path.stem):
        assert "Event" in f
        event = ev.parse(f)
        if f["Event"] in ev.MODELLED:
            assert isinstance(event, ev.Event)
            assert event.at > 1.7e9  # every live event has a Timestamp
            modelled += 1
        else:
            assert event is None
    assert modelled


def test_transcripts_carry_chinese_caller_names_intact() -> None:
    names = {
        e.caller_name
        for f in load("pjsip_zhangsan")
        if isinstance(e := ev.parse(f), ev.ChannelEvent)
    }
    assert "张三" in names


def test_agent_complete_without_any_channel_is_not_malformed() -> None:
    """Real lab traffic: after both legs hung up, AgentComplete carries only the queue side."""
    from ivr_agent.domain.callbook import CallBook

    frame = {
        "Event": "AgentComplete", "Privilege": "agent,all", "Timestamp": "1795636726.106253",
        "Queue": "support", "Interface": "Local/agent9005@lab-agents/n",
        "MemberName": "agent9005", "HoldTime": "0", "TalkTime": "7", "Reason": "agent",
    }  # fmt: skip
    event = ev.parse(frame)
    assert isinstance(event, ev.AgentComplete)
    assert event.uniqueid == ""
    assert event.talk_time == 7
    assert CallBook().apply(event) is None


def test_a_parser_must_set_every_field_in_order() -> None:
    # Events are built slot by slot: a field added to an event but not to its parser fails at
    # import, never as an unset slot at run time.
    with pytest.raises(TypeError, match="Hangup"):
        ev._maker(ev.Hangup, ("cause",))
    with pytest.raises(TypeError, match="Hangup"):
        ev._maker(ev.Hangup, ("cause_txt", "cause"))
