"""Lifecycle owner: builds the components, owns every task, routes AMI events -> domain -> store.

Startup: open the DB, adopt calls it still has open (a previous run may have been killed), start
the AMI client, then consume its queue. On every (re)connect the book is resynced against
CoreShowChannels so that calls that ended while we were away are closed, marked reconciled.
Shutdown runs in reverse: stop the web server, stop AMI intake, drain what is queued, let the
recording finaliser settle what it can, flush the store, close the DB.

Recordings: MixMonitor runs in the dialplan from the moment the hotline answers, so a call is
recorded whether or not the service is connected (the AMI user cannot start MixMonitor anyway:
it lacks the `system` class). The service's part is the record of it: a row when MixMonitorStart
arrives, the measured and judged file when the call ends, and at start-up (after the first
resync, when the book knows which calls are live) a reconcile of the folder with the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import operator
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import aiosqlite
import structlog

from ivr_agent.ami import CONNECTED, AmiClient
from ivr_agent.blacklist_routing import BlacklistRouting
from ivr_agent.callactions import CallActions, Done
from ivr_agent.config import Settings, require_ami_secret
from ivr_agent.desk import Desk
from ivr_agent.domain.blacklist_routing import Treatment
from ivr_agent.domain.callbook import CallBook, CallChange
from ivr_agent.domain.calls import CallState
from ivr_agent.domain.events import (
    MODELLED,
    ChannelEvent,
    CoreShowChannel,
    Event,
    IvrAgentConnected,
    MalformedEvent,
    MixMonitorStart,
    parse,
)
from ivr_agent.domain.silence import SilencePolicy
from ivr_agent.errors import AmiError, InvalidTransition, StorageError
from ivr_agent.features import Feature
from ivr_agent.lag import LagMeter
from ivr_agent.recordings import retention
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.recordings.keeper import RecordingKeeper
from ivr_agent.recordings.reconcile import reconcile
from ivr_agent.rostering import Rostering
from ivr_agent.silentline import SilentLine, Triggered
from ivr_agent.store.calls import CallStore, TimelineEntry, open_calls
from ivr_agent.store.db import open_db
from ivr_agent.store.snapshot import call_from_json
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.server import WebServer

log = structlog.get_logger(__name__)

_RESYNC_TIMEOUT: Final = 10.0  # CoreShowChannels with thousands of channels still answers in ~1 s
_DRAIN_TIMEOUT: Final = 5.0  # at shutdown, how long queued events may take to be processed
# The first reconcile of the recordings folder waits for the first resync (so that it knows the
# live calls), but not longer than this when Asterisk is unreachable.
_RECONCILE_WAIT: Final = 30.0
_WITH_AGENT: Final = frozenset({CallState.CONNECTED, CallState.ON_HOLD})
# Fields every timeline entry leaves out: the call and channel keys are columns already.
_SKIP_DETAIL: Final = frozenset({"at", "uniqueid", "linkedid", "vars", "dest_vars"})


_Detail = Callable[[Event], dict[str, object]]


def _detail_of(cls: type[Event]) -> _Detail:
    """The timeline detail of an event of `cls`: its fields minus _SKIP_DETAIL, in order (read
    with one attrgetter: this runs for every event the book applies)."""
    names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in _SKIP_DETAIL)
    if len(names) < 2:
        return lambda event: {n: getattr(event, n) for n in names}
    values = operator.attrgetter(*names)
    return lambda event: dict(zip(names, values(event), strict=True))


class Service:
    """The running service. `run(stop)` returns after `stop` is set and shutdown has finished."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        conn: aiosqlite.Connection | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._conn = conn
        self.book = CallBook()
        # Only the events parse() models are parsed and queued (a fifth of the frames are not).
        self.ami = AmiClient(settings.ami, require_ami_secret(settings), events=MODELLED)
        self.store: CallStore | None = None
        self.lag = LagMeter()
        self.started = asyncio.Event()
        self.events_applied = 0
        self.events_rejected = 0
        self._dropped_seen = 0
        self._details: dict[type[Event], _Detail] = {}
        self.recordings: RecordingKeeper | None = None
        self.web: WebServer | None = None
        self.resynced = asyncio.Event()  # the first resync after start-up is done
        self.features: list[Feature] = []
        self.silent_line: SilentLine | None = None
        if settings.silent_line.enabled:
            cfg = settings.silent_line
            self.silent_line = SilentLine(
                self.ami,
                SilencePolicy(cfg.agent_window, cfg.ivr_window or None),
                context=cfg.context,
                prompt_file=Path(settings.hotline.sounds_dir) / "silent-line.wav",
                clock=clock,
                on_triggered=self._silent_line_done,
            )
            self.features.append(self.silent_line)
        # The agent's civil-language warning and polite closing (callactions.py).
        self.call_actions = CallActions(
            self.ami, self.book.get, clock=clock, on_done=self._action_done
        )
        # The agent desk: screen pops to agents' browsers (desk.py).
        self.desk = Desk(clock=clock, database=settings.storage.database)
        self.features.append(self.desk)
        self.rostering: Rostering | None = None
        if settings.roster.enabled:
            # The duty roster drives queue membership and the after-hours flag (rostering.py).
            self.rostering = Rostering(
                self.ami,
                settings.storage.database,
                queues=settings.hotline.queues,
                leader_queues=settings.roster.leader_queues,
                long_call_alert=settings.roster.long_call_alert,
                reconcile_interval=settings.roster.reconcile_interval,
                clock=clock,
            )
            self.features.append(self.rostering)
        # The blacklist treatment: the dialplan's IVR_AGENT_BL_<digits> globals follow the table.
        self.blacklist_routing = BlacklistRouting(
            self.ami,
            settings.storage.database,
            treatment=Treatment(settings.hotline.blacklist_treatment),
            interval=settings.hotline.blacklist_sync_interval,
        )
        self.features.append(self.blacklist_routing)

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        own_conn = self._conn is None
        conn = self._conn or await open_db(settings.storage.database)
        self.store = store = CallStore(
            conn,
            flush_interval=settings.storage.flush_interval,
            flush_max_rows=settings.storage.flush_max_rows,
        )
        # Recordings, users and the audit log write on their own connection (see store/txn.py).
        db = await Db.open(settings.storage.database)
        self.desk.db = db
        self.recordings = keeper = RecordingKeeper(
            db,
            RecordingsRoot(settings.hotline.recordings_dir),
            finalise_timeout=settings.recordings.finalise_timeout,
            tolerance=settings.recordings.duration_tolerance,
            clock=self._clock,
        )
        try:
            web = self.web = self._web(db) if settings.web.enabled else None
            await self._adopt_open_calls(conn)
            async with asyncio.TaskGroup() as tg:
                flusher = tg.create_task(store.run(), name="store-flush")
                finaliser = tg.create_task(keeper.run(), name="recordings")
                upkeep = tg.create_task(self._upkeep(keeper), name="recordings-upkeep")
                web_task = tg.create_task(web.serve(), name="web") if web else None
                consumer = tg.create_task(self._consume(), name="ami-consume")
                feature_tasks = [tg.create_task(f.run(), name=f.name) for f in self.features]
                await self.ami.start()
                log.info(
                    "service_started",
                    database=settings.storage.database,
                    web=web.url if web else None,
                )
                self.started.set()
                await stop.wait()
                log.info("service_stopping")
                if web and web_task:
                    web.stop()  # stop accepting HTTP first
                    await web_task
                upkeep.cancel()
                for task in feature_tasks:
                    task.cancel()
                await self.ami.close()
                consumer.cancel()
                await self._drain()
                keeper.stop()  # settles what it can in a short grace, the rest at next start
                await finaliser
                store.stop()  # the flusher writes what is left, then returns
                await flusher
        finally:
            if self.web is not None:
                self.web.close()
            await self.ami.close()
            await db.close()
            if own_conn:
                await conn.close()
        log.info(
            "service_stopped",
            events_applied=self.events_applied,
            rows_written=store.rows_written,
            live_calls=len(self.book),
        )

    def _web(self, db: Db) -> WebServer:
        """The web server, bound now: a port in use stops the start-up with a clear error."""
        deps = WebDeps(
            db=db,
            root=RecordingsRoot(self.settings.hotline.recordings_dir),
            settings=self.settings,
            clock=self._clock,
            current_call=self.current_call,
            desk=self.desk,
            silent_line=self.silent_line.trigger if self.silent_line else None,
            call_actions=self.call_actions,
            health=self.health,
            roster=self.rostering,
            caller_channel=self._caller_channel,
        )
        server = WebServer(create_app(deps), self.settings.web.host, self.settings.web.port)
        server.bind()
        return server

    def _caller_channel(self, call_id: str) -> str | None:
        call = self.book.get(call_id)
        return call.caller_channel if call is not None else None

    def health(self) -> list[str]:
        """What an operator must fix or watch, by name (GET /healthz; no subscriber data)."""
        problems = []
        if not self.ami.ready:
            problems.append("ami_not_ready")
        if self.ami.stats.events_dropped:
            problems.append("ami_events_dropped")
        line = self.silent_line
        if line is not None and not line.prompt_present():
            problems.append("silent_line_prompt_missing")
        return problems

    def _timeline(self, call_id: str, at: float, kind: str, detail: dict[str, object]) -> None:
        if self.store is not None:
            self.store.put_event(TimelineEntry(call_id, at, kind, "", detail))

    def _action_done(self, done: Done) -> None:
        self._timeline(done.call_id, done.at, "AgentAction", {"action": done.action, "by": done.by})

    def _silent_line_done(self, t: Triggered) -> None:
        detail: dict[str, object] = {"by": t.by, "ok": t.ok, "error": t.error}
        self._timeline(t.call_id, t.redirected_at, "SilentLine", detail)

    def current_call(self, agent: str) -> str | None:
        """The call `agent` (queue member name) is connected to now, if any."""
        for call in self.book:
            if call.agent == agent and call.state in _WITH_AGENT:
                return call.call_id
        return None

    async def _upkeep(self, keeper: RecordingKeeper) -> None:
        """Reconcile the recordings folder (first once the book is settled), expire old ones."""
        cfg = self.settings.recordings
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_RECONCILE_WAIT):
                await self.resynced.wait()
        next_reconcile = next_expiry = time.monotonic()
        while True:
            if time.monotonic() >= next_reconcile:
                next_reconcile = time.monotonic() + cfg.reconcile_interval
                try:
                    await reconcile(keeper, self.book.__contains__, clock=self._clock)
                except Exception:  # a task boundary: log it, try again next time
                    log.exception("recordings_reconcile_failed")
            if time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + cfg.retention_interval
                try:
                    await retention.expire(
                        keeper.db, keeper.root, cfg.retention_days, self._clock()
                    )
                except Exception:  # a task boundary: log it, try again next time
                    log.exception("recordings_expiry_failed")
            await asyncio.sleep(max(0.0, min(next_reconcile, next_expiry) - time.monotonic()))

    async def _adopt_open_calls(self, conn: aiosqlite.Connection) -> None:
        """Calls left open by a previous run: kept in the book until the first resync decides."""
        calls = []
        for text in await open_calls(conn):
            try:
                calls.append(call_from_json(text))
            except StorageError as err:
                log.warning("call_snapshot_unreadable", error=str(err))
        self.book.restore(calls)
        if calls:
            log.info("calls_adopted", count=len(calls))

    async def _consume(self) -> None:
        while True:
            frame = await self.ami.next_frame()
            self.handle(frame)
            dropped = self.ami.stats.events_dropped
            if frame.get("Event") == CONNECTED or dropped != self._dropped_seen:
                if dropped != self._dropped_seen:
                    # Events were lost (queue full): the book may miss a Hangup; resync like
                    # after a reconnect, with the marker that starts the book's bookkeeping.
                    self._dropped_seen = dropped
                    self.handle({"Event": CONNECTED})
                await self._resync()

    async def _drain(self) -> None:
        """Process what the socket already delivered, within a deadline (it is all sync work)."""
        deadline = time.monotonic() + _DRAIN_TIMEOUT
        while not self.ami.queue.empty():
            if time.monotonic() > deadline:
                log.warning("drain_timeout", left=self.ami.queue.qsize())
                return
            self.handle(self.ami.queue.get_nowait())

    def handle(self, frame: dict[str, str]) -> CallChange | None:
        """One frame through parse -> book -> store. Never raises for bad input."""
        now = self._clock()
        try:
            event = parse(frame, now)
        except MalformedEvent as err:
            log.warning("ami_event_malformed", ami_event=err.event, header=err.header)
            return None
        if event is None:
            return None
        if not isinstance(event, IvrAgentConnected):
            self.lag.add(now - event.at)
        try:
            change = self.book.apply(event)
        except InvalidTransition as err:
            self.events_rejected += 1
            log.warning(
                "call_event_rejected",
                call_id=err.call_id,
                state=str(err.state.value),
                ami_event=type(event).__name__,
            )
            return None
        if change is None:
            return None
        self.events_applied += 1
        self._record(change)
        return change

    def _record(self, change: CallChange) -> None:
        store = self.store
        assert store is not None  # noqa: S101  # set before the consumer starts
        call = change.call
        store.put_call(call)
        event = change.event
        if event is not None:
            cls = type(event)
            detail_of = self._details.get(cls)
            if detail_of is None:
                detail_of = self._details[cls] = _detail_of(cls)
            uid = event.uniqueid if isinstance(event, ChannelEvent) else ""
            store.put_timeline(call.call_id, event.at, cls.__name__, uid, detail_of(event))
        else:
            store.put_timeline(
                call.call_id, call.updated_at, "Reconciled", "", {"state": call.state.value}
            )
        if change.ended:
            self.call_actions.forget(call.call_id)
        keeper = self.recordings
        if keeper is not None:
            if change.ended:
                keeper.call_ended(call)
            elif (
                isinstance(event, MixMonitorStart)
                and event.uniqueid == call.call_id
                and call.recording_started_at == event.at
            ):
                keeper.call_started(call)
        for feature in self.features:
            try:
                feature.observe(change)
            except Exception:  # one feature's bug must not stop the call records
                log.exception("feature_failed", feature=feature.name, call_id=call.call_id)
        if change.state_changed:
            log.info(
                "call_state_changed",
                call_id=call.call_id,
                state_from=change.state_from.value if change.state_from else None,
                state_to=change.state_to.value,
                caller_number=call.caller_number,
                agent=call.agent or None,
                disposition=call.disposition.value if change.ended else None,
                reconciled=call.reconciled or None,
            )

    async def _resync(self) -> None:
        """Rebuild live state from CoreShowChannels after a (re)connect or a gap."""
        started = time.perf_counter()
        try:
            frames = await self.ami.send_list(
                {"Action": "CoreShowChannels"}, timeout=_RESYNC_TIMEOUT
            )
        except AmiError as err:
            log.warning("resync_failed", error=str(err))
            return
        now = self._clock()
        snaps: list[CoreShowChannel] = []
        for frame in frames:
            try:
                ev = parse(frame, now)
            except MalformedEvent:
                continue
            if isinstance(ev, CoreShowChannel):
                snaps.append(ev)
        changes = self.book.resync(snaps, now)
        for change in changes:
            self._record(change)
        for feature in self.features:
            feature.on_resync()
        self.resynced.set()
        log.info(
            "resync_done",
            channels=len(snaps),
            changed=len(changes),
            live_calls=len(self.book),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
