"""Login rate limit: a sliding window of failures per user name and per client address."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Final

MAX_FAILURES: Final = 5
WINDOW: Final = 300.0  # seconds
_MAX_KEYS: Final = 10_000  # bound the memory an attacker can make us use


class LoginLimiter:
    """`blocked()` says how long to wait; `failed()` counts a failure; `reset()` on success."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, collections.deque[float]] = {}

    def blocked(self, keys: Iterable[str], now: float) -> float | None:
        """Seconds until another attempt is allowed, or None if allowed now."""
        wait = 0.0
        for key in keys:
            times = self._prune(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window - now)
        return wait if wait > 0 else None

    def failed(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            if key not in self._failures and len(self._failures) >= _MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(key, collections.deque()).append(now)

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def _prune(self, key: str, now: float) -> collections.deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
