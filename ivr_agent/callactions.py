"""What an agent can do to the live call from the desk (handbook 五, 结束通话):

* the civil-language warning ("对不起,先生/小姐,请您使用文明用语,否则很抱歉,我们将结束这次通话。")
  played into the call without breaking it (ChanSpy barge of a Local channel playing the prompt);
* ending the call politely with the closing phrase ("感谢您的电话,再见!": Redirect of the caller to
  the closing context, which plays it and hangs up; Asterisk releases the agent at once).

Both need a connected call and are recorded in the call's timeline by the caller (app.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog

from ivr_agent.ami import ActionSender
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.errors import IvrAgentError

log = structlog.get_logger(__name__)

_TIMEOUT: Final = 3.0
_LIVE: Final = frozenset({CallState.CONNECTED, CallState.ON_HOLD})
# A channel name as ChanSpy's first argument: no separators that could add options or channels.
_SAFE_CHANNEL = re.compile(r"^[A-Za-z0-9/@;._\-]+$")


class CallActionRefused(IvrAgentError):
    """The action does not fit the call's state (no call, not connected, already ending)."""


@dataclass(frozen=True, slots=True)
class Done:
    call_id: str
    action: str  # "civil_warning" | "closing"
    by: str
    at: float


class CallActions:
    def __init__(
        self,
        ami: ActionSender,
        lookup: Callable[[str], Call | None],
        *,
        announce_context: str = "ivr-agent-announce",
        closing_context: str = "ivr-agent-closing",
        clock: Callable[[], float] = time.time,
        on_done: Callable[[Done], None] | None = None,
    ) -> None:
        self._ami = ami
        self._lookup = lookup
        self._announce = announce_context
        self._closing = closing_context
        self._clock = clock
        self._on_done = on_done
        self._closing_calls: set[str] = set()

    def _connected(self, call_id: str) -> Call:
        call = self._lookup(call_id)
        if call is None or call.state not in _LIVE:
            raise CallActionRefused(f"call {call_id} is not connected to an agent")
        if call_id in self._closing_calls:
            raise CallActionRefused(f"call {call_id} is already being closed")
        if not _SAFE_CHANNEL.match(call.caller_channel):
            raise CallActionRefused(f"call {call_id}: caller channel unknown")
        return call

    async def civil_warning(self, call_id: str, by: str) -> Done:
        """Play the civil-language warning to both parties; the call goes on."""
        call = self._connected(call_id)
        await self._ami.send(
            {
                "Action": "Originate",
                "Channel": f"Local/civil-warning@{self._announce}/n",
                "Application": "ChanSpy",
                # q: no beep, B: barge (both parties hear it), E: end when the call ends.
                "Data": f"{call.caller_channel},qBE",
                "CallerID": '"ivr-agent" <0>',
                "Timeout": "5000",
            },
            timeout=_TIMEOUT,
        )
        return self._done(call_id, "civil_warning", by)

    async def closing(self, call_id: str, by: str) -> Done:
        """Say the closing phrase to the caller, then hang up."""
        call = self._connected(call_id)
        self._closing_calls.add(call_id)
        try:
            await self._ami.send(
                {
                    "Action": "Redirect",
                    "Channel": call.caller_channel,
                    "Context": self._closing,
                    "Exten": "s",
                    "Priority": "1",
                },
                timeout=_TIMEOUT,
            )
        except BaseException:
            self._closing_calls.discard(call_id)
            raise
        return self._done(call_id, "closing", by)

    def forget(self, call_id: str) -> None:
        self._closing_calls.discard(call_id)

    def _done(self, call_id: str, action: str, by: str) -> Done:
        done = Done(call_id, action, by, self._clock())
        log.info("call_action_done", call_id=call_id, action=action, agent=by)
        if self._on_done is not None:
            self._on_done(done)
        return done
