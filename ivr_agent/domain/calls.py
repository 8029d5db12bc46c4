"""One call's state machine and record: CallState, Disposition, Call, transition(call, event).

A call is keyed by the full Linkedid. Its caller leg is the channel whose Uniqueid equals the
Linkedid (the first channel: `PJSIP/trunk-...`, or `Local/s@lab-caller-...;1` in the lab); the
other channels (the caller's `;2` half, agent legs created by Queue) share the Linkedid.

States:
    RINGING        the caller leg exists and is not answered
    IVR            answered by the hotline, in the dialplan: prompts, after the queue, after
                   the agent left, in the silent-line prompt
    QUEUED         waiting in a queue, no agent ringing
    AGENT_RINGING  waiting in a queue while at least one agent's phone rings
    CONNECTED      bridged with an agent
    ON_HOLD        connected, and one side put the other on hold
    ENDED          every channel of the call has hung up

Moves (`_ALLOWED` holds the legal pairs; an event whose target is the current state only updates
fields; an illegal target raises InvalidTransition, and so does any event on an ENDED call):
    caller leg seen Up (Newstate, DialEnd...)  RINGING -> IVR  (a Local caller leg's Newstate Up
                                                comes just before the Originate's DialEnd)
    QueueCallerJoin                             RINGING | IVR -> QUEUED
    AgentCalled                                 QUEUED -> AGENT_RINGING
    AgentRingNoAnswer of the last ringing agent AGENT_RINGING -> QUEUED
    AgentConnect                                QUEUED | AGENT_RINGING -> CONNECTED
    QueueCallerAbandon (hangup, Redirect)       QUEUED | AGENT_RINGING -> IVR
    QueueCallerLeave with no agent ringing      QUEUED -> IVR  (timeout; with an agent ringing,
                                                Leave just precedes that agent's AgentConnect)
    Hold / Unhold                               CONNECTED <-> ON_HOLD
    BridgeLeave of the caller leg, AgentComplete CONNECTED | ON_HOLD -> IVR
    Hangup of the last live channel             any -> ENDED

What Asterisk 22.10 really sends (tests/transcripts/real_*.ami):
    * when either side hangs up a bridged call, AgentComplete (Reason caller|agent) and the
      caller leg's BridgeLeave come within a millisecond, in either order, and Asterisk hangs
      the caller leg up: Queue() does not return (its `r` option has no `c`), so the hotline
      never sets IVR_OUTCOME: it stays '' after an answered call (the Cdr's LastApplication is
      Queue). IVR_OUTCOME=queue_* only follows a Queue() that returned without an agent.
    * a Redirect out of the agent's bridge (the silent line): BridgeLeave of the caller leg at
      once, but AgentComplete only at the caller's final hangup, without the agent's snapshot.
    * a Local caller leg (`;1`) never shows the dialed number: it starts at `s` in the caller's
      context, and the hotline's `_X.` extension Goto()s to `s` before any event we read. The
      OriginateResponse of its Originate carries it (Exten); a SIP caller leg has it at Newchannel.

Disposition, computed once when the call ends; the first rule that matches wins:
    1. IVR_OUTCOME on the caller leg is silent_line / after_hours / blacklisted
       -> SILENT_LINE / AFTER_HOURS / BLACKLISTED (silent_line wins over an answered call)
    2. an agent was connected -> ANSWERED
    3. IVR_OUTCOME is queue_* (the dialplan's `queue_${QUEUESTATUS}`: timeout, joinempty, ...)
       -> NO_AGENT: the hotline, not the caller, gave up
    4. queued, or answered by the hotline -> ABANDONED (the caller left before an agent);
       answered but never in the hotline (no CALL_ID, no IVR_OUTCOME, no queue, not
       reconciled) -> NOT_HOTLINE: an agent's outbound call, an internal call
    5. reconciled (the service did not see the whole call) -> UNKNOWN
    6. otherwise -> FAILED: never Up (Originate failure, busy, congestion, gone while ringing)

Times are epoch seconds (UTC floats) taken from the events, never from a clock. hold_time is
the queue wait: AgentConnect HoldTime, else QueueCallerAbandon HoldTime. talk_time is measured:
the end of the connection (the first of AgentComplete and the caller leg's BridgeLeave, else the
call's end) - agent_connected_at. AgentComplete's own TalkTime is whole seconds and, after a
Redirect, counts the silent-line prompt too; it is used only when the connect was not seen.
on_hold_time sums Hold..Unhold.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, TypedDict

from ivr_agent.domain.events import (
    NO_VARS,
    STATE_UP,
    AgentCalled,
    AgentComplete,
    AgentConnect,
    AgentRingNoAnswer,
    BridgeLeave,
    ChannelEvent,
    ChannelTalkingStart,
    ChanVars,
    Event,
    Hangup,
    Hold,
    MixMonitorStart,
    Newchannel,
    OriginateResponse,
    PeerEvent,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    Unhold,
)
from ivr_agent.errors import InvalidTransition


class CallState(enum.Enum):
    RINGING = "ringing"
    IVR = "ivr"
    QUEUED = "queued"
    AGENT_RINGING = "agent_ringing"
    CONNECTED = "connected"
    ON_HOLD = "on_hold"
    ENDED = "ended"


class Disposition(enum.Enum):
    UNKNOWN = "unknown"  # not ended yet, or ended without enough seen to tell
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    NO_AGENT = "no_agent"
    SILENT_LINE = "silent_line"
    AFTER_HOURS = "after_hours"
    BLACKLISTED = "blacklisted"
    FAILED = "failed"
    # Answered, but never in the hotline's dialplan nor a queue: an agent's own outbound call
    # or an internal call the PBX carried. Not a hotline call: no recording is expected of it.
    NOT_HOTLINE = "not_hotline"


_S = CallState
_ALLOWED: Final[Mapping[CallState, frozenset[CallState]]] = {
    _S.RINGING: frozenset({_S.IVR, _S.QUEUED, _S.ENDED}),
    _S.IVR: frozenset({_S.QUEUED, _S.ENDED}),
    # QUEUED -> CONNECTED: with ringall, a busy agent's AgentRingNoAnswer may come after
    # another agent answered; the connect must not be lost for it.
    _S.QUEUED: frozenset({_S.AGENT_RINGING, _S.CONNECTED, _S.IVR, _S.ENDED}),
    _S.AGENT_RINGING: frozenset({_S.QUEUED, _S.CONNECTED, _S.IVR, _S.ENDED}),
    _S.CONNECTED: frozenset({_S.ON_HOLD, _S.IVR, _S.ENDED}),
    _S.ON_HOLD: frozenset({_S.CONNECTED, _S.IVR, _S.ENDED}),
    _S.ENDED: frozenset(),
}
_WAITING: Final = frozenset({_S.QUEUED, _S.AGENT_RINGING})
_WITH_AGENT: Final = frozenset({_S.CONNECTED, _S.ON_HOLD})

# IVR_OUTCOME values that decide the disposition even over an answered call (rule 1).
_OUTCOMES: Final[Mapping[str, Disposition]] = {
    "silent_line": Disposition.SILENT_LINE,
    "after_hours": Disposition.AFTER_HOURS,
    "blacklisted": Disposition.BLACKLISTED,
}
# Asterisk's special extensions are not a number anybody dialed.
_NOT_DIALED: Final = frozenset({"s", "h", "i", "t", "T", "o", "a", "e"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """The call record. `channels`: every Uniqueid seen; `live_channels`: not hung up yet."""

    call_id: str  # the Linkedid
    state: CallState
    started_at: float
    updated_at: float  # `at` of the last event applied
    caller_number: str = ""
    caller_name: str = ""
    caller_channel: str = ""  # the caller leg's channel name: what a Redirect moves
    dialed_number: str = ""
    caller_kind: str = ""  # CALLER_KIND chanvar (lab: talking / silent / sipp)
    ivr_outcome: str = ""  # IVR_OUTCOME chanvar of the caller leg
    queue: str = ""
    agent: str = ""  # queue member name (interface when it has none)
    agent_interface: str = ""
    answered_at: float | None = None
    queued_at: float | None = None
    agent_connected_at: float | None = None
    ended_at: float | None = None
    hold_time: float | None = None
    talk_time: float | None = None
    on_hold_time: float = 0.0
    held_at: float | None = None
    disposition: Disposition = Disposition.UNKNOWN
    hangup_cause: int | None = None
    hangup_cause_txt: str = ""
    channels: frozenset[str] = frozenset()
    live_channels: frozenset[str] = frozenset()
    agents_ringing: int = 0
    talk_events: int = 0  # ChannelTalkingStart on the caller leg
    last_talk_at: float | None = None
    recording_started_at: float | None = None
    reconciled: bool = False  # fixed up by resync / close_stale: some events were not seen
    # The caller leg ran the hotline's dialplan (its CALL_ID channel variable was seen): an
    # agent's own outbound call or an internal call on the same PBX never does.
    hotline: bool = False


# A changed copy of a Call, built slot by slot: `transition` makes one per event on the AMI hot
# path (~38 per call). dataclasses.replace (which re-runs the keyword __init__ through `fields()`)
# cost ~8 us of it; a loop over the slots ~3.7 us; the straight-line copy below, generated once
# at import as dataclasses generates __init__, ~1.8 us. Call has no __post_init__: the result is
# the same (tests/unit/test_calls.py compares it with dataclasses.replace).
_FIELDS: Final = tuple(f.name for f in fields(Call))
_SETTERS: Final[dict[str, Callable[[Call, Any], None]]] = {
    name: Call.__dict__[name].__set__ for name in _FIELDS
}


def _make_with_changes() -> Callable[[Call, Mapping[str, Any]], Call]:
    lines = ["def with_changes(call, changes):", "    new = _new(_Call)"]
    lines += [f"    _set_{name}(new, call.{name})" for name in _FIELDS]
    lines += ["    for name, value in changes.items():", "        _setters[name](new, value)"]
    lines += ["    return new"]
    scope: dict[str, Any] = {"_new": object.__new__, "_Call": Call, "_setters": _SETTERS}
    scope.update({f"_set_{name}": setter for name, setter in _SETTERS.items()})
    exec("\n".join(lines), scope)  # noqa: S102 - fixed text built from Call's own field names
    made: Callable[[Call, Mapping[str, Any]], Call] = scope["with_changes"]
    made.__doc__ = "`dataclasses.replace(call, **changes)`, faster; `changes` names fields only."
    return made


with_changes: Final = _make_with_changes()


class _Changes(TypedDict, total=False):
    state: CallState
    updated_at: float
    caller_number: str
    caller_name: str
    caller_channel: str
    dialed_number: str
    caller_kind: str
    ivr_outcome: str
    queue: str
    agent: str
    agent_interface: str
    answered_at: float
    queued_at: float
    agent_connected_at: float
    hold_time: float
    talk_time: float
    on_hold_time: float
    held_at: float | None
    hangup_cause: int
    hangup_cause_txt: str
    channels: frozenset[str]
    live_channels: frozenset[str]
    agents_ringing: int
    talk_events: int
    hotline: bool
    last_talk_at: float
    recording_started_at: float


def dialed(exten: str) -> str:
    """`exten` if it can be the number the caller dialed, else ''."""
    return "" if exten in _NOT_DIALED else exten


def new_call(event: Newchannel) -> Call:
    """The call started by its caller leg's Newchannel (Uniqueid == Linkedid)."""
    up = event.channel_state == STATE_UP
    uid = frozenset({event.uniqueid})
    return Call(
        call_id=event.linkedid,
        state=CallState.IVR if up else CallState.RINGING,
        started_at=event.at,
        updated_at=event.at,
        caller_number=event.caller_number,
        caller_name=event.caller_name,
        caller_channel=event.channel,
        dialed_number=dialed(event.exten),
        caller_kind=event.vars.caller_kind,
        ivr_outcome=event.vars.ivr_outcome,
        answered_at=event.at if up else None,
        channels=uid,
        live_channels=uid,
    )


