"""One AMI connection under panoramisk 1.4: our asyncio protocol and the Manager that connects it.

`AmiProtocol` replaces panoramisk's own protocol (whose parser decodes each TCP read alone, with
`errors='ignore'`, so a CJK character split by a read is lost; returns `Message` objects whose
typo'd attributes read as `''`; and caps at ~55-70k ev/s). It parses with `amiframes` into plain
dicts, routes replies to their pending actions by ActionID, puts events straight into the client's
bounded queue and fails in-flight actions with `AmiDisconnected` when the link drops. No user
code runs inside `data_received`, so no consumer error can break the connection.

`AmiManager` keeps panoramisk's connect()/close() plumbing with our own answers to a connect
deadline, the `closing` flag and action replay (never). Everything else about the link's life (login
gate, keepalive, reconnect) is `AmiClient`'s, in `ami`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import structlog
from panoramisk import Manager

from ivr_agent.ami_actions import LIST, LOGIN, SUCCESS, Pending
from ivr_agent.amiframes import Frame, FrameReader, Malformed
from ivr_agent.config import AmiConfig
from ivr_agent.errors import AmiDisconnected, AmiNotReady

if TYPE_CHECKING:
    from ivr_agent.ami import AmiClient

_log = structlog.get_logger(__name__)

_ABANDONED_MAX = 256  # timed-out list actions remembered, to drop their late events


class AmiProtocol(asyncio.Protocol):
    """One AMI connection: parse, route replies to their waiters, enqueue events. Nothing else
    runs in `data_received`, so no consumer error can break the connection."""

    def __init__(self, client: AmiClient) -> None:
        self._client = client
        self._reader = FrameReader(events=client._events)
        self._queue = client.queue
        self._limit = client._event_limit
        self._stats = client.stats
        self.factory = client._manager  # the attribute panoramisk's protocol has
        self.transport: asyncio.Transport | None = None
        self.pending: dict[str, Pending] = {}
        self.abandoned: dict[str, None] = {}  # timed-out list actions: drop their late events
        self.logged_in = self.booted = self.ready = False
        self.ready_event = asyncio.Event()
        # Loop time of the last bytes received: proof of life while a Ping waits in a backlog.
        self.last_rx = 0.0
        self.reason: str | None = None  # why we closed it ourselves
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def version(self) -> str | None:
        return self._reader.version

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._client._on_connection_made(self)

    def data_received(self, data: bytes) -> None:
        self.last_rx = asyncio.get_running_loop().time()  # once per read, not per frame
        queue, limit, stats = self._queue, self._limit, self._stats
        reader = self._reader
        frames = reader.feed(data)
        if reader.skipped:
            stats.events_in += reader.skipped
            stats.events_ignored += reader.skipped
            reader.skipped = 0
        for frame in frames:
            if isinstance(frame, Malformed):
                self._client._on_malformed(frame)
                continue
            aid = frame.get("ActionID")
            if aid is not None and (self.pending or self.abandoned) and self._route(aid, frame):
                continue
            event = frame.get("Event")
            if event is None:
                _log.debug("ami_response_unmatched", action_id=aid)
                continue
            stats.events_in += 1
            if queue.qsize() < limit:
                queue.put_nowait(frame)
            else:
                self._client._on_dropped(event)
            if event == "FullyBooted":
                self.booted = True
                self._client._check_ready(self)
            elif event == "Shutdown":
                # Asterisk is stopping or restarting and will close the socket; start the
                # reconnect schedule now rather than wait for it (panoramisk does the same).
                self.close("shutdown")

    def _route(self, aid: str, frame: Frame) -> bool:
        """Deliver a frame to the action waiting for it; False: not ours, treat as an event."""
        p = self.pending.get(aid)
        if p is None:
            if aid in self.abandoned:
                if frame.get("EventList", "").lower() == "complete":
                    del self.abandoned[aid]
                return True
            return False  # e.g. OriginateResponse after its action completed: an event
        is_response = "Response" in frame
        if p.kind == LOGIN:
            if not is_response:
                return False
            del self.pending[aid]
            self._client._on_login_reply(self, frame)
            return True
        listing = frame.get("EventList", "").lower()
        if p.kind == LIST:
            p.frames.append(frame)
            if is_response:
                done = frame["Response"] not in SUCCESS or listing != "start"
            else:
                done = listing == "complete"
            if not done:
                return True
        else:
            if not is_response:
                return False
            p.frames.append(frame)
            if listing == "start":
                # A list action sent with send(): its events would leak into the event queue.
                _log.warning("ami_list_action_via_send", action=p.action, action_id=aid)
                self.abandon(aid)
        del self.pending[aid]
        if not p.future.done():
            p.future.set_result(p.frames)
        return True

    def submit(self, aid: str, action: str, fields: Mapping[str, str], kind: int) -> Pending:
        if self.transport is None:
            raise AmiNotReady(f"{action}: not connected")
        p = Pending(action, kind, asyncio.get_running_loop().create_future())
        self.pending[aid] = p
        lines = [f"{key}: {value}\r\n" for key, value in fields.items()]
        self.transport.write(f"{''.join(lines)}ActionID: {aid}\r\n\r\n".encode())
        return p

    def abandon(self, aid: str) -> None:
        self.abandoned[aid] = None
        if len(self.abandoned) > _ABANDONED_MAX:
            del self.abandoned[next(iter(self.abandoned))]

    @property
    def usable(self) -> bool:
        return self.ready and self.reason is None and not self.lost.done()

    def close(self, reason: str = "closed") -> None:
        """Close gracefully (panoramisk's Manager.close() calls this too)."""
        self.reason = self.reason or reason
        if self.transport is not None:
            self.transport.close()

    def abort(self, reason: str) -> None:
        self.reason = self.reason or reason
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reason:
            reason = self.reason
        elif exc is not None:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = "closed by Asterisk"
        for aid, p in self.pending.items():
            if not p.future.done():
                why = f"{p.action} {aid}: AMI connection lost ({reason}); not re-sent"
                p.future.set_exception(AmiDisconnected(why))
        self.pending.clear()
        self.lost.set_result(None)
        self._client._on_connection_lost(self, reason)


class AmiManager(Manager):  # type: ignore[misc]  # panoramisk ships no type hints
    """panoramisk's Manager: its connect() and close() plumbing, with our protocol factory and
    our own answers to connect failure, reconnect and replay."""

    def __init__(self, client: AmiClient, cfg: AmiConfig) -> None:
        super().__init__(
            host=cfg.host,
            port=cfg.port,
            protocol_factory=functools.partial(AmiProtocol, client),
            forgetable_actions=(),  # moot: our protocol never queues actions for replay
        )
        self.closing = False
        self.connect_task: asyncio.Task[Any] | None = None
        self._client = client
        self._connect_timeout = cfg.connect_timeout
        self._connect_timer: asyncio.TimerHandle | None = None

    def connect(self, *_args: Any, **_kwargs: Any) -> asyncio.Task[Any] | None:
        # panoramisk's close() cannot cancel a reconnect that is already scheduled with
        # call_later, so whatever timer fires late, this flag has the last word.
        if self.closing:
            _log.debug("ami_connect_skipped_closing")
            return None
        task: asyncio.Task[Any] = super().connect()
        self.connect_task = task
        # panoramisk's connect has no deadline; a black-holed PBX would hold it for minutes.
        self._connect_timer = self.loop.call_later(self._connect_timeout, task.cancel)
        return task

    def connection_made(self, f: asyncio.Task[Any]) -> None:
        # The connect task's done-callback (panoramisk's name for it). On success the protocol
        # has already taken over (and sent Login); panoramisk's own Login, pinger and fixed
        # integer reconnect delay stay unused.
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        self.connect_task = None
        if f.cancelled():
            if not self.closing:
                self._client._on_connect_failed(f"connect timeout after {self._connect_timeout}s")
            return
        exc = f.exception()
        if exc is not None:
            self._client._on_connect_failed(f"{type(exc).__name__}: {exc}")

    async def send_awaiting_actions(self, *_args: Any) -> None:
        # panoramisk registers this on FullyBooted to re-send actions that were unanswered when
        # the link dropped (Originate included: a second call). Never.
        self.awaiting_actions.clear()
