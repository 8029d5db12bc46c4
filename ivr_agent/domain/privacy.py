"""Privacy rules of the agent desk: masking, and which caller an agent may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# An agent keeps access to a caller's file this long after their call with them ended.
RECENT_SECONDS: Final = 8 * 3600.0


def mask_number(number: str) -> str:
    """'13800138000' -> '138****8000'; short numbers keep only their last two digits."""
    if len(number) >= 7:
        return number[:3] + "****" + number[-4:]
    if len(number) > 2:
        return "*" * (len(number) - 2) + number[-2:]
    return "*" * len(number)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A call an agent handled: its caller, and when it ended (None: still live)."""

    call_id: str
    caller_number: str
    ended_at: float | None


def may_see_call(agent: str, call_agent: str, ended_at: float | None, now: float) -> bool:
    """An agent sees a call's caller only while it is theirs or for RECENT_SECONDS after."""
    if not agent or agent != call_agent:
        return False
    return ended_at is None or now - ended_at <= RECENT_SECONDS


def visible_numbers(assignments: Iterable[Assignment], now: float) -> frozenset[str]:
    """The caller numbers an agent may see now: those of their live and recent calls."""
    return frozenset(
        a.caller_number
        for a in assignments
        if a.caller_number and (a.ended_at is None or now - a.ended_at <= RECENT_SECONDS)
    )