def disposition_of(call: Call) -> Disposition:
    """The disposition rules of this module's docstring, applied to what `call` knows now."""
    outcome = call.ivr_outcome.lower()
    decided = _OUTCOMES.get(outcome)
    if decided is not None:
        return decided
    if call.agent_connected_at is not None:
        return Disposition.ANSWERED
    if outcome.startswith("queue_"):
        return Disposition.NO_AGENT
    if call.queued_at is not None:
        return Disposition.ABANDONED
    if call.answered_at is not None:
        if call.hotline or outcome or call.reconciled:
            return Disposition.ABANDONED
        return Disposition.NOT_HOTLINE
    if call.reconciled:
        return Disposition.UNKNOWN
    return Disposition.FAILED


def end_call(call: Call, at: float, *, reconciled: bool = False) -> Call:
    """`call` ENDED at `at`: close open intervals, compute talk time and the disposition."""
    talk = call.talk_time
    if talk is None and call.agent_connected_at is not None:
        talk = max(0.0, at - call.agent_connected_at)
    on_hold = call.on_hold_time
    if call.held_at is not None:
        on_hold += max(0.0, at - call.held_at)
    ended = with_changes(
        call,
        {
            "state": CallState.ENDED,
            "ended_at": at,
            "updated_at": max(call.updated_at, at),
            "talk_time": talk,
            "on_hold_time": on_hold,
            "held_at": None,
            "live_channels": frozenset(),
            "agents_ringing": 0,
            "reconciled": call.reconciled or reconciled,
        },
    )
    return with_changes(ended, {"disposition": disposition_of(ended)})


