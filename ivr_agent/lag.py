"""AMI event lag (event Timestamp -> processing time), kept as a bounded sample for p50/p99."""

from __future__ import annotations

import random


class LagMeter:
    """Reservoir sample of lags in seconds: constant memory, unbiased percentiles."""

    def __init__(self, size: int = 4096, seed: int = 0) -> None:
        self._size = size
        self._samples: list[float] = []
        self._seen = 0
        self._rng = random.Random(seed)  # noqa: S311  # sampling, not security

    def add(self, lag: float) -> None:
        self._seen += 1
        if len(self._samples) < self._size:
            self._samples.append(lag)
            return
        slot = self._rng.randrange(self._seen)
        if slot < self._size:
            self._samples[slot] = lag

    @property
    def count(self) -> int:
        return self._seen

    def percentile(self, p: float) -> float | None:
        """The p-th percentile (0..100) of the sample, or None when empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]

    def reset(self) -> None:
        self._samples.clear()
        self._seen = 0
