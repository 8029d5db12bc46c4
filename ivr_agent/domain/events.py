"""Typed AMI events and `parse(frame)`: the only place that knows AMI header names.

Rules:

* `parse` returns None for events we do not model (VarSet, Newexten, TestEvent, RTCP...) after
  one dict lookup on the `Event` header: this runs for every frame, 10k+ per second.
* A modelled event with a missing required header or a non-numeric numeric header raises
  `MalformedEvent` (event name + header); the caller logs it and skips the frame. Optional
  headers fall back to explicit defaults, so one odd header never costs us a Hangup.
* `at` is the `Timestamp` header (`timestampevents = yes`). List-action replies
  (CoreShowChannel, QueueMember, QueueParams) and the adapter's markers carry none; they get
  the `now` passed to `parse`.
* Asterisk writes an empty caller ID as `<unknown>`, and a missing Uniqueid as `<null>` or (in
  a failed OriginateResponse, Asterisk 22.10) as `<unknown>`; all of these become `''`.
* An AgentComplete may lack the `Dest*` headers: after a Redirect (the silent line) Asterisk
  sends it at the caller's hangup, when the agent leg is long gone (recorded on 22.10); its
  `dest_uniqueid`/`dest_linkedid` are then `''`.
* `ChanVariable: NAME=value` headers arrive as keys `ChanVariable.NAME` (`DestChanVariable.NAME`
  for the second channel), as the AMI adapter normalises them; we keep the ones in `ChanVars`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from math import isfinite
from typing import Final, TypeVar

from ivr_agent.errors import IvrAgentError

# ChannelState 6 (AST_STATE_UP): the channel is answered.
STATE_UP: Final = 6


class MalformedEvent(IvrAgentError, ValueError):
    """A modelled event whose frame lacks a required header or has a bad value in one."""

    def __init__(self, event: str, header: str, value: str | None = None) -> None:
        if value is None:
            super().__init__(f"{event}: missing header {header!r}")
        else:
            super().__init__(f"{event}: bad value {value!r} for header {header!r}")
        self.event = event
        self.header = header
        self.value = value


@dataclass(frozen=True, slots=True, kw_only=True)
class ChanVars:
    """The manager.conf `channelvars` we read: CALL_ID, AGENT_ID, IVR_OUTCOME, CALLER_KIND."""

    call_id: str = ""
    agent_id: str = ""
    ivr_outcome: str = ""
    caller_kind: str = ""


NO_VARS: Final = ChanVars()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event; `at` is epoch seconds (UTC)."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent(Event):
    """An event about one channel, with Asterisk's channel snapshot."""

    uniqueid: str
    linkedid: str
    channel: str = ""
    channel_state: int = 0
    caller_number: str = ""
    caller_name: str = ""
    connected_number: str = ""
    connected_name: str = ""
    context: str = ""
    exten: str = ""
    vars: ChanVars = NO_VARS


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerEvent(ChannelEvent):
    """An event about two channels: the `Dest*` snapshot is the second one (dialed / agent)."""

    dest_uniqueid: str
    dest_linkedid: str
    dest_channel: str = ""
    dest_channel_state: int = 0
    dest_caller_number: str = ""
    dest_caller_name: str = ""
    dest_connected_number: str = ""
    dest_connected_name: str = ""
    dest_context: str = ""
    dest_exten: str = ""
    dest_vars: ChanVars = NO_VARS