def transition(call: Call, event: Event) -> Call:
    """Apply one event to its call. Pure: no I/O, no clock. Raises InvalidTransition."""
    state = call.state
    if state is CallState.ENDED:
        raise InvalidTransition(call.call_id, state, event)
    changes: _Changes = {"updated_at": event.at}
    target: CallState = state
    if isinstance(event, ChannelEvent):
        target = _channel_event(call, event, changes)
    elif isinstance(event, OriginateResponse) and event.uniqueid == call.call_id:
        # The Originate sent the caller leg to this extension of the hotline: for a Local
        # caller leg, the only place the dialed number appears (see the module docstring).
        number = dialed(event.exten)
        if number and not call.dialed_number:
            changes["dialed_number"] = number
    if target is not state:
        if target not in _ALLOWED[state]:
            raise InvalidTransition(call.call_id, state, event)
        changes["state"] = target
        if state is CallState.ON_HOLD and call.held_at is not None and target is not _S.ENDED:
            changes["on_hold_time"] = call.on_hold_time + max(0.0, event.at - call.held_at)
            changes["held_at"] = None
    new = with_changes(call, changes)
    return end_call(new, event.at) if target is CallState.ENDED else new


def _caller_leg(
    call: Call,
    changes: _Changes,
    at: float,
    channel_state: int,
    number: str,
    name: str,
    exten: str,
    chan_vars: ChanVars,
) -> None:
    # Fields of the record that come from the caller leg's snapshot, whichever event carries
    # it (its own events, or a DialEnd/AgentConnect where it is one of two channels).
    if number and number != call.caller_number:
        changes["caller_number"] = number
    if name and name != call.caller_name:
        changes["caller_name"] = name
    if exten and not call.dialed_number and exten not in _NOT_DIALED:
        changes["dialed_number"] = exten
    if chan_vars is not NO_VARS:
        if chan_vars.ivr_outcome and chan_vars.ivr_outcome != call.ivr_outcome:
            changes["ivr_outcome"] = chan_vars.ivr_outcome
        if chan_vars.caller_kind and chan_vars.caller_kind != call.caller_kind:
            changes["caller_kind"] = chan_vars.caller_kind
        if chan_vars.call_id and not call.hotline:
            changes["hotline"] = True
    if channel_state == STATE_UP and call.answered_at is None:
        changes["answered_at"] = at


