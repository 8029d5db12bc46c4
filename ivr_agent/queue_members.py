"""The AMI side of the roster: read queue members (QueueStatus), apply membership changes.

Thin: `members()` turns QueueMember events into `MemberStatus`, `apply()` sends one
QueueAdd/QueueRemove/QueuePause per change, `set_open()` sets the dialplan's global
IVR_AGENT_OPEN_<queue> (Setvar without a Channel sets a global). Changes go out concurrently
(bounded): 200 agents x 5 queues is 1000 actions, about 1 ms each on loopback when sent one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import structlog

from ivr_agent.domain.events import MalformedEvent, QueueMember, parse
from ivr_agent.domain.roster_membership import Action, MembershipChange, MemberStatus
from ivr_agent.errors import AmiActionFailed, AmiError
from ivr_agent.store.roster import append_audit
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

OPEN_VARIABLE: Final = "IVR_AGENT_OPEN"
ACTIONS: Final = {
    Action.ADD: "queue_member_added",
    Action.REMOVE: "queue_member_removed",
    Action.PAUSE: "queue_member_paused",
    Action.UNPAUSE: "queue_member_unpaused",
}
_STATUS_TIMEOUT: Final = 5.0
_ACTION_TIMEOUT: Final = 3.0
_CONCURRENCY: Final = 64
# Replies that mean the member already is as we want it (a second service, a race, a retry).
_ALREADY: Final = ("already there", "not there", "not in queue", "interface not found")


class AmiSender(Protocol):
    async def send(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109  # AmiClient's per-action deadline
    ) -> Mapping[str, str]: ...

    async def send_list(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Sequence[Mapping[str, str]]: ...


@dataclass(frozen=True, slots=True)
class Applied:
    change: MembershipChange
    ok: bool
    error: str = ""


async def members(ami: AmiSender, now: float) -> list[MemberStatus]:
    """Every member of every queue, as Asterisk has them now."""
    frames = await ami.send_list({"Action": "QueueStatus"}, timeout=_STATUS_TIMEOUT)
    out: list[MemberStatus] = []
    for frame in frames:
        try:
            ev = parse(frame, now)
        except MalformedEvent:
            continue
        if isinstance(ev, QueueMember):
            out.append(
                MemberStatus(
                    queue=ev.queue,
                    interface=ev.location or ev.state_interface,
                    name=ev.name,
                    paused=ev.paused,
                    paused_reason=ev.paused_reason,
                    in_call=ev.in_call,
                    static=ev.membership == "static",
                )
            )
    return out


def action_of(c: MembershipChange) -> list[dict[str, str]]:
    """The AMI actions for one change (a paused add is an add, then a pause with its reason)."""
    if c.action is Action.ADD:
        add = {
            "Action": "QueueAdd",
            "Queue": c.queue,
            "Interface": c.interface,
            "MemberName": c.member,
            "Paused": "true" if c.paused else "false",
        }
        if not c.paused:
            return [add]
        return [add, _pause(c, True)]
    if c.action is Action.REMOVE:
        return [{"Action": "QueueRemove", "Queue": c.queue, "Interface": c.interface}]
    return [_pause(c, c.action is Action.PAUSE)]


def _pause(c: MembershipChange, paused: bool) -> dict[str, str]:
    action = {
        "Action": "QueuePause",
        "Queue": c.queue,
        "Interface": c.interface,
        "Paused": "true" if paused else "false",
    }
    if paused:
        action["Reason"] = c.pause_reason
    return action


async def apply(ami: AmiSender, changes: Sequence[MembershipChange]) -> list[Applied]:
    """Send every change (adds first: the plan's order is kept per member), return outcomes."""
    sem = asyncio.Semaphore(_CONCURRENCY)

    async def one(c: MembershipChange) -> Applied:
        async with sem:
            for action in action_of(c):
                try:
                    await ami.send(action, timeout=_ACTION_TIMEOUT)
                except AmiActionFailed as err:
                    if not any(s in err.message.lower() for s in _ALREADY):
                        return Applied(c, False, str(err))
                except AmiError as err:
                    return Applied(c, False, str(err))
            return Applied(c, True)

    adds = [c for c in changes if c.action is Action.ADD]
    rest = [c for c in changes if c.action is not Action.ADD]
    # Adds complete before any removal starts: a queue is never empty at a handover.
    done = list(await asyncio.gather(*(one(c) for c in adds)))
    done += await asyncio.gather(*(one(c) for c in rest))
    return done


def open_variable(queue: str) -> str:
    return f"{OPEN_VARIABLE}_{queue}"


async def set_open(ami: AmiSender, queue: str, is_open: bool) -> None:
    """The dialplan's IVR_AGENT_OPEN_<queue> global: 1 someone is on duty, 0 nobody."""
    await ami.send(
        {"Action": "Setvar", "Variable": open_variable(queue), "Value": "1" if is_open else "0"},
        timeout=_ACTION_TIMEOUT,
    )


async def record(db: Db, done: Sequence[Applied], *, who: str, at: float) -> int:
    """Log each applied change and append it to roster_audit (one transaction); the last id."""
    for a in done:
        c = a.change
        fields = {"queue": c.queue, "interface": c.interface, "agent": c.member, "why": c.why.value}
        if a.ok:
            log.info(ACTIONS[c.action], **fields)
        else:
            log.warning(ACTIONS[c.action] + "_failed", error=a.error, **fields)
    if not done:
        return 0
    async with db.write() as conn:
        for a in done:
            c = a.change
            detail: dict[str, object] = {
                "queue": c.queue,
                "interface": c.interface,
                "agent": c.member,
                "why": c.why.value,
                "ok": a.ok,
            }
            if a.error:
                detail["error"] = a.error
            await append_audit(conn, who=who, action=ACTIONS[c.action], detail=detail, at=at)
        cur = await conn.execute("SELECT max(id) FROM roster_audit")
        row = await cur.fetchone()
    return int(row[0] or 0) if row else 0
