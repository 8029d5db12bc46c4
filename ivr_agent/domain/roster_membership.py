"""Queue membership that follows the roster: what to add, remove, pause and unpause now.

Pure code: `plan_membership(roster, now, queue_status)` compares who should be in each managed
queue at `now` with what Asterisk reports (QueueStatus, or the state kept from QueueMember*
events) and returns the changes, in the order to apply them:

    ADD      an agent on duty is not a member (added paused if on a break)
    UNPAUSE  back from a break (only pauses the roster made: see `ROSTER_PAUSE_PREFIX`)
    PAUSE    a break starts; or the shift ended during a call (no new call meanwhile);
             or a static member (queues.conf) is off duty: it cannot be removed
    REMOVE   off duty, or not an agent at all; `after_call=True` while the member is on a call

Adds come first so that a queue is never empty at a handover. A REMOVE with `after_call=True`
is not to be sent yet: the glue waits for the member's call to end (QueueMemberStatus InCall 0,
AgentComplete) and plans again, which then gives the same REMOVE with `after_call=False`.

Which queues: an on-duty agent joins its `Agent.queues`, except the `leader_queues`, which
only the shift leaders on duty join (whatever their own queues say). Queues outside `queues`
are never touched. O(members + agents on duty x queues).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

from ivr_agent.domain.roster import Duty, Role, Roster

# PausedReason of the pauses the roster makes; an agent's own pause (any other reason) is left
# alone while on duty: the agent unpauses it.
ROSTER_PAUSE_PREFIX: Final = "roster:"
DEFAULT_LEADER_QUEUES: Final = ("leaders",)


class Action(enum.Enum):
    ADD = "add"
    UNPAUSE = "unpause"
    PAUSE = "pause"
    REMOVE = "remove"


class Why(enum.Enum):
    ON_DUTY = "on_duty"  # shift started (or reconcile found the agent missing)
    BREAK = "break"
    BREAK_OVER = "break_over"
    OFF_DUTY = "off_duty"  # shift ended, not rostered for this queue, or agent inactive
    NOT_AN_AGENT = "not_an_agent"  # an interface no agent has


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One queue member as Asterisk reports it (QueueMember event)."""

    queue: str
    interface: str
    name: str = ""  # MemberName
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False  # InCall: 1
    static: bool = False  # Membership: static (queues.conf): QueueRemove refuses it


@dataclass(frozen=True, slots=True)
class MembershipChange:
    action: Action
    queue: str
    interface: str
    member: str  # MemberName to use: the agent's name (or what Asterisk has)
    why: Why
    paused: bool = False  # ADD: add it paused (the agent is on a break)
    after_call: bool = False  # REMOVE: wait for the member's current call to end

    @property
    def pause_reason(self) -> str:
        """The PausedReason for a PAUSE, or an ADD with paused=True."""
        return ROSTER_PAUSE_PREFIX + self.why.value


_ORDER: Final = {Action.ADD: 0, Action.UNPAUSE: 1, Action.PAUSE: 2, Action.REMOVE: 3}


def desired_queues(
    duty: Duty, queues: Collection[str], leader_queues: Collection[str] = DEFAULT_LEADER_QUEUES
) -> frozenset[str]:
    """The managed queues an agent on duty belongs in."""
    own = {q for q in duty.agent.queues if q not in leader_queues}
    if duty.role is Role.LEADER:
        own.update(leader_queues)
    return frozenset(q for q in own if q in queues)


def plan_membership(
    roster: Roster,
    now: float,
    queue_status: Iterable[MemberStatus],
    *,
    queues: Collection[str] | None = None,
    leader_queues: Collection[str] = DEFAULT_LEADER_QUEUES,
) -> list[MembershipChange]:
    """The changes that make each managed queue's members equal the agents on duty at `now`.

    `queues` are the queues the roster manages (the hotline's; None: every queue an agent
    names, and the leader queues). An empty list means nothing is to be done.
    """
    managed = (
        frozenset(queues)
        if queues is not None
        else frozenset(leader_queues).union(*(a.queues for a in roster.agents.values()))
    )
    on_duty = {d.agent.interface: d for d in roster.on_duty(now)}
    want = {
        (q, iface): d
        for iface, d in on_duty.items()
        for q in desired_queues(d, managed, leader_queues)
    }
    names = {a.interface: a.name for a in roster.agents.values()}
    changes: list[MembershipChange] = []
    have: set[tuple[str, str]] = set()
    for m in queue_status:
        key = (m.queue, m.interface)
        if m.queue not in managed or key in have:
            continue
        have.add(key)
        duty = want.get(key)
        if duty is not None:
            changes.extend(_keep(m, duty))
        else:
            changes.extend(_drop(m, names.get(m.interface)))
    for (q, iface), duty in want.items():
        if (q, iface) not in have:
            why = Why.BREAK if duty.on_break else Why.ON_DUTY
            changes.append(
                MembershipChange(Action.ADD, q, iface, duty.agent.name, why, paused=duty.on_break)
            )
    changes.sort(key=lambda c: (_ORDER[c.action], c.queue, c.member, c.interface))
    return changes


def _keep(m: MemberStatus, duty: Duty) -> list[MembershipChange]:
    """A member who should be there: only its pause may need changing."""
    ours = m.paused and m.paused_reason.startswith(ROSTER_PAUSE_PREFIX)
    if duty.on_break and not m.paused:
        return [MembershipChange(Action.PAUSE, m.queue, m.interface, duty.agent.name, Why.BREAK)]
    if not duty.on_break and ours:
        was_break = m.paused_reason == ROSTER_PAUSE_PREFIX + Why.BREAK.value
        why = Why.BREAK_OVER if was_break else Why.ON_DUTY
        return [MembershipChange(Action.UNPAUSE, m.queue, m.interface, duty.agent.name, why)]
    return []


def _drop(m: MemberStatus, agent: str | None) -> list[MembershipChange]:
    """A member who should not be there: remove it, after its call; pause what cannot go."""
    why = Why.OFF_DUTY if agent is not None else Why.NOT_AN_AGENT
    name = agent or m.name
    pause = MembershipChange(Action.PAUSE, m.queue, m.interface, name, why)
    if m.static:
        return [] if m.paused else [pause]
    if not m.in_call:
        return [MembershipChange(Action.REMOVE, m.queue, m.interface, name, why)]
    later = MembershipChange(Action.REMOVE, m.queue, m.interface, name, why, after_call=True)
    return [later] if m.paused else [pause, later]