def _channel_event(call: Call, ev: ChannelEvent, changes: _Changes) -> CallState:
    cid = call.call_id
    channels = call.channels
    live = call.live_channels
    uid = ev.uniqueid
    # A channel joins the call at its first sighting only: a hung-up agent leg that shows up
    # again as the Dest of a late AgentComplete must not come back to life.
    if uid and uid not in channels and ev.linkedid == cid:
        channels = channels | {uid}
        if not isinstance(ev, Hangup):
            live = live | {uid}
    if uid == cid:
        if ev.channel and ev.channel != call.caller_channel:
            changes["caller_channel"] = ev.channel
        _caller_leg(
            call, changes, ev.at, ev.channel_state, ev.caller_number, ev.caller_name, ev.exten,
            ev.vars,
        )  # fmt: skip
    if isinstance(ev, PeerEvent):
        duid = ev.dest_uniqueid
        if duid and duid not in channels and ev.dest_linkedid == cid:
            channels = channels | {duid}
            live = live | {duid}
        if duid == cid:
            _caller_leg(
                call,
                changes,
                ev.at,
                ev.dest_channel_state,
                ev.dest_caller_number,
                ev.dest_caller_name,
                ev.dest_exten,
                ev.dest_vars,
            )
    if channels is not call.channels:
        changes["channels"] = channels
        changes["live_channels"] = live
    target = _target(call, ev, changes, live)
    if target is CallState.RINGING and "answered_at" in changes:
        return CallState.IVR
    return target


