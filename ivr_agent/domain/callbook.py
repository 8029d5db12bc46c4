"""CallBook: every live call, fed one event at a time; resync after a reconnect; close_stale.

Rules:

* A call starts with the Newchannel of its caller leg (Uniqueid == Linkedid). Events for
  other Linkedids that the book does not know are ignored (None): calls that started before
  the service did come in through `resync`, not through a stray event.
* Events without a Linkedid (Cdr, OriginateResponse, a UserEvent sent through AMI) find their
  call through the Uniqueid -> Linkedid map of the live calls.
* A call leaves the book when it ENDED (all its channels hung up). Late events for it (the
  Cdr records, a Hangup repeated) then find no call and are ignored.
* `IvrAgentConnected` opens a resync window: every channel the book holds is "unconfirmed"
  until an event names it. The glue applies the marker, asks Asterisk for CoreShowChannels,
  and hands the reply to `resync`:
  - an unconfirmed channel that Asterisk no longer has hung up while we were away; a call left
    with no live channel is closed: `reconciled`, ended when the link dropped (the call was
    still alive then, or we would have seen its Hangup), disposition from what is known;
  - channels Asterisk has that the book does not are added; a Linkedid the book does not know
    (and did not just end) becomes a new call, `reconciled`, built from the snapshot;
  - a call none of whose channels spoke since the reconnect takes its state from the snapshot
    (the caller leg's application and bridge); otherwise the events since are newer.
  Without the marker, `resync` treats every channel as unconfirmed.
* For calls Asterisk has but whose milestones we missed, the missing milestone times
  (answered_at, queued_at, agent_connected_at) are the resync time: when we learned of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Final

from ivr_agent.domain.calls import Call, CallState, dialed, end_call, new_call, transition
from ivr_agent.domain.events import (
    STATE_UP,
    Cdr,
    ChannelEvent,
    CoreShowChannel,
    Event,
    IvrAgentConnected,
    IvrAgentDisconnected,
    Newchannel,
    OriginateResponse,
    PeerEvent,
    UserEvent,
)

_S = CallState
_EARLY_MAX: Final = 256  # OriginateResponses kept waiting for their Newchannel
# A snapshot cannot see a hold or a ringing agent: these book states agree with it.
_AGREES: Final = frozenset({(_S.ON_HOLD, _S.CONNECTED), (_S.AGENT_RINGING, _S.QUEUED)})


@dataclass(frozen=True, slots=True)
class CallChange:
    """What one event (or a resync, `event` None) did to one call; the glue logs and saves it."""

    call: Call
    state_from: CallState | None  # None: the call is new to the book
    state_to: CallState
    ended: bool
    event: Event | None

    @property
    def state_changed(self) -> bool:
        return self.state_from is not self.state_to


class CallBook:
    """The live calls by Linkedid. Mutable but pure: no I/O, no clock."""

    __slots__ = (
        "_calls", "_early", "_ended", "_ended_max", "_linked", "_lost_at", "_unconfirmed",
    )  # fmt: skip

    def __init__(self, *, ended_memory: int = 10_000) -> None:
        self._calls: dict[str, Call] = {}
        self._linked: dict[str, str] = {}  # Uniqueid -> Linkedid, channels of live calls
        # Linkedids ended lately (oldest first): a resync snapshot taken just before their
        # last Hangup must not bring them back as new calls.
        self._ended: dict[str, None] = {}
        self._ended_max = ended_memory
        self._unconfirmed: set[str] | None = None  # the resync window, see the module doc
        # OriginateResponses that came before their channel's Newchannel (Asterisk sends them
        # straight from the originating thread, so they can overtake the channel's own events
        # on a busy PBX): applied when that channel starts its call. Oldest dropped first.
        self._early: dict[str, OriginateResponse] = {}
        self._lost_at: float | None = None  # when the AMI link dropped

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._calls.values()))

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def apply(self, event: Event) -> CallChange | None:
        """Feed one event. None: it concerns no call of the book. Raises InvalidTransition."""
        if isinstance(event, ChannelEvent):
            if isinstance(event, CoreShowChannel):
                return None  # a resync reply, not news: see resync()
            lid = event.linkedid
            if not lid and isinstance(event, PeerEvent):
                lid = event.dest_linkedid  # an Originate's DialBegin/End: only Dest channel
            call = self._calls.get(lid)
            if call is None:
                if isinstance(event, Newchannel) and event.uniqueid == lid:
                    return self._start(event)
                return None
            window = self._unconfirmed
            if window:
                window.discard(event.uniqueid)
                if isinstance(event, PeerEvent):
                    window.discard(event.dest_uniqueid)
        elif isinstance(event, IvrAgentConnected):
            self._unconfirmed = {u for c in self._calls.values() for u in c.live_channels}
            return None
        elif isinstance(event, IvrAgentDisconnected):
            self._lost_at = event.at
            return None
        elif isinstance(event, Cdr | UserEvent):
            call = self._calls.get(event.linkedid or self._linked.get(event.uniqueid, ""))
        elif isinstance(event, OriginateResponse):
            call = self._calls.get(self._linked.get(event.uniqueid, ""))
            if call is None and event.uniqueid and event.uniqueid not in self._ended:
                self._early[event.uniqueid] = event
                if len(self._early) > _EARLY_MAX:
                    del self._early[next(iter(self._early))]
                return None
        else:
            return None  # FullyBooted, Shutdown, QueueMember, ...: not about a call
        if call is None:
            return None
        new = transition(call, event)
        self._store(call, new)
        return CallChange(new, call.state, new.state, new.state is _S.ENDED, event)

    def resync(self, live_channels: Iterable[CoreShowChannel], now: float) -> list[CallChange]:
        """Reconcile with Asterisk's CoreShowChannels reply; see the module docstring."""
        snapshots: dict[str, list[CoreShowChannel]] = {}
        for snap in live_channels:
            snapshots.setdefault(snap.linkedid, []).append(snap)
        alive = {s.uniqueid for snaps in snapshots.values() for s in snaps}
        window = self._unconfirmed
        lost_at = now if self._lost_at is None else min(self._lost_at, now)
        changes: list[CallChange] = []
        for call in list(self._calls.values()):
            snaps = snapshots.pop(call.call_id, [])
            live = call.live_channels
            quiet = live if window is None else live & window  # not heard of since reconnect
            gone = frozenset(u for u in quiet if u not in alive)
            fresh = frozenset(s.uniqueid for s in snaps) - call.channels
            if gone == live and not fresh:
                ended = end_call(call, max(call.updated_at, lost_at), reconciled=True)
                self._store(call, ended)
                changes.append(CallChange(ended, call.state, _S.ENDED, True, None))
                continue
            new = call
            if gone or fresh:
                new = replace(
                    call,
                    channels=call.channels | fresh,
                    live_channels=(live - gone) | fresh,
                    reconciled=True,
                )
            caller = _caller_snapshot(call.call_id, snaps)
            if caller is not None and quiet == live:
                state = snapshot_state(caller)
                if state is not new.state and (new.state, state) not in _AGREES:
                    new = _at_state(replace(new, reconciled=True), state, caller, now)
            if new is not call:
                self._store(call, new)
                changes.append(CallChange(new, call.state, new.state, False, None))
        for call_id, snaps in snapshots.items():
            if call_id not in self._ended:
                call = call_from_snapshot(snaps, now)
                self._calls[call_id] = call
                self._link(call.channels, call_id)
                changes.append(CallChange(call, None, call.state, False, None))
        self._unconfirmed = None
        self._lost_at = None
        return changes

    def restore(self, calls: Iterable[Call]) -> None:
        """Adopt calls saved before a restart that are still open (see close_stale)."""
        for call in calls:
            if call.state is not _S.ENDED:
                self._calls[call.call_id] = call
                self._link(call.channels, call.call_id)
                if self._unconfirmed is not None:
                    self._unconfirmed |= call.live_channels

    def _start(self, event: Newchannel) -> CallChange:
        call = new_call(event)
        early = self._early.pop(event.uniqueid, None) if self._early else None
        if early is not None:
            call = transition(call, early)
        self._calls[call.call_id] = call
        self._linked[event.uniqueid] = call.call_id
        return CallChange(call, None, call.state, False, event)

    def _store(self, old: Call, new: Call) -> None:
        call_id = new.call_id
        if new.state is _S.ENDED:
            del self._calls[call_id]
            for uid in new.channels:
                self._linked.pop(uid, None)
            self._ended[call_id] = None
            if len(self._ended) > self._ended_max:
                del self._ended[next(iter(self._ended))]
            return
        self._calls[call_id] = new
        if new.channels is not old.channels:
            self._link(new.channels - old.channels, call_id)

    def _link(self, uids: Iterable[str], call_id: str) -> None:
        for uid in uids:
            self._linked[uid] = call_id


