"""The desk's fan-out: per-agent WebSocket connections, each with a bounded queue.

A frame is serialised once and offered to every connection of its agent with `put_nowait`: a
slow or dead client fills only its own queue and is then closed (it reconnects and resumes from
the last `seq` it saw), so it never delays the others. The last frames of each agent are kept
for that resume.
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
    def __init__(self) -> None:
        self._conns: dict[str, set[Connection]] = {}
        self._kept: dict[str, collections.deque[tuple[int, str, str]]] = {}
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        # For the benchmark: perf_counter() when the triggering AMI event was handled.
        self.on_publish: Callable[[str, dict[str, Any]], None] | None = None

    def subscribe(self, agent: str, lang: str, client: str) -> Connection:
        conn = Connection(agent, lang, client)
        self._conns.setdefault(agent, set()).add(conn)
        return conn

    def unsubscribe(self, conn: Connection) -> None:
        conns = self._conns.get(conn.agent)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._conns[conn.agent]

    def languages(self, agent: str) -> set[str]:
        return {c.lang for c in self._conns.get(agent, ())}

    def connected(self) -> int:
        return sum(len(c) for c in self._conns.values())

    def publish(self, agent: str, frames: dict[str, dict[str, Any]]) -> int:
        """`frames` by language; returns the seq given to them."""
        self.seq += 1
        seq = self.seq
        texts: dict[str, str] = {}
        for lang, frame in frames.items():
            frame["seq"] = seq
            frame["sent_at"] = time.time()
            texts[lang] = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
        kept = self._kept.setdefault(agent, collections.deque(maxlen=KEEP_FRAMES))
        for lang, text in texts.items():
            kept.append((seq, lang, text))
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
