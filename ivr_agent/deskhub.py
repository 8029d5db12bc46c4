"""The desk's fan-out: per-agent WebSocket connections, each with a bounded queue.

A frame is serialised once and offered to every connection of its agent with `put_nowait`: a
slow or dead client fills only its own queue and is then closed (it reconnects and resumes from
the last `seq` it saw), so it never delays the others.

Frames are kept for that resume only while somebody can ask for them: for an agent with an open
desk, or whose last desk closed less than RESUME_GRACE ago (desk.js retries within 10 s), in
that desk's languages; at most KEEP_FRAMES per agent and KEEP_BYTES for all agents together
(oldest first out). `listening(agent)` tells the desk which languages to render at all: an agent
without a desk costs no rendering and no memory.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable
from typing import Any, Final

import structlog

log = structlog.get_logger(__name__)

QUEUE_FRAMES: Final = 64  # a desk receives a few frames per call: 64 means the client is stuck
KEEP_FRAMES: Final = 32  # per agent, for a reconnecting desk's resume
KEEP_BYTES: Final = 16 * 1024 * 1024  # all agents' kept frames together (a pop is ~2-16 KB)
RESUME_GRACE: Final = 300.0  # s after an agent's last desk closed: its frames are still kept

_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Connection:
    """One open desk. `queue` holds serialised frames; `closed` is set when it must go."""

    def __init__(self, agent: str, lang: str, client: str, maxsize: int = QUEUE_FRAMES) -> None:
        self.agent = agent
        self.lang = lang
        self.client = client
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.closed = asyncio.Event()
        self.reason = ""

    def offer(self, text: str) -> bool:
        if self.closed.is_set():
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close("slow")
            return False
        return True

    def close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.reason = reason
            self.closed.set()
            log.warning("desk_client_closed", agent=self.agent, client=self.client, reason=reason)


class Hub:
    def __init__(
        self,
        *,
        keep_frames: int = KEEP_FRAMES,
        keep_bytes: int = KEEP_BYTES,
        grace: float = RESUME_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conns: dict[str, set[Connection]] = {}
        # Agents whose last desk closed: when, and in which languages (oldest first).
        self._away: dict[str, tuple[float, frozenset[str]]] = {}
        self._kept: dict[str, collections.deque[tuple[int, str, str]]] = {}
        # Every kept frame, oldest first (agent, seq, lang): what KEEP_BYTES evicts. `_stale`
        # counts its entries whose frame already left (per-agent bound, expiry).
        self._order: collections.deque[tuple[str, int, str]] = collections.deque()
        self._stale = 0
        self.kept_bytes = 0
        self._keep_frames = keep_frames
        self._keep_bytes = keep_bytes
        self._grace = grace
        self._clock = clock
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        # For the benchmark: perf_counter() when the triggering AMI event was handled.
        self.on_publish: Callable[[str, dict[str, Any]], None] | None = None

    def subscribe(self, agent: str, lang: str, client: str) -> Connection:
        conn = Connection(agent, lang, client)
        self._conns.setdefault(agent, set()).add(conn)
        self._away.pop(agent, None)
        return conn

    def unsubscribe(self, conn: Connection) -> None:
        conns = self._conns.get(conn.agent)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._conns[conn.agent]
                langs = {c[1] for c in self._kept.get(conn.agent, ())} | {conn.lang}
                self._away[conn.agent] = (self._clock(), frozenset(langs))

    def languages(self, agent: str) -> set[str]:
        return {c.lang for c in self._conns.get(agent, ())}

    def listening(self, agent: str) -> frozenset[str]:
        """The languages `agent`'s frames are wanted in now: those of their open desks, else
        of the desk that closed within the grace period (for its resume); empty: nobody."""
        self._expire()
        conns = self._conns.get(agent)
        if conns:
            return frozenset(c.lang for c in conns)
        away = self._away.get(agent)
        return away[1] if away is not None else frozenset()

    def connected(self) -> int:
        return sum(len(c) for c in self._conns.values())

    def publish(self, agent: str, frames: dict[str, dict[str, Any]]) -> int:
        """`frames` by language; returns the seq given to them. Kept for a resume only while
        the agent is listening (see `listening`)."""
        self.seq += 1
        seq = self.seq
        texts: dict[str, str] = {}
        for lang, frame in frames.items():
            frame["seq"] = seq
            frame["sent_at"] = time.time()
            texts[lang] = _JSON(frame)
        wanted = self.listening(agent)
        for lang, text in texts.items():
            if lang in wanted:
                self._keep(agent, seq, lang, text)
        for conn in list(self._conns.get(agent, ())):
            text = texts.get(conn.lang) or next(iter(texts.values()))
            if conn.offer(text):
                self.sent += 1
            else:
                self.dropped += 1
        if self.on_publish is not None:
            self.on_publish(agent, next(iter(frames.values())))
        return seq

    def replay(self, conn: Connection, after: int) -> int:
        """Offer `conn` the kept frames of its agent newer than `after`; returns how many."""
        n = 0
        for seq, lang, text in self._kept.get(conn.agent, ()):
            if seq > after and lang == conn.lang and conn.offer(text):
                n += 1
        return n

    def close_all(self, reason: str) -> None:
        for conns in self._conns.values():
            for conn in conns:
                conn.close(reason)

    def _keep(self, agent: str, seq: int, lang: str, text: str) -> None:
        kept = self._kept.get(agent)
        if kept is None:
            kept = self._kept[agent] = collections.deque()
        kept.append((seq, lang, text))
        self._order.append((agent, seq, lang))
        self.kept_bytes += len(text)
        if len(kept) > self._keep_frames:
            self.kept_bytes -= len(kept.popleft()[2])
            self._stale += 1
        while self.kept_bytes > self._keep_bytes:
            self._evict_oldest()
        if self._stale > len(self._order) // 2:
            # Entries of frames gone by the per-agent bound or an expiry: rebuild the order.
            live = ((s, a, lang) for a, k in self._kept.items() for s, lang, _ in k)
            self._order = collections.deque((a, s, lang) for s, a, lang in sorted(live))
            self._stale = 0

    def _evict_oldest(self) -> None:
        """Drop the oldest frame kept (of any agent)."""
        while self._order:
            agent, seq, lang = self._order.popleft()
            kept = self._kept.get(agent)
            # The oldest entry of `_order` that is still kept is its agent's oldest frame.
            if kept and kept[0][0] == seq and kept[0][1] == lang:
                self.kept_bytes -= len(kept.popleft()[2])
                if not kept:
                    del self._kept[agent]
                return
            self._stale -= 1

    def _expire(self) -> None:
        """Forget the frames of agents away for longer than the grace period."""
        if not self._away:
            return
        limit = self._clock() - self._grace
        while self._away:
            agent, (since, _) = next(iter(self._away.items()))
            if since > limit:
                return
            del self._away[agent]
            kept = self._kept.pop(agent, None)
            if kept:
                self.kept_bytes -= sum(len(text) for _, _, text in kept)
                self._stale += len(kept)
