"""Simulated callers over Local channels: AMI Originate into the lab hotline, bounded in count,
rate and time.

`Local/s@lab-caller-<scenario>/n`: the `;2` half plays the caller (speech, or no frames at all)
and the `;1` half runs the operator's `ivr-agent-hotline` context, exactly like a trunk call.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Final

import structlog

from ivr_agent.ami import ActionSender
from ivr_agent.errors import AmiError

log = structlog.get_logger(__name__)

SCENARIOS: Final = ("talking", "silent", "callback")
HOTLINE_CONTEXT: Final = "ivr-agent-hotline"
# Cap so that a typo in --count/--rate cannot flood the lab (asterisk-lab.md §6: ~100 calls/s).
MAX_COUNT: Final = 10_000
MAX_RATE: Final = 100.0
_SEND_TIMEOUT: Final = 5.0
_CALLER_NAME_DROP = re.compile(r'["<>\\\x00-\x1f]')


@dataclass(frozen=True, slots=True)
class LocalCall:
    scenario: str
    caller_number: str
    caller_name: str
    dialed: str = "95000"
    hold_s: float = 10.0
    queue: str = ""  # the hotline queue for this call (IVR_AGENT_QUEUE); '' the global one

    def originate(self) -> dict[str, str]:
        """The Originate action for this call (the caller's name is stripped of quoting)."""
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; one of {', '.join(SCENARIOS)}")
        if not self.dialed.isdigit():
            raise ValueError(f"dialed number must be digits, got {self.dialed!r}")
        if self.caller_number and not self.caller_number.lstrip("+").isdigit():
            raise ValueError(f"caller number must be digits, got {self.caller_number!r}")
        if self.queue and not self.queue.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"queue must be letters, digits, - or _, got {self.queue!r}")
        name = _CALLER_NAME_DROP.sub("", self.caller_name).strip()
        return {
            "Action": "Originate",
            "Channel": f"Local/s@lab-caller-{self.scenario}/n",
            "Context": HOTLINE_CONTEXT,
            "Exten": self.dialed,
            "Priority": "1",
            "CallerID": f'"{name}" <{self.caller_number}>' if name else self.caller_number,
            "Variable": f"CALLER_WAIT={max(0.0, self.hold_s):g}"
            + (f",IVR_AGENT_QUEUE={self.queue}" if self.queue else ""),
            "Timeout": "15000",
        }


@dataclass(slots=True)
class SimResult:
    queued: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def place_local_calls(
    ami: ActionSender,
    call: LocalCall,
    *,
    count: int = 1,
    rate: float = 1.0,
    max_seconds: float | None = None,
) -> SimResult:
    """Originate `count` calls at `rate` per second; stops early at `max_seconds`.

    Returns how many Asterisk queued; the calls' outcome is in the AMI event stream.
    """
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be 1..{MAX_COUNT}, got {count}")
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be > 0 and <= {MAX_RATE}, got {rate}")
    action = call.originate()
    limit = max_seconds if max_seconds is not None else count / rate + 30.0
    result = SimResult()
    started = time.monotonic()
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            await ami.send(action, timeout=_SEND_TIMEOUT)
            result.queued += 1
        except AmiError as err:
            result.failed += 1
            if len(result.errors) < 10:
                result.errors.append(str(err))

    try:
        async with asyncio.timeout(limit):
            for i in range(count):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)
    except TimeoutError:
        result.errors.append(f"stopped after {limit:g}s")
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    result.seconds = round(time.monotonic() - started, 2)
    log.info(
        "simulated_calls_placed",
        scenario=call.scenario,
        queued=result.queued,
        failed=result.failed,
        duration_ms=round(result.seconds * 1000),
    )
    return result
