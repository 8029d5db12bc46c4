"""The silent-line rule (handbook 五): connected, and the caller says nothing -> prompt, hang up.

"电话接通了,假如对方无应答时: 对不起,我听不到你的声音,你换一部电话再打过来,好吗?我现在挂机了。"

Pure code: a `Watch` per call, fed the caller leg's talk events, hold/unhold and link gaps, with
the time passed in. The glue asks `due_at()` when to look again and `is_silent(now)` whether to
act. The rule, as operators configure it:

* A window opens when an agent is connected (`agent_window`, default 8 s) and, if configured,
  when the hotline answers (`ivr_window`: callers who say nothing in the IVR/queue stage).
* Any caller speech inside the window cancels it for the rest of the call's phase. A caller who
  is already talking when the window opens counts as speech.
* Never while on hold: hold closes the window; unhold opens a fresh full window.
* A gap in what we saw (AMI link dropped, events lost) restarts the window from the moment we
  can see again, because speech may have been missed: better late than a false prompt.
* It fires at most once per call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final


class Phase(enum.Enum):
    IVR = "ivr"  # answered by the hotline, no agent yet
    AGENT = "agent"  # connected to an agent


@dataclass(frozen=True, slots=True)
class SilencePolicy:
    agent_window: float = 8.0
    ivr_window: float | None = None  # None: no silent-line before an agent answers

    def __post_init__(self) -> None:
        if self.agent_window <= 0:
            raise ValueError("agent_window must be > 0 seconds")
        if self.ivr_window is not None and self.ivr_window <= 0:
            raise ValueError("ivr_window must be > 0 seconds (or None to disable)")

    def window(self, phase: Phase) -> float | None:
        return self.agent_window if phase is Phase.AGENT else self.ivr_window


class Signal(enum.Enum):
    TALK_START = "talk_start"
    TALK_STOP = "talk_stop"
    HOLD = "hold"
    UNHOLD = "unhold"
    AGENT_CONNECTED = "agent_connected"
    GAP = "gap"  # events may have been missed (reconnect, dropped events)
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Watch:
    call_id: str
    phase: Phase
    opened_at: float | None  # start of the current window; None while closed (hold, ended)
    heard: bool = False  # caller speech inside the current window
    talking: bool = False  # between a TALK_START and its TALK_STOP
    on_hold: bool = False
    fired: bool = False
    ended: bool = False


_CLOSED: Final = None


def start(call_id: str, at: float, phase: Phase = Phase.IVR, *, talking: bool = False) -> Watch:
    """A watch for a call the hotline answered at `at` (or picked up mid-call by a resync)."""
    return Watch(call_id=call_id, phase=phase, opened_at=at, heard=talking, talking=talking)


def apply(watch: Watch, signal: Signal, at: float) -> Watch:
    """The watch after one signal. Signals after the end or after firing change nothing."""
    if watch.ended or watch.fired:
        return replace(watch, ended=True) if signal is Signal.ENDED else watch
    match signal:
        case Signal.TALK_START:
            return replace(watch, talking=True, heard=watch.opened_at is not None or watch.heard)
        case Signal.TALK_STOP:
            return replace(watch, talking=False)
        case Signal.HOLD:
            return replace(watch, on_hold=True, opened_at=_CLOSED)
        case Signal.UNHOLD:
            return replace(watch, on_hold=False, opened_at=at, heard=watch.talking)
        case Signal.AGENT_CONNECTED:
            opened = _CLOSED if watch.on_hold else at
            return replace(watch, phase=Phase.AGENT, opened_at=opened, heard=watch.talking)
        case Signal.GAP:
            # Talk state is unknown after a gap: assume not talking, restart the window.
            opened = _CLOSED if watch.on_hold else at
            return replace(watch, opened_at=opened, heard=False, talking=False)
        case Signal.ENDED:
            return replace(watch, ended=True, opened_at=_CLOSED)


def due_at(watch: Watch, policy: SilencePolicy) -> float | None:
    """When the window closes, if it can still fire; None if nothing is pending."""
    window = policy.window(watch.phase)
    if window is None or watch.opened_at is None or watch.heard or watch.fired or watch.ended:
        return None
    return watch.opened_at + window


def is_silent(watch: Watch, policy: SilencePolicy, now: float) -> bool:
    """True when the whole window passed with no caller speech: play the prompt now."""
    due = due_at(watch, policy)
    return due is not None and now >= due and not watch.talking


def fired(watch: Watch) -> Watch:
    """Mark the prompt as triggered: it never fires twice for a call."""
    return replace(watch, fired=True, opened_at=_CLOSED)
