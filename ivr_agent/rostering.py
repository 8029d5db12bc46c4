"""The roster drives the PBX: queue membership, the after-hours flag, callbacks, long calls.

One loop (`run`) reconciles Asterisk with the roster (`domain.roster_membership`):
* at start-up and after every AMI (re)connect (`on_resync`),
* at each roster boundary (`Roster.next_change`: a shift or a break starts or ends),
* when the roster in the database changed (an import, an approved change, an edit: seen by
  polling `roster_audit` for new non-queue rows every `_POLL` seconds),
* when a call ends whose agent waits for removal (shift over during a call: paused at once so
  no new call rings, removed once the call ends, never cut),
* every `reconcile_interval` (a queue edited by hand is repaired).
Each reconcile also sets the globals IVR_AGENT_OPEN_<queue> (anybody on duty for that hotline
queue: the dialplan plays the after-hours prompt when it is 0).
Every membership change is logged (`queue_member_*`) and appended to `roster_audit`.

Also, off the hot path: the dialplan's `IvrAgentCallback` UserEvent becomes a `callbacks` row,
and a call connected to an agent for longer than `long_call_alert` raises a supervisor alert
(logged, kept in `alerts`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

import structlog

from ivr_agent import queue_members
from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import CallState
from ivr_agent.domain.events import UserEvent
from ivr_agent.domain.roster import MAX_SHIFT_SECONDS, Roster
from ivr_agent.domain.roster_membership import desired_queues, plan_membership
from ivr_agent.errors import AmiActionFailed, AmiError, IvrAgentError, StorageError
from ivr_agent.store import callbacks
from ivr_agent.store.roster import load_roster
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

CALLBACK_EVENT: Final = "IvrAgentCallback"
LEADER_CONTEXT: Final = "ivr-agent-leader"
WHO: Final = "ivr-agent"
_POLL: Final = 1.0  # seconds between looks at roster_audit for imports/approvals/edits
_AHEAD: Final = 2 * 86400.0  # how far ahead the loaded roster reaches (for next_change)
_RETRY: Final = 2.0  # after a failed reconcile (AMI down): the next resync also wakes us


class NoLeaderOnDuty(IvrAgentError):
    """No shift leader is on duty now."""


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # long_call
    call_id: str
    agent: str
    at: float
    detail: str


@dataclass(frozen=True, slots=True)
class Reconciled:
    changes: int
    failed: int
    deferred: int
    open: bool
    duration_ms: float


class Rostering:
    """The feature (see `features.Feature`)."""

    name = "roster"

    def __init__(
        self,
        ami: queue_members.AmiSender,
        db: Db | str,
        *,
        queues: Collection[str],
        leader_queues: Collection[str] = ("leaders",),
        long_call_alert: float = 1800.0,
        reconcile_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ami = ami
        # A path: the loop opens its own connection (WAL: it takes turns with the others).
        self._db_or_path = db
        self._db_own: Db | None = None
        self._hotline = tuple(queues)  # the hotline's queues: each has its own open flag
        self._leader_queues = tuple(leader_queues)
        self._queues = frozenset(queues) | frozenset(leader_queues)
        self._long = long_call_alert
        self._interval = reconcile_interval
        self._clock = clock
        self._wake = asyncio.Event()
        self._resynced = False  # a resync asked for a reconcile
        self._deferred: set[str] = set()  # interfaces to remove once their call ends
        self._deferred_ended = False
        self._callbacks: list[tuple[str, str]] = []  # (call_id, caller number) to store
        self._connected: dict[str, tuple[float, str]] = {}  # call_id -> (since, agent)
        self._alerted: set[str] = set()
        self._audit_seen = 0
        self.alerts: deque[Alert] = deque(maxlen=1000)
        self.roster: Roster | None = None
        self.is_open: bool | None = None  # any hotline queue staffed
        self.open: dict[str, bool] = {}
        self.reconciles = 0
        self.last: Reconciled | None = None

    # -- hot path -------------------------------------------------------------------------------

    def observe(self, change: CallChange) -> None:
        call = change.call
        event = change.event
        if isinstance(event, UserEvent) and event.name == CALLBACK_EVENT:
            number = event.field("CallerNumber") or call.caller_number
            self._callbacks.append((call.call_id, number))
            self._wake.set()
        if change.ended:
            self._connected.pop(call.call_id, None)
            self._alerted.discard(call.call_id)
            if call.agent_interface in self._deferred:
                self._deferred_ended = True
                self._wake.set()
        elif call.state is CallState.CONNECTED and call.call_id not in self._connected:
            since = call.agent_connected_at or self._clock()
            self._connected[call.call_id] = (since, call.agent)
            if self._long > 0:
                self._wake.set()

    def on_resync(self) -> None:
        self._resynced = True
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------------

    @property
    def _db(self) -> Db:
        db = self._db_own or self._db_or_path
        if isinstance(db, str):
            raise StorageError("the roster loop has not opened its database yet")
        return db

    async def run(self) -> None:
        if isinstance(self._db_or_path, str):
            self._db_own = await Db.open(self._db_or_path)
        try:
            await self._loop()
        finally:
            if self._db_own is not None:
                await asyncio.shield(self._db_own.close())

    async def _loop(self) -> None:
        next_full = time.monotonic() + self._interval
        boundary: float | None = None
        deferred_check = 0.0
        while True:
            now = self._clock()
            due = [now + _POLL, now + (next_full - time.monotonic())]
            if boundary is not None:
                due.append(boundary)
            if self._long > 0 and self._connected:
                due.append(min(s for s, _ in self._connected.values()) + self._long)
            try:
                async with asyncio.timeout(max(0.0, min(due) - now)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            # Cleared after the wait, before the work: a wake-up during the work is not lost.
            self._wake.clear()
            try:
                await self._store_callbacks()
                self._check_long_calls()
                now = self._clock()
                changed = await self._roster_changed()
                # A deferred removal: the call ended, or (a QueueStatus may still say InCall
                # right after the hangup) look again every few seconds while one is pending.
                ended_deferred = self._deferred_ended or (
                    bool(self._deferred) and time.monotonic() >= deferred_check
                )
                if (
                    self._resynced
                    or changed
                    or (boundary is not None and now >= boundary)
                    or time.monotonic() >= next_full
                    or ended_deferred
                ):
                    self._resynced = self._deferred_ended = False
                    deferred_check = time.monotonic() + _RETRY
                    next_full = time.monotonic() + self._interval
                    await self.reconcile()
                roster = self.roster
                boundary = roster.next_change(self._clock()) if roster is not None else None
            except (AmiError, StorageError) as err:
                log.warning("roster_reconcile_failed", error=str(err))
                await asyncio.sleep(_RETRY)
            except Exception:  # a task boundary: log it, carry on
                log.exception("roster_loop_failed")
                await asyncio.sleep(_RETRY)

    async def reconcile(self) -> Reconciled:
        """Make the queues' members equal the agents on duty now; set IVR_AGENT_OPEN."""
        started = time.perf_counter()
        now = self._clock()
        roster = self.roster = await load_roster(
            self._db.conn, now - MAX_SHIFT_SECONDS, now + _AHEAD
        )
        have = await queue_members.members(self._ami, now)
        plan = plan_membership(
            roster, now, have, queues=self._queues, leader_queues=self._leader_queues
        )
        now_deferred = {c.interface for c in plan if c.after_call}
        self._deferred = now_deferred
        todo = [c for c in plan if not c.after_call]
        done = await queue_members.apply(self._ami, todo)
        staffed: set[str] = set()
        for d in roster.on_duty(now):
            staffed |= desired_queues(d, self._queues, self._leader_queues)
        for queue in self._hotline:
            flag = queue in staffed
            await queue_members.set_open(self._ami, queue, flag)
            if flag != self.open.get(queue):
                log.info("hotline_open_changed", queue=queue, open=flag)
            self.open[queue] = flag
        is_open = self.is_open = any(self.open.values())
        await self._audit(done, now)
        self.reconciles += 1
        failed = sum(1 for a in done if not a.ok)
        result = Reconciled(
            len(done),
            failed,
            len(now_deferred),
            is_open,
            round((time.perf_counter() - started) * 1000, 1),
        )
        self.last = result
        if done or failed:
            log.info(
                "roster_reconciled",
                changes=result.changes,
                failed=failed,
                deferred=result.deferred,
                open=is_open,
                duration_ms=result.duration_ms,
            )
        return result

    async def _audit(self, done: list[queue_members.Applied], at: float) -> None:
        last = await queue_members.record(self._db, done, who=WHO, at=at)
        self._audit_seen = max(self._audit_seen, last)

    async def _roster_changed(self) -> bool:
        """New roster_audit rows other than our own queue_member_* ones since the last look."""
        cur = await self._db.conn.execute(
            "SELECT id, action FROM roster_audit WHERE id > ? ORDER BY id", (self._audit_seen,)
        )
        rows = list(await cur.fetchall())
        if not rows:
            return False
        self._audit_seen = int(rows[-1][0])
        return any(not str(r[1]).startswith("queue_member_") for r in rows)

    async def _store_callbacks(self) -> None:
        while self._callbacks:
            call_id, number = self._callbacks.pop(0)
            now = self._clock()
            try:
                cid = await callbacks.add_callback(
                    self._db,
                    call_id=call_id,
                    caller_number=number,
                    reason="after_hours",
                    due_at=now,
                    note="",
                    created_by=WHO,
                    at=now,
                )
            except IvrAgentError as err:
                log.warning("callback_not_stored", call_id=call_id, error=str(err))
                continue
            log.info("callback_requested", call_id=call_id, callback_id=cid, caller_number=number)

    def _check_long_calls(self) -> None:
        if self._long <= 0:
            return
        now = self._clock()
        for call_id, (since, agent) in list(self._connected.items()):
            if call_id not in self._alerted and now - since >= self._long:
                self._alerted.add(call_id)
                alert = Alert("long_call", call_id, agent, now, f"{now - since:.0f} s")
                self.alerts.append(alert)
                log.warning("long_call_alert", call_id=call_id, agent=agent, seconds=now - since)

    # -- the shift leader -----------------------------------------------------------------------

    async def bring_leader(self, call_id: str, channel: str, *, by: str) -> str:
        """Transfer the caller of `call_id` to the shift leaders' queue; the leader's name.

        A transfer, not a three-way call: the caller leg is Redirected to the dialplan's
        [ivr-agent-leader] (Queue(leaders)), which releases the agent's leg. With the Local
        channels of the lab, and with any phone, this needs nothing but the Redirect the
        service already uses for the silent line; a ConfBridge three-way would need the agent
        leg moved too and the leader originated into the bridge. NoLeaderOnDuty (HTTP 409)
        when no leader is on duty: the caller is left with the agent.
        """
        leader = await self.leader_available()
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
            timeout=3.0,
        )
        log.info("leader_transfer", call_id=call_id, agent=by, leader=leader, channel=channel)
        return leader

    async def leader_available(self) -> str:
        """The on-duty shift leader's name; NoLeaderOnDuty when there is none."""
        now = self._clock()
        roster = await load_roster(self._db.conn, now - MAX_SHIFT_SECONDS, now + 1)
        duty = roster.leader_at(now)
        if duty is None:
            raise NoLeaderOnDuty("no shift leader is on duty now")
        return duty.agent.name