def _caller_snapshot(call_id: str, snaps: Sequence[CoreShowChannel]) -> CoreShowChannel | None:
    for snap in snaps:
        if snap.uniqueid == call_id:
            return snap
    return None


def snapshot_state(caller: CoreShowChannel) -> CallState:
    """The state a CoreShowChannel of the caller leg shows. Hold and ringing agents are
    invisible in it: ON_HOLD reads as CONNECTED, AGENT_RINGING as QUEUED."""
    if caller.bridge_id:
        return _S.CONNECTED
    if caller.application == "Queue":
        return _S.QUEUED
    return _S.IVR if caller.channel_state == STATE_UP else _S.RINGING


def _at_state(call: Call, state: CallState, caller: CoreShowChannel, now: float) -> Call:
    # Move a reconciled call to `state`, filling the milestones it implies with `now`.
    answered = call.answered_at
    if answered is None and caller.channel_state == STATE_UP:
        answered = now
    queued = call.queued_at
    queue = call.queue
    if caller.application == "Queue":
        queued = now if queued is None else queued
        queue = queue or caller.application_data.split(",", 1)[0]
    connected = call.agent_connected_at
    if state is _S.CONNECTED and connected is None:
        connected = now
    on_hold = call.on_hold_time
    if call.held_at is not None:
        on_hold += max(0.0, now - call.held_at)  # the Unhold was missed: count up to now
    return replace(
        call,
        state=state,
        answered_at=answered,
        queued_at=queued,
        queue=queue,
        agent_connected_at=connected,
        agents_ringing=0,
        on_hold_time=on_hold,
        held_at=None,
        updated_at=max(call.updated_at, now),
    )


