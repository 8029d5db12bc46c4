"""The shift leader button: transfer the caller of an agent's call to the on-duty shift leader.

A transfer, not a three-way call: the caller leg is Redirected to the dialplan's
[ivr-agent-leader] (Queue(leaders)), which releases the agent's leg. With the Local channels of
the lab, and with any phone, this needs nothing but the Redirect the service already uses for the
silent line; a ConfBridge three-way would need the agent leg moved too and the leader originated
into the bridge. NoLeaderOnDuty (HTTP 409) when no leader is on duty: the caller is left with the
agent, nothing is sent to Asterisk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import aiosqlite
import structlog

from ivr_agent import queue_members
from ivr_agent.domain.roster import MAX_SHIFT_SECONDS
from ivr_agent.errors import AmiActionFailed, IvrAgentError
from ivr_agent.store.roster import load_roster

log = structlog.get_logger(__name__)

LEADER_CONTEXT: Final = "ivr-agent-leader"
_REDIRECT_TIMEOUT: Final = 3.0


class NoLeaderOnDuty(IvrAgentError):
    """No shift leader is on duty now."""


class ShiftLeader:
    """Finds the on-duty shift leader in the roster and transfers a caller to the leaders."""

    def __init__(
        self,
        ami: queue_members.AmiSender,
        conn: Callable[[], aiosqlite.Connection],
        clock: Callable[[], float],
    ) -> None:
        self._ami = ami
        self._conn = conn  # the roster loop's connection, once it is open
        self._clock = clock

    async def bring(self, call_id: str, channel: str, *, by: str) -> str:
        """Transfer the caller of `call_id` (leg `channel`) to the shift leaders' queue; the
        on-duty leader's name. NoLeaderOnDuty, or AmiError when the Redirect fails."""
        leader = await self.available()
        if not channel:
            raise AmiActionFailed("Redirect", f"no live caller channel for call {call_id}")
        await self._ami.send(
            {
                "Action": "Redirect",
                "Channel": channel,
                "Context": LEADER_CONTEXT,
                "Exten": "s",
                "Priority": "1",
            },
            timeout=_REDIRECT_TIMEOUT,
        )
        log.info("leader_transfer", call_id=call_id, agent=by, leader=leader, channel=channel)
        return leader

    async def available(self) -> str:
        """The on-duty shift leader's name; NoLeaderOnDuty when there is none."""
        now = self._clock()
        roster = await load_roster(self._conn(), now - MAX_SHIFT_SECONDS, now + 1)
        duty = roster.leader_at(now)
        if duty is None:
            raise NoLeaderOnDuty("no shift leader is on duty now")
        return duty.agent.name
