"""The handbook's 5-step complaint procedure as states and checks (section 六)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Final

STEPS: Final = 5
MAX_TEXT: Final = 200_000  # characters per field: 100 KB of notes is kept intact
MAX_CATEGORY: Final = 64


class ComplaintError(ValueError):
    """A complaint that cannot be accepted; the message says why."""


class Status(enum.Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    AWAITING_CALLBACK = "awaiting_callback"
    RESOLVED = "resolved"
    CLOSED = "closed"


_S = Status
ALLOWED: Final[Mapping[Status, frozenset[Status]]] = {
    _S.OPEN: frozenset({_S.IN_PROGRESS, _S.AWAITING_CALLBACK, _S.RESOLVED, _S.CLOSED}),
    _S.IN_PROGRESS: frozenset({_S.AWAITING_CALLBACK, _S.RESOLVED, _S.CLOSED}),
    _S.AWAITING_CALLBACK: frozenset({_S.IN_PROGRESS, _S.RESOLVED, _S.CLOSED}),
    _S.RESOLVED: frozenset({_S.CLOSED, _S.IN_PROGRESS}),
    _S.CLOSED: frozenset(),
}


def check_steps(steps: Sequence[str]) -> tuple[str, ...]:
    """Exactly five step notes (empty allowed for steps not done yet), each within MAX_TEXT.
    Step 1 (listen and record) must say something: a complaint is what the caller said."""
    if len(steps) != STEPS:
        raise ComplaintError(f"steps: exactly {STEPS} notes, got {len(steps)}")
    for i, text in enumerate(steps, 1):
        if len(text) > MAX_TEXT:
            raise ComplaintError(f"steps[{i}]: at most {MAX_TEXT} characters")
    if not steps[0].strip():
        raise ComplaintError("steps[1]: record what the caller said")
    return tuple(steps)


def initial_status(steps: Sequence[str], wants_callback: bool) -> Status:
    """A new complaint: awaiting a callback if one is promised, in progress once analysed."""
    if wants_callback:
        return Status.AWAITING_CALLBACK
    return Status.IN_PROGRESS if any(s.strip() for s in steps[2:]) else Status.OPEN


def change_status(current: Status, new: Status) -> Status:
    if new is current:
        return current
    if new not in ALLOWED[current]:
        raise ComplaintError(f"a complaint cannot go from {current.value} to {new.value}")
    return new
