"""Call records and their audit timeline: batched writes, operator queries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import aiosqlite
import structlog

from ivr_agent.errors import StorageError
from ivr_agent.store.db import utc_text
from ivr_agent.store.snapshot import call_to_json

log = structlog.get_logger(__name__)

COLUMNS = (
    "call_id",
    "state",
    "caller_number",
    "caller_name",
    "dialed_number",
    "queue",
    "agent",
    "started_at",
    "answered_at",
    "queued_at",
    "agent_connected_at",
    "ended_at",
    "hold_time",
    "talk_time",
    "disposition",
    "hangup_cause",
    "hangup_cause_txt",
    "reconciled",
    "updated_at",
    "snapshot",
)
_TIME_COLUMNS = frozenset(
    {"started_at", "answered_at", "queued_at", "agent_connected_at", "ended_at", "updated_at"}
)
_UPSERT = (
    f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    f"ON CONFLICT(call_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
)
# What queries return: everything but the internal snapshot.
_PUBLIC = ", ".join(COLUMNS[:-1])
# How long the last flush at shutdown keeps retrying a locked database (seconds).
_LAST_FLUSH_PATIENCE = 30.0
_INSERT_EVENT = (
    "INSERT INTO call_events (call_id, at, kind, uniqueid, detail) VALUES (?, ?, ?, ?, ?)"
)
# The timeline detail's text: compact, UTF-8 as is (one encoder, built once).
_DETAIL_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _from_json(insert: str, width: int) -> str:
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(width))
    return f"{insert} SELECT {values} FROM json_each(?)"


# A flush hands the timeline its rows as one JSON array, one statement, not an executemany:
# that releases and retakes the GIL around every row, and while the event loop thread is busy
# each retake waits up to the interpreter's switch interval. Under the replay flood a
# 2,000-row flush took 1.5 s that way and the rows piled up until the flood ended. SQLite reads
# the array in C, off the GIL (json_extract gives back the same values and types as bound
# parameters). A row embeds its detail's text as a JSON object, not re-encoded as a string:
# SQLite hands back its compact text, which is that same text (tests/adapters/test_store.py
# checks it), so the event loop only joins strings.
_INSERT_EVENTS_JSON: Final = _from_json(
    "INSERT INTO call_events (call_id, at, kind, uniqueid, detail)", 5
)
_UPSERT_JSON: Final = (
    _from_json(f"INSERT INTO calls ({', '.join(COLUMNS)})", len(COLUMNS))
    # `WHERE true`: SQLite's rule for an upsert on INSERT ... SELECT (parsing ambiguity)
    + " WHERE true"
    + _UPSERT[_UPSERT.index(" ON CONFLICT") :]
)
# A row's columns but the last (JSON already); allow_nan=False: JSON has no NaN/Infinity.
_SCALARS: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode


class CallLike(Protocol):
    """What the store needs of a domain call (ivr_agent.domain.calls.Call)."""

    @property
    def call_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    call_id: str
    at: float
    kind: str
    uniqueid: str
    detail: Mapping[str, object]


def call_row(call: object) -> tuple[object, ...]:
    """Map a domain Call onto the calls table's columns (enums by value, times as UTC text)."""
    values: list[object] = []
    for column in COLUMNS[:-1]:
        value = getattr(call, column)
        if column in _TIME_COLUMNS:
            value = utc_text(value)
        elif hasattr(value, "value"):
            value = value.value
        elif isinstance(value, bool):
            value = int(value)
        values.append(value)
    values.append(call_to_json(call))
    return tuple(values)


