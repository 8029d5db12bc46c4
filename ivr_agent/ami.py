"""AMI adapter: `AmiClient`, the service's only way to talk to Asterisk, over panoramisk 1.4.

This module holds the client's public API and the link's life; the connection itself (frame
intake, ActionID routing, the panoramisk Manager) is in `ami_protocol`, actions in flight
(header checks, deadlines, typed errors) in `ami_actions`. What panoramisk 1.4 gets wrong for
us, and what replaces it (house-style §5):

* `connect()` resolving is not "logged in": `ready` means Login answered Success *and*
  `FullyBooted` seen. A refused Login is fatal (no reconnect loop hammering the PBX).
* Its parser loses characters split by a TCP read, returns `Message` objects and is slow:
  `ami_protocol.AmiProtocol` parses with `amiframes` into plain dicts and puts events straight
  into a bounded queue; no user code runs inside `data_received`.
* Its actions have no timeout and its reply-completion guesses hang on `QueueAdd` ("Added
  interface to queue") and on `Originate` ("successfully queued"). Here every action has a
  deadline and a typed error; single-reply actions complete on the first `Response`.
* It re-sends unanswered actions after a reconnect (Originate included). Here in-flight actions
  fail with `AmiDisconnected` when the link drops and nothing is ever re-sent.
* Its pinger never checks the reply and its reconnect delay is a fixed integer that `close()`
  cannot cancel. Here a Ping with a deadline detects a dead link; reconnects back off
  exponentially with jitter; `close()` cancels the timer and a `closing` flag in the Manager's
  `connect()` stops any attempt that still fires.

The event queue carries, in order with Asterisk's events, lifecycle markers the consumer resyncs
on: `{"Event": "IvrAgentConnected"}` each time the link becomes ready and
`{"Event": "IvrAgentDisconnected", "Reason": ...}` when a ready link drops.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

# `_exchange` is looked up in this module by the keepalive and `_call` (tests patch it here).
from ivr_agent.ami_actions import LIST, LOGIN, SINGLE, SUCCESS, check_reply, prepare
from ivr_agent.ami_actions import exchange as _exchange
from ivr_agent.ami_protocol import AmiManager, AmiProtocol
from ivr_agent.amiframes import Frame, Malformed
from ivr_agent.config import AmiConfig
from ivr_agent.errors import AmiDisconnected, AmiNotReady, AmiTimeout

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "ActionSender",
    "AmiClient",
    "AmiStats",
    "Frame",
    "backoff_delay",
]


class ActionSender(Protocol):
    """What a feature needs to act on the PBX: AmiClient.send (tests pass a fake)."""

    async def send(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109  # AmiClient.send's per-action deadline
    ) -> Frame: ...


_log = structlog.get_logger(__name__)

CONNECTED = "IvrAgentConnected"
DISCONNECTED = "IvrAgentDisconnected"
# Queue slots kept beyond the event bound for lifecycle markers: when events are being dropped,
# losing an IvrAgentConnected too would leave the consumer unaware that it must resync.
_MARKER_ROOM = 8
_LOG_EVERY = 5.0  # seconds between two lines of a repeated warning (drops, malformed frames)
_CLOSE_WAIT = 1.0  # how long close() lets the socket and tasks finish before giving up


@dataclass(slots=True)
class AmiStats:
    """Counters since the client was created."""

    events_in: int = 0  # events received from Asterisk, dropped and ignored ones included
    events_ignored: int = 0  # not among the client's `events`: never parsed nor queued
    events_dropped: int = 0  # lost because the queue was full
    malformed: int = 0  # frames skipped as unparseable
    connects: int = 0  # times the link became ready
    reconnects: int = 0  # connection attempts after the first
    pings_failed: int = 0  # pings unanswered in time; each one forced a reconnect
    actions_sent: int = 0
    actions_timed_out: int = 0


def backoff_delay(
    attempt: int, low: float, high: float, rand: Callable[[], float] = random.random
) -> float:
    """Delay before reconnect `attempt` (0-based): doubling from `low`, capped at `high`, with
    "equal jitter" (half fixed, half random) so services restarted together spread out."""
    cap = min(high, low * 2.0 ** min(attempt, 32))
    return max(low, cap / 2 + rand() * cap / 2)


class _Throttle:
    """Allow one log line now, then at most one per `every` seconds, counting what it held back."""

    __slots__ = ("every", "next_at", "suppressed")

    def __init__(self, every: float) -> None:
        self.every = every
        self.next_at = 0.0
        self.suppressed = 0

    def allow(self) -> int | None:
        now = time.monotonic()
        if now < self.next_at:
            self.suppressed += 1
            return None
        held, self.suppressed = self.suppressed, 0
        self.next_at = now + self.every
        return held


class AmiClient:
    """The service's only way to talk to Asterisk. See the module docstring for the rules."""

    def __init__(
        self,
        cfg: AmiConfig,
        secret: str,
        *,
        queue_size: int | None = None,
        events: frozenset[str] | None = None,
    ) -> None:
        """`events`: the event names the consumer reads (None: all); other events without an
        ActionID are counted and dropped unparsed (see amiframes). The lifecycle markers and
        replies to our actions always get through."""
        size = cfg.event_queue_size if queue_size is None else queue_size
        if size < 1:
            raise ValueError("queue_size must be >= 1")
        self._events = events
        self._event_limit = size
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=size + _MARKER_ROOM)
        self.stats = AmiStats()
        self._cfg = cfg
        self._secret = secret
        self._manager = AmiManager(self, cfg)
        self._protocol: AmiProtocol | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnect: asyncio.TimerHandle | None = None
        self._attempt = 0
        self._started = self._closing = False
        self._failure: str | None = None  # fatal (authentication refused): no more reconnects
        self._last_error = "not started"
        self._waiters: list[asyncio.Future[None]] = []
        self._ids = itertools.count(1)
        self._id_prefix = f"ivr-{uuid.uuid4().hex[:8]}-"
        self._drop_log = _Throttle(_LOG_EVERY)
        self._malformed_log = _Throttle(_LOG_EVERY)

    # -- public API -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Logged in and FullyBooted seen on a link that is still up."""
        return self._protocol is not None and self._protocol.usable

    async def start(self) -> None:
        """Begin connecting in the background; does not wait for login (see wait_ready)."""
        if self._closing:
            raise AmiNotReady("AmiClient is closed")
        if self._started:
            return
        self._started = True
        self._manager.loop = asyncio.get_running_loop()
        self._last_error = "connecting"
        _log.info("ami_connecting", host=self._cfg.host, port=self._cfg.port)
        self._manager.connect()

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109  # API: per-call deadline
        """Return once ready; AmiNotReady after `timeout`, at once if authentication failed."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self._failure is not None:
                        raise AmiNotReady(self._failure)
                    if self._closing:
                        raise AmiNotReady("AmiClient is closed")
                    if self.ready:
                        return
                    waiter = loop.create_future()
                    self._waiters.append(waiter)
                    await waiter
        except TimeoutError as err:
            raise AmiNotReady(f"AMI not ready after {timeout}s ({self._last_error})") from err

    async def send(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109  # per-action deadline: the API's point
    ) -> Frame:
        """Send a single-reply action and return its response frame.

        Completes on the first `Response` carrying our ActionID. `Originate` is always sent
        with `Async: true`, so this returns on "Originate successfully queued"; the outcome
        comes later as an `OriginateResponse` event (same ActionID) in the event queue.
        Raises AmiNotReady, AmiTimeout, AmiDisconnected (never re-sent), AmiActionFailed.
        """
        return (await self._call(action, SINGLE, timeout))[0]

    async def send_list(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Frame]:
        """Send a list action (CoreShowChannels, QueueStatus, Status...): returns
        [response, events..., the `EventList: Complete` event]; a reply without
        `EventList: start` (or an error) ends it at once. `timeout` covers the whole list."""
        return await self._call(action, LIST, timeout)

    async def command(self, cli: str, *, timeout: float | None = None) -> list[str]:  # noqa: ASYNC109
        """Run a CLI command (`Action: Command`) and return its output lines."""
        frame = await self.send({"Action": "Command", "Command": cli}, timeout=timeout)
        output = frame.get("Output")
        return output.split("\n") if output is not None else []

    async def next_frame(self) -> Frame:
        """The consumer's read: the next event or lifecycle marker, in arrival order."""
        return await self.queue.get()

    async def close(self) -> None:
        """Stop for good: cancel reconnects, fail in-flight actions, close the socket."""
        if self._closing:
            return
        self._closing = self._manager.closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None
        waits: list[asyncio.Future[Any]] = []
        if self._manager.connect_task is not None:
            self._manager.connect_task.cancel()
            waits.append(self._manager.connect_task)
        proto = self._protocol
        self._manager.close()  # panoramisk: cancels its pinger, calls our protocol's close()
        if proto is not None:
            await asyncio.wait([proto.lost], timeout=_CLOSE_WAIT)
            if not proto.lost.done():
                proto.abort("closed")
                waits.append(proto.lost)
        for task in self._tasks:
            task.cancel()
        waits.extend(self._tasks)
        if waits:
            await asyncio.wait(waits, timeout=_CLOSE_WAIT)
        self._wake()
        _log.info("ami_closed")

    # -- actions ----------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids)}"

    async def _call(
        self, action: Mapping[str, str], kind: int, deadline: float | None
    ) -> list[Frame]:
        name, fields = prepare(action)
        proto = self._protocol
        if self._failure is not None:
            raise AmiNotReady(f"{name}: {self._failure}")
        if proto is None or not proto.usable:
            raise AmiNotReady(f"{name}: AMI not ready ({self._last_error})")
        seconds = self._cfg.action_timeout if deadline is None else deadline
        aid = self._next_id()
        self.stats.actions_sent += 1
        try:
            frames = await _exchange(proto, aid, name, fields, kind, seconds)
        except AmiTimeout:
            self.stats.actions_timed_out += 1
            _log.warning("ami_action_timeout", action=name, action_id=aid, timeout=seconds)
            raise
        check_reply(name, frames[0])
        return frames

    # -- connection lifecycle (called from the protocol and the Manager) --------------------

    def _on_connection_made(self, proto: AmiProtocol) -> None:
        if self._closing:
            proto.close("closed")
            return
        self._protocol = self._manager.protocol = proto
        self._last_error = "waiting for Login reply and FullyBooted"
        login = {
            "Action": "Login",
            "Username": self._cfg.username,
            "Secret": self._secret,
            "Events": "on",
        }
        proto.submit(self._next_id(), "Login", login, LOGIN)
        task = asyncio.get_running_loop().create_task(self._session(proto), name="ami-session")
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._session_done, proto))

    async def _session(self, proto: AmiProtocol) -> None:
        """Login gate, then keepalive, for one connection."""
        cfg = self._cfg
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                await proto.ready_event.wait()
        except TimeoutError:
            _log.warning(
                "ami_login_timeout", timeout=cfg.connect_timeout, logged_in=proto.logged_in
            )
            proto.abort(f"no Login reply and FullyBooted within {cfg.connect_timeout}s")
            return
        ping = {"Action": "Ping"}
        while True:
            await asyncio.sleep(cfg.ping_interval)
            if not proto.usable:
                return
            try:
                await _exchange(proto, self._next_id(), "Ping", ping, SINGLE, cfg.ping_timeout)
            except AmiTimeout:
                if asyncio.get_running_loop().time() - proto.last_rx < cfg.ping_timeout:
                    # Data is still flowing: an overloaded Asterisk answers the Ping behind its
                    # event backlog. Dropping this live link would lose the events in the gap.
                    _log.warning("ami_ping_late", timeout=cfg.ping_timeout)
                    continue
                # The socket can stay open while Asterisk (or a NAT/firewall in between) is gone;
                # only an unanswered Ping tells. Abort: the normal reconnect path takes over.
                self.stats.pings_failed += 1
                _log.warning("ami_ping_timeout", timeout=cfg.ping_timeout)
                proto.abort("ping timeout")
                return
            except AmiDisconnected:
                return

    def _session_done(self, proto: AmiProtocol, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug, not a network state: say so, and start over from a fresh connection
            # rather than run on without a keepalive.
            _log.error("ami_session_failed", exc_info=exc)
            proto.abort(f"internal error: {type(exc).__name__}")

    def _on_login_reply(self, proto: AmiProtocol, frame: Frame) -> None:
        if frame.get("Response") in SUCCESS:
            proto.logged_in = True
            self._check_ready(proto)
            return
        cfg = self._cfg
        message = frame.get("Message", "login refused")
        self._failure = (
            f"AMI authentication failed for user {cfg.username!r} at {cfg.host}:{cfg.port}: "
            f"{message}; not retrying (fix the secret or manager.conf, then restart)"
        )
        # Asterisk closes the session after a refused Login; reconnecting would only repeat the
        # refusal, fill its log and can get us banned (fail2ban watches these).
        _log.error("ami_login_failed", username=cfg.username, host=cfg.host, message=message)
        proto.close("authentication failed")
        self._wake()

    def _check_ready(self, proto: AmiProtocol) -> None:
        if proto.ready or not (proto.logged_in and proto.booted) or proto is not self._protocol:
            return
        proto.ready = True
        proto.ready_event.set()
        self._attempt = 0
        self._last_error = ""
        self.stats.connects += 1
        self._put_marker({"Event": CONNECTED})
        _log.info("ami_connected", host=self._cfg.host, port=self._cfg.port, version=proto.version)
        self._wake()

    def _on_connection_lost(self, proto: AmiProtocol, reason: str) -> None:
        if proto is not self._protocol:
            return
        self._protocol = self._manager.protocol = None
        for task in self._tasks:
            task.cancel()
        if proto.ready:
            self._put_marker({"Event": DISCONNECTED, "Reason": reason})
        self._last_error = f"disconnected: {reason}" if proto.ready else reason
        log = _log.info if self._closing else _log.warning
        log("ami_disconnected", reason=reason, was_ready=proto.ready)
        self._wake()
        self._schedule_reconnect()

    def _on_connect_failed(self, reason: str) -> None:
        self._last_error = reason
        _log.warning("ami_connect_failed", host=self._cfg.host, port=self._cfg.port, error=reason)
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._closing or self._failure is not None:
            return
        if self._reconnect is not None or self._protocol is not None:
            return  # already scheduled, or a connection is still being torn down
        cfg = self._cfg
        delay = backoff_delay(self._attempt, cfg.reconnect_min, cfg.reconnect_max)
        self._attempt += 1
        _log.info("ami_reconnect_scheduled", delay=round(delay, 3), attempt=self._attempt)
        self._reconnect = asyncio.get_running_loop().call_later(delay, self._reconnect_now)

    def _reconnect_now(self) -> None:
        self._reconnect = None
        self.stats.reconnects += 1
        self._manager.connect()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- queue ------------------------------------------------------------------------------

    def _put_marker(self, frame: Frame) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.stats.events_dropped += 1
            _log.error("ami_event_dropped", ami_event=frame["Event"], queue_size=self._event_limit)

    def _on_dropped(self, event: str) -> None:
        self.stats.events_dropped += 1
        held = self._drop_log.allow()
        if held is not None:
            _log.error(
                "ami_event_dropped",
                ami_event=event,
                dropped_total=self.stats.events_dropped,
                suppressed=held,
                queue_size=self._event_limit,
            )

    def _on_malformed(self, frame: Malformed) -> None:
        self.stats.malformed += 1
        held = self._malformed_log.allow()
        if held is not None:
            _log.warning(
                "ami_frame_malformed", reason=frame.reason, size=frame.size, suppressed=held
            )
