"""The roster drives the PBX: queue membership and the after-hours flag; the feature that also
carries the roster's call watchers (callbacks, alerts) and the shift leader button.

One loop (`run`) reconciles Asterisk with the roster (`domain.roster_membership`):
* at start-up and after every AMI (re)connect (`on_resync`),
* at each roster boundary (`Roster.next_change`: a shift or a break starts or ends),
* when the roster in the database changed (an import, an approved change, an edit: seen by
  polling `roster_audit` for new rows that are not the service's own every `_POLL` seconds),
* when a call ends whose agent waits for removal (shift over during a call: paused at once so
  no new call rings, removed once the call ends, never cut),
* every `reconcile_interval` (a queue edited by hand is repaired).
Each reconcile also sets the globals IVR_AGENT_OPEN_<queue> (anybody on duty for that hotline
queue: the dialplan plays the after-hours prompt when it is 0), and refreshes the agents' lines
that the private-call rule looks for.
Every membership change is logged (`queue_member_*`) and appended to `roster_audit`.

The same loop, off the hot path: after-hours callback requests (`callback_requests.py`), long and
private call alerts (`call_alerts.py`). The shift leader transfer is `shift_leader.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

import structlog

from ivr_agent import queue_members
from ivr_agent.call_alerts import CallAlerts
from ivr_agent.callback_requests import CallbackRequests
from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.misuse import AgentLines
from ivr_agent.domain.roster import MAX_SHIFT_SECONDS, Roster
from ivr_agent.domain.roster_membership import desired_queues, plan_membership
from ivr_agent.errors import AmiError, StorageError
from ivr_agent.shift_leader import ShiftLeader
from ivr_agent.store.roster import load_roster
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

WHO: Final = "ivr-agent"
_POLL: Final = 1.0  # seconds between looks at roster_audit for imports/approvals/edits
_AHEAD: Final = 2 * 86400.0  # how far ahead the loaded roster reaches (for next_change)
_RETRY: Final = 2.0  # after a failed reconcile (AMI down): the next resync also wakes us
# roster_audit rows that do not change the roster: our own queue changes, alert acknowledgements.
_NOT_ROSTER: Final = ("queue_member_", "alert_")


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
        self._interval = reconcile_interval
        self._clock = clock
        self._wake = asyncio.Event()
        self._resynced = False  # a resync asked for a reconcile
        self._deferred: set[str] = set()  # interfaces to remove once their call ends
        self._deferred_ended = False
        self._audit_seen = 0
        self.callbacks = CallbackRequests(who=WHO, clock=clock)
        self.alerts = CallAlerts(long_call_alert=long_call_alert, clock=clock)
        self.leader = ShiftLeader(ami, lambda: self._db.conn, clock)
        self.roster: Roster | None = None
        self.is_open: bool | None = None  # any hotline queue staffed
        self.open: dict[str, bool] = {}
        self.reconciles = 0
        self.last: Reconciled | None = None

    # -- hot path -------------------------------------------------------------------------------

    def observe(self, change: CallChange) -> None:
        wake = self.callbacks.observe(change)
        wake = self.alerts.observe(change) or wake
        if change.ended and change.call.agent_interface in self._deferred:
            self._deferred_ended = wake = True
        if wake:
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
            long_due = self.alerts.next_due()
            if long_due is not None:
                due.append(long_due)
            try:
                async with asyncio.timeout(max(0.0, min(due) - now)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            # Cleared after the wait, before the work: a wake-up during the work is not lost.
            self._wake.clear()
            try:
                await self.callbacks.store(self._db)
                await self.alerts.check(self._db)
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
        self.alerts.lines = AgentLines.of(roster.agents.values())
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
        """New roster_audit rows that change the roster since the last look."""
        cur = await self._db.conn.execute(
            "SELECT id, action FROM roster_audit WHERE id > ? ORDER BY id", (self._audit_seen,)
        )
        rows = list(await cur.fetchall())
        if not rows:
            return False
        self._audit_seen = int(rows[-1][0])
        return any(not str(r[1]).startswith(_NOT_ROSTER) for r in rows)

    # -- the shift leader (shift_leader.py) -----------------------------------------------------

    async def bring_leader(self, call_id: str, channel: str, *, by: str) -> str:
        """Transfer the caller to the on-duty shift leader (see `shift_leader.ShiftLeader`)."""
        return await self.leader.bring(call_id, channel, by=by)