class CallStore:
    """Buffers call upserts (coalesced per call) and timeline rows; flushes them in batches.

    A flood of events becomes one transaction per `flush_interval`, not one fsync per event.
    What `flush()` has committed survives a kill -9 (WAL + synchronous=FULL).
    """

    def __init__(
        self, conn: aiosqlite.Connection, *, flush_interval: float, flush_max_rows: int
    ) -> None:
        self._conn = conn
        self._interval = flush_interval
        self._max_rows = flush_max_rows
        # Latest version of each call since the last flush: rows are built once, at flush time.
        self._calls: dict[str, CallLike] = {}
        # Timeline rows with their detail still a dict: encoded once per flush, in one call.
        self._events: list[tuple[str, str | None, str, str, dict[str, object]]] = []
        self._wake = asyncio.Event()
        self.rows_written = 0
        self.flushes = 0
        self._stopping = False

    @property
    def pending(self) -> int:
        return len(self._calls) + len(self._events)

    def put_call(self, call: CallLike) -> None:
        self._calls[call.call_id] = call
        if self.pending >= self._max_rows:
            self._wake.set()

    def put_event(self, entry: TimelineEntry) -> None:
        self.put_timeline(entry.call_id, entry.at, entry.kind, entry.uniqueid, entry.detail)

    def put_timeline(
        self, call_id: str, at: float, kind: str, uniqueid: str, detail: Mapping[str, object]
    ) -> None:
        """`put_event` without building a TimelineEntry: the AMI hot path's way in."""
        row = (
            call_id,
            utc_text(at),
            kind,
            uniqueid,
            detail if type(detail) is dict else dict(detail),
        )
        self._events.append(row)
        if len(self._calls) + len(self._events) >= self._max_rows:
            self._wake.set()

    async def flush(self) -> int:
        """Commit everything buffered in one transaction; returns rows written."""
        if not self.pending:
            return 0
        pending_calls, self._calls = self._calls, {}
        calls = [call_row(c) for c in pending_calls.values()]
        events, self._events = self._events, []
        started = time.perf_counter()
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                if events:
                    payload = _timeline_json(events)
                    if payload is None:  # a NaN or an Infinity in a detail: JSON has none
                        await self._conn.executemany(_INSERT_EVENT, _event_rows(events))
                    else:
                        await self._conn.execute(_INSERT_EVENTS_JSON, (payload,))
                if calls:
                    payload = _calls_json(calls)
                    if payload is None:
                        await self._conn.executemany(_UPSERT, calls)
                    else:
                        await self._conn.execute(_UPSERT_JSON, (payload,))
                await self._conn.execute("COMMIT")
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
        except BaseException as err:
            # Put the batch back (newer versions of a call win) so nothing is lost, whether
            # SQLite failed or the flush was cancelled; the next flush retries it.
            for call_id, call in pending_calls.items():
                self._calls.setdefault(call_id, call)
            self._events[:0] = events
            if isinstance(err, sqlite3.Error):
                n = len(calls) + len(events)
                raise StorageError(f"flush of {n} rows failed: {err}") from err
            raise
        n = len(calls) + len(events)
        self.rows_written += n
        self.flushes += 1
        log.debug(
            "db_flushed", rows=n, duration_ms=round((time.perf_counter() - started) * 1000, 2)
        )
        return n

    async def _rollback(self) -> None:
        # No transaction may be open (BEGIN itself failed): nothing to undo then.
        with contextlib.suppress(sqlite3.Error):
            await self._conn.execute("ROLLBACK")

    def stop(self) -> None:
        """Ask `run()` to do a last flush and return."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Flush loop, owned by the app's TaskGroup; returns after `stop()` and a last flush.
        Errors are logged and retried."""
        while not self._stopping:
            try:
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except StorageError as err:
                log.exception("db_flush_failed", error=str(err), pending=self.pending)
                await asyncio.sleep(min(1.0, self._interval * 10))
        await self._last_flush()

    async def _last_flush(self) -> None:
        """At shutdown a busy database (another writer holding the lock) is waited out for a
        while rather than turned into a crash; what still cannot be written is logged."""
        deadline = time.monotonic() + _LAST_FLUSH_PATIENCE
        while True:
            try:
                await self.flush()
            except StorageError as err:
                if time.monotonic() >= deadline:
                    log.exception("db_last_flush_failed", error=str(err), lost_rows=self.pending)
                    return
                log.warning("db_flush_retry", error=str(err), pending=self.pending)
                await asyncio.sleep(0.5)
            else:
                return