@dataclass(frozen=True, slots=True, kw_only=True)
class Newchannel(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Newstate(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCallerid(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class NewConnectedLine(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DialBegin(PeerEvent):
    """An Originate's own dial has no calling channel: then `uniqueid`/`linkedid` are ''."""

    dial_string: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEnd(PeerEvent):
    dial_status: str = ""  # ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL, ...
    forward: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoin(ChannelEvent):
    queue: str
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeave(ChannelEvent):
    queue: str
    position: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandon(ChannelEvent):
    """The caller left the queue without an agent: hung up, or was Redirected (silent line)."""

    queue: str
    position: int = 0
    original_position: int = 0
    hold_time: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent(PeerEvent):
    """A queue event: the caller's snapshot plus the agent leg's as `Dest*`."""

    queue: str
    interface: str = ""
    member_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCalled(AgentEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnect(AgentEvent):
    hold_time: int = 0  # seconds the caller waited in the queue
    ring_time: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentComplete(AgentEvent):
    """The caller and the agent parted. After a Redirect it comes only at the caller's hangup,
    without the agent's `Dest*` snapshot, and its TalkTime then counts the time since the
    Redirect too (Asterisk 22.10)."""

    hold_time: int = 0
    talk_time: int = 0
    reason: str = ""  # caller | agent | transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer(AgentEvent):
    ring_time: int = 0  # milliseconds


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEvent(ChannelEvent):
    bridge_uniqueid: str
    bridge_type: str = ""
    bridge_num_channels: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEnter(BridgeEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeLeave(BridgeEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold(ChannelEvent):
    music_class: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unhold(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTalkingStart(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTalkingStop(ChannelEvent):
    duration_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MixMonitorStart(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class MixMonitorStop(ChannelEvent):
    """Only sent for an explicit StopMixMonitor, never at hangup."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannel(ChannelEvent):
    """One live channel in the CoreShowChannels reply (resync); `duration` in seconds."""

    application: str = ""
    application_data: str = ""
    bridge_id: str = ""
    duration: int = 0
    action_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Cdr(Event):
    """cdr_manager's record; times are the PBX's local time as text; no Linkedid by default."""

    uniqueid: str
    linkedid: str = ""
    source: str = ""
    destination: str = ""
    destination_context: str = ""
    caller_id: str = ""
    channel: str = ""
    destination_channel: str = ""
    last_application: str = ""
    start_time: str = ""
    answer_time: str = ""
    end_time: str = ""
    duration: int = 0
    billable_seconds: int = 0
    disposition: str = ""  # ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginateResponse(Event):
    """`uniqueid` is '' when the Originate failed; `exten` is where the channel was sent."""

    action_id: str
    response: str  # Success | Failure
    reason: int = 0  # 4 = answered, 5 = busy, 8 = congestion, 0/1/3 = no channel/no answer/ring
    uniqueid: str = ""
    channel: str = ""
    context: str = ""
    exten: str = ""
    caller_number: str = ""
    caller_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent(Event):
    """`UserEvent` from the dialplan (with a channel) or the AMI action; `fields`: every header."""

    name: str
    uniqueid: str = ""
    linkedid: str = ""
    channel: str = ""
    fields: tuple[tuple[str, str], ...] = ()

    def field(self, name: str, default: str = "") -> str:
        for key, value in self.fields:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True, kw_only=True)
class FullyBooted(Event):
    status: str = ""
    uptime: int = 0
    last_reload: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(Event):
    shutdown: str = ""  # Cleanly | Uncleanly
    restart: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParams(Event):
    queue: str
    max: int = 0
    strategy: str = ""
    calls: int = 0
    hold_time: int = 0
    talk_time: int = 0
    completed: int = 0
    abandoned: int = 0
    service_level: int = 0
    action_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMember(Event):
    queue: str
    name: str
    location: str = ""  # the interface, e.g. Local/agent1@lab-agents/n
    state_interface: str = ""
    membership: str = ""
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    in_call: bool = False
    status: int = 0  # AST_DEVICE_*: 1 not in use, 2 in use, 4 invalid, 5 unavailable, 6 ringing
    paused: bool = False
    paused_reason: str = ""
    action_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrAgentConnected(Event):
    """Adapter marker: logged in to AMI (again); the glue resyncs after it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrAgentDisconnected(Event):
    """Adapter marker: the AMI link is gone; events may be lost until the next connect."""

    reason: str = ""


# ---------------------------------------------------------------------------- parsing

Frame = Mapping[str, str]
_Parser = Callable[[Frame, str, float], Event]
_E = TypeVar("_E", bound=Event)

_UNKNOWN: Final = "<unknown>"
_NO_ID: Final = frozenset({"<null>", _UNKNOWN})
_VAR_KEYS: Final = tuple(
    f"ChanVariable.{n}" for n in ("CALL_ID", "AGENT_ID", "IVR_OUTCOME", "CALLER_KIND")
)
_DEST_VAR_KEYS: Final = tuple("Dest" + k for k in _VAR_KEYS)
# A channel snapshot: ChannelEvent's fields and the headers they come from, in field order.
_CHAN_FIELDS: Final = (
    "uniqueid", "linkedid", "channel", "channel_state", "caller_number", "caller_name",
    "connected_number", "connected_name", "context", "exten", "vars",
)  # fmt: skip
_DEST_FIELDS: Final = tuple(f"dest_{n}" for n in _CHAN_FIELDS)
_CHAN_HEADERS: Final = (
    "Uniqueid", "Linkedid", "Channel", "ChannelState", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Context", "Exten",
)  # fmt: skip
_DEST_HEADERS: Final = tuple("Dest" + h for h in _CHAN_HEADERS)


def _int(f: Frame, name: str, header: str) -> int:
    value = f.get(header)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        raise MalformedEvent(name, header, value) from None


def _hms(f: Frame, name: str, header: str) -> int:
    # CoreShowChannel's Duration is "HH:MM:SS" (hours may exceed 99).
    value = f.get(header, "")
    seconds = 0
    try:
        for part in value.split(":") if value else ():
            seconds = seconds * 60 + int(part)
    except ValueError:
        raise MalformedEvent(name, header, value) from None
    return seconds


def _cid(f: Frame, header: str) -> str:
    value = f.get(header, "")
    return "" if value == _UNKNOWN else value


def _vars(f: Frame, keys: tuple[str, ...]) -> ChanVars:
    call_id = f.get(keys[0], "")
    agent_id = f.get(keys[1], "")
    outcome = f.get(keys[2], "")
    kind = f.get(keys[3], "")
    if not (call_id or agent_id or outcome or kind):
        return NO_VARS  # most events before the dialplan sets anything: skip an allocation
    return ChanVars(call_id=call_id, agent_id=agent_id, ivr_outcome=outcome, caller_kind=kind)


def _snapshot(
    f: Frame, name: str, h: tuple[str, ...], var_keys: tuple[str, ...], required: bool
) -> tuple[object, ...]:
    # One channel's snapshot (headers `h`), values in _CHAN_FIELDS order. Inlined lookups: this
    # runs for almost every frame.
    get = f.get
    if required:
        uniqueid, linkedid = f[h[0]], f[h[1]]
    else:
        uniqueid, linkedid = get(h[0], ""), get(h[1], "")
    number, cid_name = get(h[4], ""), get(h[5], "")
    line_number, line_name = get(h[6], ""), get(h[7], "")
    return (
        uniqueid,
        linkedid,
        get(h[2], ""),
        _int(f, name, h[3]),
        "" if number == _UNKNOWN else number,
        "" if cid_name == _UNKNOWN else cid_name,
        "" if line_number == _UNKNOWN else line_number,
        "" if line_name == _UNKNOWN else line_name,
        get(h[8], ""),
        get(h[9], ""),
        _vars(f, var_keys),
    )


def _chan(f: Frame, name: str, *, required: bool = True) -> tuple[object, ...]:
    return _snapshot(f, name, _CHAN_HEADERS, _VAR_KEYS, required)


def _dest(f: Frame, name: str, *, required: bool = True) -> tuple[object, ...]:
    return _snapshot(f, name, _DEST_HEADERS, _DEST_VAR_KEYS, required)


def _member(f: Frame) -> tuple[str, str, str]:
    return f["Queue"], f.get("Interface", ""), f.get("MemberName", "")


def _maker(cls: type[_E], extras: tuple[str, ...] = ()) -> Callable[[tuple[object, ...]], _E]:
    """`make(values)`: a `cls` with every field set from `values`, in field order: `at`, the
    channel snapshot, the Dest snapshot (PeerEvent), then `extras`. Built slot by slot, not
    through the keyword __init__ (twice the cost, for almost every frame); the field order is
    checked here, at import, so a field added to an event must be added to its parser too."""
    names = tuple(f.name for f in fields(cls))
    dest = _DEST_FIELDS if issubclass(cls, PeerEvent) else ()
    if names != ("at", *_CHAN_FIELDS, *dest, *extras):
        raise TypeError(f"{cls.__name__}: the parser sets {extras}, the fields are {names}")
    setters = tuple(getattr(cls, n).__set__ for n in names)
    new = object.__new__

    def make(values: tuple[object, ...]) -> _E:
        event = new(cls)
        for set_slot, value in zip(setters, values, strict=True):
            set_slot(event, value)
        return event

    return make


def _plain(cls: type[ChannelEvent]) -> _Parser:
    make = _maker(cls)
    return lambda f, n, at: make((at, *_chan(f, n)))


def _bridge(cls: type[BridgeEvent]) -> _Parser:
    make = _maker(cls, ("bridge_uniqueid", "bridge_type", "bridge_num_channels"))
    return lambda f, n, at: make(
        (
            at,
            *_chan(f, n),
            f["BridgeUniqueid"],
            f.get("BridgeType", ""),
            _int(f, n, "BridgeNumChannels"),
        )
    )


def _queue_caller(cls: type[QueueCallerJoin | QueueCallerLeave]) -> _Parser:
    make = _maker(cls, ("queue", "position", "count"))
    return lambda f, n, at: make(
        (at, *_chan(f, n), f["Queue"], _int(f, n, "Position"), _int(f, n, "Count"))
    )


_MEMBER: Final = ("queue", "interface", "member_name")
_DIAL_BEGIN = _maker(DialBegin, ("dial_string",))
_DIAL_END = _maker(DialEnd, ("dial_status", "forward"))
_ABANDON = _maker(QueueCallerAbandon, ("queue", "position", "original_position", "hold_time"))
_CALLED = _maker(AgentCalled, _MEMBER)
_CONNECT = _maker(AgentConnect, (*_MEMBER, "hold_time", "ring_time"))
_COMPLETE = _maker(AgentComplete, (*_MEMBER, "hold_time", "talk_time", "reason"))
_RING_NO_ANSWER = _maker(AgentRingNoAnswer, (*_MEMBER, "ring_time"))
_HOLD = _maker(Hold, ("music_class",))
_TALK_STOP = _maker(ChannelTalkingStop, ("duration_ms",))
_HANGUP = _maker(Hangup, ("cause", "cause_txt"))
_CORE_SHOW = _maker(
    CoreShowChannel, ("application", "application_data", "bridge_id", "duration", "action_id")
)


def _originate_response(f: Frame, n: str, at: float) -> Event:
    uniqueid = f.get("Uniqueid", "")
    return OriginateResponse(
        at=at,
        action_id=f.get("ActionID", ""),
        response=f["Response"],
        reason=_int(f, n, "Reason"),
        uniqueid="" if uniqueid in _NO_ID else uniqueid,
        channel=f.get("Channel", ""),
        context=f.get("Context", ""),
        exten=f.get("Exten", ""),
        caller_number=_cid(f, "CallerIDNum"),
        caller_name=_cid(f, "CallerIDName"),
    )


def _user_event(f: Frame, n: str, at: float) -> Event:
    return UserEvent(
        at=at,
        name=f["UserEvent"],
        uniqueid=f.get("Uniqueid", ""),
        linkedid=f.get("Linkedid", ""),
        channel=f.get("Channel", ""),
        fields=tuple(f.items()),
    )


_PARSERS: Final[Mapping[str, _Parser]] = {
    "Newchannel": _plain(Newchannel),
    "Newstate": _plain(Newstate),
    "NewCallerid": _plain(NewCallerid),
    "NewConnectedLine": _plain(NewConnectedLine),
    "DialBegin": lambda f, n, at: _DIAL_BEGIN(
        (at, *_chan(f, n, required=False), *_dest(f, n), f.get("DialString", ""))
    ),
    "DialEnd": lambda f, n, at: _DIAL_END(
        (
            at,
            *_chan(f, n, required=False),
            *_dest(f, n),
            f.get("DialStatus", ""),
            f.get("Forward", ""),
        )
    ),
    "QueueCallerJoin": _queue_caller(QueueCallerJoin),
    "QueueCallerLeave": _queue_caller(QueueCallerLeave),
    "QueueCallerAbandon": lambda f, n, at: _ABANDON(
        (
            at,
            *_chan(f, n),
            f["Queue"],
            _int(f, n, "Position"),
            _int(f, n, "OriginalPosition"),
            _int(f, n, "HoldTime"),
        )
    ),
    "AgentCalled": lambda f, n, at: _CALLED((at, *_chan(f, n), *_dest(f, n), *_member(f))),
    "AgentConnect": lambda f, n, at: _CONNECT(
        (
            at,
            *_chan(f, n),
            *_dest(f, n),
            *_member(f),
            _int(f, n, "HoldTime"),
            _int(f, n, "RingTime"),
        )
    ),
    "AgentComplete": lambda f, n, at: _COMPLETE(
        (
            at,
            # When both legs are already gone Asterisk sends neither channel's headers: such
            # an event names no call (and the book ignores it) rather than being malformed.
            *_chan(f, n, required=False),
            *_dest(f, n, required=False),
            *_member(f),
            _int(f, n, "HoldTime"),
            _int(f, n, "TalkTime"),
            f.get("Reason", ""),
        )
    ),
    "AgentRingNoAnswer": lambda f, n, at: _RING_NO_ANSWER(
        (at, *_chan(f, n), *_dest(f, n), *_member(f), _int(f, n, "RingTime"))
    ),
    "BridgeEnter": _bridge(BridgeEnter),
    "BridgeLeave": _bridge(BridgeLeave),
    "Hold": lambda f, n, at: _HOLD((at, *_chan(f, n), f.get("MusicClass", ""))),
    "Unhold": _plain(Unhold),
    "ChannelTalkingStart": _plain(ChannelTalkingStart),
    "ChannelTalkingStop": lambda f, n, at: _TALK_STOP((at, *_chan(f, n), _int(f, n, "Duration"))),
    "MixMonitorStart": _plain(MixMonitorStart),
    "MixMonitorStop": _plain(MixMonitorStop),
    "Hangup": lambda f, n, at: _HANGUP(
        (at, *_chan(f, n), _int(f, n, "Cause"), f.get("Cause-txt", ""))
    ),
    "CoreShowChannel": lambda f, n, at: _CORE_SHOW(
        (
            at,
            *_chan(f, n),
            f.get("Application", ""),
            f.get("ApplicationData", ""),
            f.get("BridgeId", ""),
            _hms(f, n, "Duration"),
            f.get("ActionID", ""),
        )
    ),
    "Cdr": lambda f, n, at: Cdr(
        at=at,
        uniqueid=f["UniqueID"],
        linkedid=f.get("Linkedid", ""),
        source=f.get("Source", ""),
        destination=f.get("Destination", ""),
        destination_context=f.get("DestinationContext", ""),
        caller_id=f.get("CallerID", ""),
        channel=f.get("Channel", ""),
        destination_channel=f.get("DestinationChannel", ""),
        last_application=f.get("LastApplication", ""),
        start_time=f.get("StartTime", ""),
        answer_time=f.get("AnswerTime", ""),
        end_time=f.get("EndTime", ""),
        duration=_int(f, n, "Duration"),
        billable_seconds=_int(f, n, "BillableSeconds"),
        disposition=f.get("Disposition", ""),
    ),
    "OriginateResponse": _originate_response,
    "UserEvent": _user_event,
    "FullyBooted": lambda f, n, at: FullyBooted(
        at=at,
        status=f.get("Status", ""),
        uptime=_int(f, n, "Uptime"),
        last_reload=_int(f, n, "LastReload"),
    ),
    "Shutdown": lambda f, n, at: Shutdown(
        at=at, shutdown=f.get("Shutdown", ""), restart=f.get("Restart", "").lower() == "true"
    ),
    "QueueParams": lambda f, n, at: QueueParams(
        at=at,
        queue=f["Queue"],
        max=_int(f, n, "Max"),
        strategy=f.get("Strategy", ""),
        calls=_int(f, n, "Calls"),
        hold_time=_int(f, n, "Holdtime"),
        talk_time=_int(f, n, "TalkTime"),
        completed=_int(f, n, "Completed"),
        abandoned=_int(f, n, "Abandoned"),
        service_level=_int(f, n, "ServiceLevel"),
        action_id=f.get("ActionID", ""),
    ),
    "QueueMember": lambda f, n, at: QueueMember(
        at=at,
        queue=f["Queue"],
        name=f["Name"],
        location=f.get("Location", ""),
        state_interface=f.get("StateInterface", ""),
        membership=f.get("Membership", ""),
        penalty=_int(f, n, "Penalty"),
        calls_taken=_int(f, n, "CallsTaken"),
        last_call=_int(f, n, "LastCall"),
        in_call=_int(f, n, "InCall") != 0,
        status=_int(f, n, "Status"),
        paused=_int(f, n, "Paused") != 0,
        paused_reason=f.get("PausedReason", ""),
        action_id=f.get("ActionID", ""),
    ),
    "IvrAgentConnected": lambda f, n, at: IvrAgentConnected(at=at),
    "IvrAgentDisconnected": lambda f, n, at: IvrAgentDisconnected(
        at=at, reason=f.get("Reason", "")
    ),
}
# The Event names parse() turns into events; every other name yields None.
MODELLED: Final = frozenset(_PARSERS)


def parse(frame: Mapping[str, str], now: float = 0.0) -> Event | None:
    """One AMI frame -> a typed event, or None if we do not model it (or it is a Response).

    `now` is the `at` of frames without a Timestamp; pass the clock. Raises MalformedEvent.
    """
    name = frame.get("Event")
    if name is None:
        return None
    parser = _PARSERS.get(name)
    if parser is None:
        return None
    stamp = frame.get("Timestamp")
    if stamp is None:
        at = now
    else:
        try:
            at = float(stamp)
        except ValueError:
            raise MalformedEvent(name, "Timestamp", stamp) from None
        if not isfinite(at):  # float() accepts "nan"/"inf": no use as a time
            raise MalformedEvent(name, "Timestamp", stamp)
    try:
        return parser(frame, name, at)
    except KeyError as err:
        # Required headers are read as frame["Header"]: the KeyError names the missing one.
        raise MalformedEvent(name, str(err.args[0])) from None
