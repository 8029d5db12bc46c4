"""The agent desk feature: call changes -> per-agent screen pops, pushed through the hub.

`observe()` runs on the AMI hot path: it only decides which agent a change concerns and enqueues
a job (no I/O). `run()` does the database look-ups (the caller's file, previous calls, open
complaints and callbacks, blacklist) off that path, builds the pop with `domain.screenpop` and
publishes it. It also remembers which callers each agent was given, for the privacy rules.

A pop is rendered only in the languages of the agent's open desks (or of the desk that just
closed, for its resume: `Hub.listening`); for an agent with no desk there is nothing to render
and no caller file to read: only the caller's file is created on their first call, as always.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import aiosqlite
import structlog

from ivr_agent.deskhub import Hub
from ivr_agent.domain import privacy
from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.events import AgentCalled, AgentRingNoAnswer
from ivr_agent.domain.phrases import Language
from ivr_agent.domain.screenpop import CallerFile, PopKind, build, kind_for
from ivr_agent.store import blacklist, complaints, customers
from ivr_agent.store.db import open_db
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

_JOBS: Final = 10_000  # 30 calls/s x a few pops each: minutes of backlog before a drop
_IDLE: Final = 60.0
_DEFER_MAX: Final = 0.2  # seconds an agent's answer pop may wait for the ring's file before it
_KEEP_FILES: Final = 5000  # callers whose last file is kept in memory
_KEEP_ASSIGNED: Final = 50  # per agent: the recent callers they may still see
_KEEP_ASSIGNED_TOTAL: Final = 5000  # all agents: the least recently busy agent's oldest go first
_LANGS: Final = (Language.ZH_CN, Language.EN)
_WATCHED: Final = frozenset({CallState.CONNECTED, CallState.ON_HOLD, CallState.ENDED})
_LAST: Final = frozenset({PopKind.ENDED, PopKind.RING_STOPPED})  # an agent's last pop of a call


@dataclass(frozen=True, slots=True)
class _Job:
    kind: PopKind
    agent: str
    call: Call
    arrived: float  # perf_counter() when the AMI event was handled
    event_at: float  # the event's own time (Asterisk's Timestamp): the latency benchmark's start


class Desk:
    name = "desk"

    def __init__(
        self, *, clock: Callable[[], float] = time.time, database: str | None = None
    ) -> None:
        self.hub = Hub()
        self.db: Db | None = None  # set by the service once its shared connection is open
        # Pops read on a connection of their own: the shared one may be busy for seconds with
        # the recordings' writes (a reconcile), and WAL lets readers go on meanwhile.
        self._database = database
        self._read: aiosqlite.Connection | None = None
        self._creates: asyncio.Queue[tuple[str, str]] = asyncio.Queue(_JOBS)
        self._enrich: asyncio.Queue[_Job] = asyncio.Queue(_JOBS)
        self._latest: dict[tuple[str, str], _Job] = {}  # (agent, call_id) -> its last pop
        self._filling: set[tuple[str, str]] = set()  # rings whose file is being read
        self._deferred: dict[tuple[str, str], tuple[_Job, float]] = {}  # held for that file
        self._clock = clock
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue(_JOBS)
        self._files: dict[str, CallerFile] = {}  # call_id -> caller file, while the call lives
        # number -> the file read at their last call: shown at once while it is read again
        self._by_number: collections.OrderedDict[str, CallerFile] = collections.OrderedDict()
        self._ringing: dict[str, set[str]] = {}  # call_id -> agents whose phone rings
        # Numbers that have a customer file (or whose creation is queued), most recent last.
        self._known: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.current: dict[str, Call] = {}  # agent -> their live call
        self.assigned: dict[str, collections.deque[privacy.Assignment]] = {}
        self._assigned_total = 0  # entries in `assigned`, bounded by _KEEP_ASSIGNED_TOTAL
        self.latencies: collections.deque[float] = collections.deque(maxlen=100_000)
        self.dropped = 0

    # -- hot path -------------------------------------------------------------------------------

    def observe(self, change: CallChange) -> None:
        call, event = change.call, change.event
        if isinstance(event, AgentCalled):
            agent = event.member_name or event.interface
            self._ringing.setdefault(call.call_id, set()).add(agent)
            self._assign(agent, call)
            self._put(PopKind.RINGING, agent, call)
            return
        if isinstance(event, AgentRingNoAnswer):
            agent = event.member_name or event.interface
            self._ringing.get(call.call_id, set()).discard(agent)
            self._put(PopKind.RING_STOPPED, agent, call)
            return
        if not change.state_changed or change.state_to not in _WATCHED:
            if change.ended:
                self._forget(call)
            return
        if change.state_to is CallState.CONNECTED and change.state_from is not CallState.ON_HOLD:
            for other in self._ringing.pop(call.call_id, set()) - {call.agent}:
                self._put(PopKind.RING_STOPPED, other, call)  # ringall: someone else answered
        if call.agent:
            self._assign(call.agent, call)
            self._put(kind_for(change.state_to, change.state_from), call.agent, call)
        if change.ended:
            self._forget(call)

    def on_resync(self) -> None:
        """Nothing to redo: calls a resync closes reach observe() as ENDED changes."""

    def _put(self, kind: PopKind, agent: str, call: Call) -> None:
        if self._jobs.full():
            self.dropped += 1
            log.error("screenpop_dropped", call_id=call.call_id, agent=agent)
            return
        self._jobs.put_nowait(_Job(kind, agent, call, time.perf_counter(), call.updated_at))

    def _assign(self, agent: str, call: Call) -> None:
        if call.state is CallState.ENDED:
            if self._is_current(agent, call):
                del self.current[agent]
        else:
            self.current[agent] = call
        kept = self.assigned.pop(agent, None)  # re-inserted last: the most recently busy
        if kept is None:
            kept = collections.deque(maxlen=_KEEP_ASSIGNED)
        self.assigned[agent] = kept
        entry = privacy.Assignment(call.call_id, call.caller_number, call.ended_at)
        for i, old in enumerate(kept):
            if old.call_id == call.call_id:
                kept[i] = entry
                return
        if len(kept) < _KEEP_ASSIGNED:  # (a full deque drops its oldest itself)
            self._assigned_total += 1
        kept.append(entry)
        while self._assigned_total > _KEEP_ASSIGNED_TOTAL:
            idle = next(iter(self.assigned))
            oldest = self.assigned[idle]
            oldest.popleft()
            self._assigned_total -= 1
            if not oldest:
                del self.assigned[idle]

    def _is_current(self, agent: str, call: Call) -> bool:
        cur = self.current.get(agent)
        return cur is not None and cur.call_id == call.call_id

    def _forget(self, call: Call) -> None:
        self._ringing.pop(call.call_id, None)
        for key in [k for k in self._latest if k[1] == call.call_id]:
            del self._latest[key]
        for agent in [a for a, c in self.current.items() if c.call_id == call.call_id]:
            del self.current[agent]

    # -- for the web side -----------------------------------------------------------------------

    def call_of(self, agent: str, call_id: str) -> privacy.Assignment | None:
        """The call `call_id` if it is or recently was `agent`'s (from this run's memory)."""
        for a in self.assigned.get(agent, ()):
            if a.call_id == call_id:
                return a
        return None

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        if self._database is not None and self._read is None:
            self._read = await open_db(self._database)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._loop(self._jobs, self._pop, idle=_DEFER_MAX))
                tg.create_task(self._loop(self._enrich, self._fill))
                await self._loop(self._creates, self._create_file)
        finally:
            if self._read is not None:
                await self._read.close()
                self._read = None

    async def _loop(
        self,
        queue: asyncio.Queue[Any],
        handle: Callable[[Any], Awaitable[None]],
        *,
        idle: float = _IDLE,
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(idle):
                    item = await queue.get()
            except TimeoutError:
                if handle == self._pop:
                    self._flush_deferred()
                continue
            try:
                await handle(item)
            except Exception:  # a task boundary: one bad item must not stop the others
                log.exception("desk_job_failed", job=type(item).__name__)

    async def _pop(self, job: _Job) -> None:
        """Every pop goes out at once with what is in memory: the caller ID's name, the phrases,
        the file of this call (read at its ring) or of this number's last call. A ring's file is
        read by `_fill`, off this path; the same desk's next pop of that call (the answer) waits
        for it, at most _DEFER_MAX, so the agent sees ring -> file -> answer in order."""
        self._flush_deferred()
        key = (job.agent, job.call.call_id)
        if key in self._filling and job.kind is not PopKind.RINGING:
            self._deferred[key] = (job, time.monotonic())
            return
        self._show(job)
        if job.kind is PopKind.RINGING:
            if not self.hub.listening(job.agent):
                self._ensure_file(job.call)  # nobody sees this pop: no file to read, only create
                return
        elif (
            job.kind in _LAST
            or job.call.call_id in self._files
            or not self.hub.listening(job.agent)
        ):
            return
        # A ring's file, or the file of a call whose ring nobody saw (the desk opened since).
        if not self._enrich.full():
            self._filling.add(key)
            self._enrich.put_nowait(job)

    def _ensure_file(self, call: Call) -> None:
        number = call.caller_number
        if not number or number in self._known or self._creates.full():
            return
        self._remember_file(number)
        self._creates.put_nowait((number, call.caller_name))

    def _remember_file(self, number: str) -> None:
        self._known[number] = None
        self._known.move_to_end(number)
        if len(self._known) > _KEEP_FILES:
            self._known.popitem(last=False)

    def _show(self, job: _Job) -> None:
        call = job.call
        key = (job.agent, call.call_id)
        caller = self._files.get(call.call_id)
        complete = caller is not None
        if caller is None:
            caller = self._by_number.get(call.caller_number) or CallerFile(name=call.caller_name)
        self._publish(job, caller, complete=complete)
        if job.kind in (PopKind.ENDED, PopKind.RING_STOPPED):
            self._latest.pop(key, None)
            if job.kind is PopKind.ENDED:
                self._files.pop(call.call_id, None)
        else:
            self._latest[key] = job

    def _flush_deferred(self) -> None:
        """Pops held back for a ring's file longer than _DEFER_MAX go out without it."""
        if not self._deferred:
            return
        now = time.monotonic()
        for key, (job, since) in list(self._deferred.items()):
            if now - since >= _DEFER_MAX:
                del self._deferred[key]
                self._filling.discard(key)
                self._show(job)

    async def _fill(self, job: _Job) -> None:
        """The ring's caller file from the database, then any pop held back for it."""
        call = job.call
        key = (job.agent, call.call_id)
        try:
            caller = await self.caller_file(call)
        except BaseException:
            self._filling.discard(key)
            held = self._deferred.pop(key, None)
            if held is not None:
                self._show(held[0])
            raise
        if call.caller_number:
            self._by_number[call.caller_number] = caller
            self._by_number.move_to_end(call.caller_number)
            if len(self._by_number) > _KEEP_FILES:
                self._by_number.popitem(last=False)
            if caller.version == 0:
                self._ensure_file(call)
            else:
                self._remember_file(call.caller_number)
        waited = key in self._filling
        self._filling.discard(key)
        held = self._deferred.pop(key, None)
        latest = self._latest.get(key)
        if latest is None and held is None:
            return  # ended or rang elsewhere meanwhile: nothing to show any more
        self._files[call.call_id] = caller
        if waited:
            self._publish(job, caller, complete=True)  # the ring with its file, before the answer
            if held is not None:
                self._show(held[0])
        elif latest is not None:
            self._publish(latest, caller, complete=True)

    async def _create_file(self, item: tuple[str, str]) -> None:
        """Customer files are created on a caller's first call, after the pop went out."""
        if self.db is None:
            return
        try:
            await customers.ensure(self.db, item[0], item[1], self._clock())
        except BaseException:
            self._known.pop(item[0], None)  # not created: the next call tries again
            raise

    def _publish(self, job: _Job, caller: CallerFile, *, complete: bool) -> None:
        listening = self.hub.listening(job.agent)
        if not listening:
            return  # no desk open, none to resume: rendering it would be for nobody
        call = job.call
        langs = [lang for lang in _LANGS if lang.value in listening] or [_LANGS[0]]
        frames = {lang.value: build(call, job.kind, caller, lang, seq=0) for lang in langs}
        for frame in frames.values():
            frame["event_at"] = job.event_at
            frame["complete"] = complete
        self.hub.publish(job.agent, frames)
        ms = (time.perf_counter() - job.arrived) * 1000
        if job.kind is PopKind.RINGING and not complete:
            self.latencies.append(ms)
        log.info(
            "screenpop_sent", call_id=call.call_id, agent=job.agent, kind=job.kind.value,
            complete=complete, duration_ms=round(ms, 2),
        )  # fmt: skip

    async def caller_file(self, call: Call) -> CallerFile:
        """Everything the pop shows about the caller, read from the database."""
        number = call.caller_number
        conn = self._read or (self.db.conn if self.db else None)
        if conn is None or not number:
            return CallerFile(name=call.caller_name)
        cust = await customers.get(conn, number) or customers.Customer(
            number, call.caller_name, "", (), 0
        )
        async with conn.execute(
            "SELECT started_at, agent, disposition, talk_time FROM calls "
            "WHERE caller_number = ? AND call_id != ? ORDER BY started_at DESC LIMIT 10",
            (number, call.call_id),
        ) as cur:
            history = tuple(
                {"at": r[0], "agent": r[1], "disposition": r[2], "duration": r[3]}
                for r in await cur.fetchall()
            )
        open_complaints = tuple(
            _complaint_view(c) for c in await complaints.of_caller(conn, number)
        )
        async with conn.execute(
            "SELECT id, reason, due_at, note FROM callbacks WHERE caller_number = ? "
            "AND status = 'open' ORDER BY due_at LIMIT 10",
            (number,),
        ) as cur:
            cbs = [
                {"id": r[0], "reason": r[1], "due_at": r[2], "note": r[3]}
                for r in await cur.fetchall()
            ]
        listed = await blacklist.current(conn, number)
        return CallerFile(
            name=cust.name or call.caller_name, notes=cust.notes, tags=cust.tags,
            version=cust.version, history=history, complaints=open_complaints,
            callbacks=tuple(cbs[:10]), blacklist=listed,
        )  # fmt: skip


def _complaint_view(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": c["id"], "category": c["category"], "status": c["status"],
        "promised_at": c["promised_at"], "created_at": c["created_at"],
    }  # fmt: skip
