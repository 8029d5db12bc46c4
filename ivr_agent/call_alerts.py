"""Supervisor alerts from the calls the service sees: long calls and private calls.

* `long_call`: a call connected to an agent for longer than `[roster] long_call_alert` seconds.
* `private_call`: a call placed from an agent's line to a number that never called the hotline
  (`domain.misuse`).

`observe` runs on the AMI hot path (sync, dict look-ups only) and notes what to look at; the
roster loop calls `check` off the hot path, which asks the database and stores each alert once
per kind and call (`store.alerts`: a restarted service that sees the same long call again does not
alert twice). Each alert is logged (numbers masked at INFO by the log setup).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import CallState
from ivr_agent.domain.events import DialBegin
from ivr_agent.domain.misuse import (
    LONG_CALL,
    NO_LINES,
    PRIVATE_CALL,
    AgentLines,
    OutboundCall,
    is_private,
    long_call_detail,
    number_forms,
    outbound_from_agent,
    private_call_detail,
)
from ivr_agent.errors import StorageError
from ivr_agent.store.alerts import Alert, called_the_hotline, raise_alert
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)


class CallAlerts:
    """What calls to alert supervisors about; `lines` is refreshed from the roster."""

    def __init__(self, *, long_call_alert: float, clock: Callable[[], float]) -> None:
        self._long = long_call_alert
        self._clock = clock
        self._connected: dict[str, tuple[float, str]] = {}  # call_id -> (since, agent)
        self._alerted: set[str] = set()  # long calls alerted (or found alerted) already
        self._outbound: list[OutboundCall] = []  # agents' outside calls to look up
        self._private_seen: set[str] = set()
        self.lines: AgentLines = NO_LINES
        self.raised = 0  # alerts stored by this run
        self.looked_up = 0  # agents' outside calls looked up

    def observe(self, change: CallChange) -> bool:
        """Note a connected call or an agent's outside call; True: `check` has work now."""
        call = change.call
        event = change.event
        if isinstance(event, DialBegin) and event.channel and event.uniqueid == call.call_id:
            outbound = outbound_from_agent(event, call.call_id, self.lines)
            if outbound is not None and call.call_id not in self._private_seen:
                self._private_seen.add(call.call_id)
                self._outbound.append(outbound)
                return True
        if change.ended:
            self._connected.pop(call.call_id, None)
            self._alerted.discard(call.call_id)
            self._private_seen.discard(call.call_id)
        elif call.state is CallState.CONNECTED and call.call_id not in self._connected:
            since = call.agent_connected_at or self._clock()
            self._connected[call.call_id] = (since, call.agent)
            return self._long > 0
        return False

    def next_due(self) -> float | None:
        """When the next long call reaches the limit (epoch seconds), if any is connected."""
        waiting = [s for c, (s, _) in self._connected.items() if c not in self._alerted]
        if self._long <= 0 or not waiting:
            return None
        return min(waiting) + self._long

    async def check(self, db: Db) -> None:
        """Look up the outside calls noted, and the long calls due; store and log the alerts."""
        while self._outbound:
            outbound = self._outbound[0]
            hotline = await called_the_hotline(db.conn, number_forms(outbound.number))
            self._outbound.pop(0)
            self.looked_up += 1
            if not is_private(outbound, hotline):
                log.info(
                    "agent_outbound_call",
                    call_id=outbound.call_id,
                    agent=outbound.agent,
                    dialed_number=outbound.number,
                    hotline_caller=True,
                )
                continue
            alert = Alert(
                PRIVATE_CALL,
                outbound.call_id,
                outbound.agent,
                outbound.at,
                private_call_detail(outbound),
            )
            if await self._raise(db, alert):
                log.info(
                    "private_call_alert",
                    call_id=outbound.call_id,
                    agent=outbound.agent,
                    dialed_number=outbound.number,
                    channel=outbound.channel,
                )
        if self._long <= 0:
            return
        now = self._clock()
        for call_id, (since, agent) in list(self._connected.items()):
            if call_id in self._alerted or now - since < self._long:
                continue
            self._alerted.add(call_id)
            alert = Alert(LONG_CALL, call_id, agent, now, long_call_detail(now - since))
            if await self._raise(db, alert):
                log.warning("long_call_alert", call_id=call_id, agent=agent, seconds=now - since)

    async def _raise(self, db: Db, alert: Alert) -> bool:
        try:
            stored = await raise_alert(db, alert)
        except StorageError as err:
            log.warning("alert_not_stored", call_id=alert.call_id, kind=alert.kind, error=str(err))
            return False
        if stored is None:  # this call had this alert already (before a restart)
            return False
        self.raised += 1
        return True