def _timeline_json(rows: list[tuple[str, str | None, str, str, dict[str, object]]]) -> str | None:
    """The rows as one JSON array, encoded in one call (the same text as encoding each row on
    its own: one encoder, same settings); None when a detail holds NaN/Infinity or a value JSON
    has no form for (json.dumps writes NaN, JSON has none): then `_event_rows` per row."""
    try:
        return _SCALARS(rows)
    except (ValueError, TypeError):
        return None


def _event_rows(
    rows: list[tuple[str, str | None, str, str, dict[str, object]]],
) -> list[tuple[str, str | None, str, str, str]]:
    """The rows for the plain INSERT, each detail as its own JSON text."""
    return [(c, at, kind, uid, _DETAIL_JSON(detail)) for c, at, kind, uid, detail in rows]


def _calls_json(rows: list[tuple[object, ...]]) -> str | None:
    """Call rows as one JSON array, the snapshot (the last column, JSON already) embedded as
    it is; None when a value has no JSON form (NaN, Infinity)."""
    out = []
    for row in rows:
        snapshot = row[-1]
        if not isinstance(snapshot, str) or "NaN" in snapshot or "Infinity" in snapshot:
            return None
        try:
            scalars = _SCALARS(row[:-1])
        except (ValueError, TypeError):
            return None
        out.append(f"{scalars[:-1]},{snapshot}]")
    return "[" + ",".join(out) + "]"


def _row_dict(
    cursor: sqlite3.Cursor | aiosqlite.Cursor, row: tuple[object, ...]
) -> dict[str, object]:
    out = {d[0]: v for d, v in zip(cursor.description, row, strict=True)}
    if "reconciled" in out:
        out["reconciled"] = bool(out["reconciled"])
    return out


async def list_calls(
    conn: aiosqlite.Connection, *, since: float | None = None, limit: int = 100
) -> list[dict[str, object]]:
    """Newest first. `since` filters on started_at (epoch seconds)."""
    sql = f"SELECT {_PUBLIC} FROM calls"
    params: list[object] = []
    if since is not None:
        sql += " WHERE started_at >= ?"
        params.append(utc_text(since))
    sql += " ORDER BY started_at DESC, call_id DESC LIMIT ?"
    params.append(limit)
    async with conn.execute(sql, params) as cur:
        return [_row_dict(cur, tuple(r)) for r in await cur.fetchall()]


async def get_call(conn: aiosqlite.Connection, call_id: str) -> dict[str, object] | None:
    """One call with its timeline (oldest first), or None."""
    async with conn.execute(f"SELECT {_PUBLIC} FROM calls WHERE call_id = ?", (call_id,)) as cur:
        row = await cur.fetchone()
        if row is None:
            return None
        call = _row_dict(cur, tuple(row))
    async with conn.execute(
        "SELECT at, kind, uniqueid, detail FROM call_events WHERE call_id = ? ORDER BY id",
        (call_id,),
    ) as cur:
        call["timeline"] = [
            {"at": at, "kind": kind, "uniqueid": uid, "detail": json.loads(detail)}
            for at, kind, uid, detail in await cur.fetchall()
        ]
    return call


async def open_call_ids(conn: aiosqlite.Connection) -> list[str]:
    """Calls the database still thinks are in progress (e.g. after a kill -9)."""
    async with conn.execute("SELECT call_id FROM calls WHERE ended_at IS NULL") as cur:
        return [str(r[0]) for r in await cur.fetchall()]


async def open_calls(conn: aiosqlite.Connection) -> list[str]:
    """Snapshots (JSON) of the calls the database still thinks are in progress."""
    async with conn.execute("SELECT snapshot FROM calls WHERE ended_at IS NULL") as cur:
        return [str(r[0]) for r in await cur.fetchall()]