def _talk_time(call: Call, at: float) -> float | None:
    # The connection with the agent ends `at`: measured from the events' Timestamps, not
    # AgentComplete's TalkTime (whole seconds, and after a Redirect it also counts the prompt).
    # None: the connect was not seen.
    if call.agent_connected_at is None:
        return None
    return max(0.0, at - call.agent_connected_at)


def _target(call: Call, ev: ChannelEvent, changes: _Changes, live: frozenset[str]) -> CallState:
    state = call.state
    is_caller = ev.uniqueid == call.call_id
    match ev:
        case Hangup():
            if is_caller:
                changes["hangup_cause"] = ev.cause
                changes["hangup_cause_txt"] = ev.cause_txt
            if ev.uniqueid in live:
                live = live - {ev.uniqueid}
                changes["live_channels"] = live
            if live:
                return state
            if call.hangup_cause is None and not is_caller:
                # The caller leg's own Hangup was not seen: the last one is the best we have.
                changes["hangup_cause"] = ev.cause
                changes["hangup_cause_txt"] = ev.cause_txt
            return CallState.ENDED
        case QueueCallerJoin():
            changes["queue"] = ev.queue
            if call.queued_at is None:
                changes["queued_at"] = ev.at
            return CallState.QUEUED
        case QueueCallerLeave():
            return CallState.IVR if state is CallState.QUEUED else state
        case QueueCallerAbandon():
            changes["hold_time"] = float(ev.hold_time)
            changes["agents_ringing"] = 0
            return CallState.IVR if state in _WAITING else state
        case AgentCalled():
            changes["agents_ringing"] = call.agents_ringing + 1
            return CallState.AGENT_RINGING
        case AgentRingNoAnswer():
            ringing = max(0, call.agents_ringing - 1)
            changes["agents_ringing"] = ringing
            if state is CallState.AGENT_RINGING and not ringing:
                return CallState.QUEUED
            return state
        case AgentConnect():
            changes["queue"] = ev.queue
            changes["agent"] = ev.member_name or ev.interface
            changes["agent_interface"] = ev.interface
            changes["agent_connected_at"] = ev.at
            changes["hold_time"] = float(ev.hold_time)
            changes["agents_ringing"] = 0
            return CallState.CONNECTED
        case AgentComplete():
            talk = _talk_time(call, ev.at) if state in _WITH_AGENT else call.talk_time
            # Without a measure (connect or end of the connection not seen): Asterisk's figure.
            changes["talk_time"] = float(ev.talk_time) if talk is None else talk
            if call.hold_time is None:
                changes["hold_time"] = float(ev.hold_time)
            return CallState.IVR if state in _WITH_AGENT else state
        case BridgeLeave() if is_caller and state in _WITH_AGENT:
            # Before AgentComplete: at a hangup the two come in either order; after a Redirect
            # AgentComplete comes only at the caller's final hangup.
            talk = _talk_time(call, ev.at)
            if talk is not None:
                changes["talk_time"] = talk
            return CallState.IVR
        case Hold() if state is CallState.CONNECTED:
            changes["held_at"] = ev.at
            return CallState.ON_HOLD
        case Unhold() if state is CallState.ON_HOLD:
            return CallState.CONNECTED
        case ChannelTalkingStart() if is_caller:
            changes["talk_events"] = call.talk_events + 1
            changes["last_talk_at"] = ev.at
        case MixMonitorStart() if is_caller and call.recording_started_at is None:
            changes["recording_started_at"] = ev.at
    return state