def call_from_snapshot(snaps: Sequence[CoreShowChannel], now: float) -> Call:
    """A call the book did not know, from its live channels (all with the same Linkedid)."""
    call_id = snaps[0].linkedid
    caller = _caller_snapshot(call_id, snaps)
    # Without the caller leg (it hung up, agent legs linger) an agent leg's connected line
    # is the caller.
    first = snaps[0]
    number = caller.caller_number if caller else first.connected_number
    name = caller.caller_name if caller else first.connected_name
    uids = frozenset(s.uniqueid for s in snaps)
    agent = next((s.vars.agent_id for s in snaps if s.vars.agent_id), "")
    call = Call(
        call_id=call_id,
        state=_S.RINGING,
        started_at=now - max(s.duration for s in snaps),
        updated_at=now,
        caller_number=number,
        caller_name=name,
        caller_channel=caller.channel if caller else "",
        dialed_number=dialed(caller.exten) if caller else "",
        caller_kind=caller.vars.caller_kind if caller else "",
        ivr_outcome=caller.vars.ivr_outcome if caller else "",
        hotline=bool(caller.vars.call_id) if caller else False,
        agent=agent,
        channels=uids,
        live_channels=uids,
        reconciled=True,
    )
    state = snapshot_state(caller or first)
    return _at_state(call, state, caller or first, now)


def close_stale(calls: Iterable[Call], live_call_ids: set[str], now: float) -> list[Call]:
    """After a restart: the open `calls` (from the store) that Asterisk no longer has, ENDED
    at `now` (the service cannot know when), `reconciled`, disposition from what is known."""
    return [
        end_call(c, max(c.updated_at, now), reconciled=True)
        for c in calls
        if c.state is not _S.ENDED and c.call_id not in live_call_ids
    ]
