"""Glue for the silent line: feeds call events to `domain.silence` and Redirects silent callers.

The rule lives in `domain/silence.py`; this module only keeps one `Watch` per live call, wakes
at the earliest due time, and performs the one reaction: an AMI `Redirect` of the caller leg to
the dialplan's silent-line context, which plays the prompt and hangs up (the agent leg is
released by Asterisk at once, so the agent is free for the next call).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from ivr_agent.ami import ActionSender
from ivr_agent.domain import silence
from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.events import (
    AgentConnect,
    ChannelEvent,
    ChannelTalkingStart,
    ChannelTalkingStop,
    Hold,
    Unhold,
)
from ivr_agent.domain.silence import Signal, SilencePolicy, Watch
from ivr_agent.errors import AmiActionFailed, AmiDisconnected, AmiError

log = structlog.get_logger(__name__)

_REDIRECT_TIMEOUT: Final = 3.0
_IDLE_WAKE: Final = 60.0  # upper bound on a sleep; a new watch wakes the loop earlier anyway


@dataclass(frozen=True, slots=True)
class Triggered:
    """One silent-line reaction, for the timeline and the reaction-time benchmark."""

    call_id: str
    by: str  # "rule" or the agent who pressed the button
    window_end: float | None  # when the rule's window closed (None for a manual trigger)
    redirected_at: float
    ok: bool
    error: str = ""


class SilentLine:
    """Owns the watches; `observe()` is called on the AMI hot path (sync, cheap)."""

    name = "silent-line"

    def __init__(
        self,
        ami: ActionSender,
        policy: SilencePolicy,
        *,
        context: str = "ivr-agent-silent-line",
        prompt_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        on_triggered: Callable[[Triggered], None] | None = None,
    ) -> None:
        self._ami = ami
        self._policy = policy
        self._context = context
        self._prompt = prompt_file
        self._clock = clock
        self._on_triggered = on_triggered
        self._watches: dict[str, Watch] = {}
        self._channels: dict[str, str] = {}  # call_id -> caller leg channel, for the Redirect
        self._heap: list[tuple[float, str]] = []
        self._wake = asyncio.Event()
        self.prompt_missing = False
        self.history: list[Triggered] = []

    def prompt_present(self) -> bool:
        """The prompt file exists (always True when no file is configured to check)."""
        return self._prompt is None or self._prompt.is_file()

    def watching(self, call_id: str) -> Watch | None:
        return self._watches.get(call_id)

    # -- hot path -------------------------------------------------------------------------------

    def observe(self, change: CallChange) -> None:
        """Feed one applied call change (its event, if any) to the call's watch."""
        call = change.call
        cid = call.call_id
        if change.ended:
            self._drop(cid)
            return
        event = change.event
        if isinstance(event, ChannelEvent) and event.uniqueid == cid and event.channel:
            self._channels[cid] = event.channel
        watch = self._watches.get(cid)
        if watch is None:
            if call.answered_at is None:
                return
            watch = silence.start(cid, call.answered_at)
        signal = _signal(event, cid)
        if signal is not None and event is not None:
            watch = silence.apply(watch, signal, event.at)
        self._put(watch)

    def on_resync(self) -> None:
        self.gap()

    def gap(self) -> None:
        """Events may have been missed (reconnect, drops): every open window restarts."""
        now = self._clock()
        for watch in list(self._watches.values()):
            self._put(silence.apply(watch, Signal.GAP, now))

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wake at the earliest due time; Redirect the calls that stayed silent."""
        while True:
            timeout = _IDLE_WAKE
            while self._heap:
                due, cid = self._heap[0]
                watch = self._watches.get(cid)
                if watch is None or silence.due_at(watch, self._policy) != due:
                    heapq.heappop(self._heap)  # stale entry: the watch moved on
                    continue
                timeout = max(0.0, due - self._clock())
                break
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
                continue
            except TimeoutError:
                pass
            await self._fire_due()

    async def _fire_due(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            due, cid = heapq.heappop(self._heap)
            watch = self._watches.get(cid)
            if watch is None or silence.due_at(watch, self._policy) != due:
                continue
            if silence.is_silent(watch, self._policy, now):
                self._watches[cid] = silence.fired(watch)
                await self._redirect(cid, "rule", due)

    async def trigger(self, call_id: str, by: str) -> Triggered:
        """An agent's button: play the silent-line prompt to a caller they cannot hear."""
        watch = self._watches.get(call_id)
        if watch is None or call_id not in self._channels:
            raise AmiActionFailed("Redirect", f"no live call {call_id}")
        if watch.fired:
            raise AmiActionFailed("Redirect", f"silent line already played on call {call_id}")
        self._watches[call_id] = silence.fired(watch)
        return await self._redirect(call_id, by, None)

    async def _redirect(self, cid: str, by: str, window_end: float | None) -> Triggered:
        channel = self._channels.get(cid, "")
        if self._prompt is not None and not self._prompt.is_file():
            # The dialplan still answers and hangs up politely without the file; say it loudly.
            self.prompt_missing = True
            log.error("silent_line_prompt_missing", call_id=cid, prompt=str(self._prompt))
        action = {
            "Action": "Redirect",
            "Channel": channel,
            "Context": self._context,
            "Exten": "s",
            "Priority": "1",
        }
        error = ""
        try:
            await self._ami.send(action, timeout=_REDIRECT_TIMEOUT)
        except AmiDisconnected as err:
            # Unknown whether Asterisk acted: the reconnect's gap reopens the window, and a call
            # that did move shows IVR_OUTCOME=silent_line; either way no double prompt.
            self._unfire(cid)
            error = str(err)
        except AmiError as err:  # e.g. "No such channel": the caller hung up meanwhile
            error = str(err)
        done = Triggered(cid, by, window_end, self._clock(), not error, error)
        self.history.append(done)
        if len(self.history) > 10_000:
            del self.history[:5000]
        if error:
            log.warning("silent_line_redirect_failed", call_id=cid, channel=channel, error=error)
        else:
            late = None if window_end is None else round((done.redirected_at - window_end) * 1000)
            log.info("silent_line_triggered", call_id=cid, by=by, late_ms=late)
        if self._on_triggered is not None:
            self._on_triggered(done)
        return done

    # -- bookkeeping ----------------------------------------------------------------------------

    def _put(self, watch: Watch) -> None:
        old = self._watches.get(watch.call_id)
        self._watches[watch.call_id] = watch
        due = silence.due_at(watch, self._policy)
        if due is not None and (old is None or silence.due_at(old, self._policy) != due):
            heapq.heappush(self._heap, (due, watch.call_id))
            if self._heap[0] == (due, watch.call_id):
                self._wake.set()

    def _unfire(self, cid: str) -> None:
        watch = self._watches.get(cid)
        if watch is not None:
            self._watches[cid] = Watch(
                call_id=cid, phase=watch.phase, opened_at=None, on_hold=watch.on_hold
            )

    def _drop(self, cid: str) -> None:
        self._watches.pop(cid, None)
        self._channels.pop(cid, None)


def _signal(event: object, call_id: str) -> Signal | None:
    """The silence signal an event carries for its call, if any."""
    if isinstance(event, ChannelTalkingStart) and event.uniqueid == call_id:
        return Signal.TALK_START
    if isinstance(event, ChannelTalkingStop) and event.uniqueid == call_id:
        return Signal.TALK_STOP
    if isinstance(event, AgentConnect):
        return Signal.AGENT_CONNECTED
    if isinstance(event, Hold):
        return Signal.HOLD
    if isinstance(event, Unhold):
        return Signal.UNHOLD
    return None
