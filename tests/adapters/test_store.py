"""The SQLite adapter: migrations, WAL, batched writes that survive kill -9, queries."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ivr_agent.errors import StorageError
from ivr_agent.store import calls as store
from ivr_agent.store.db import open_db, parse_utc_text, utc_text
from ivr_agent.store.snapshot import call_to_json


class State(enum.Enum):
    CONNECTED = "connected"
    ENDED = "ended"


@dataclass(frozen=True)
class FakeCall:
    call_id: str
    state: State = State.CONNECTED
    caller_number: str = "13800138000"
    caller_name: str = "张三"
    dialed_number: str = "95000"
    queue: str = "support"
    agent: str = "agent1"
    started_at: float | None = 1_764_000_000.25
    answered_at: float | None = None
    queued_at: float | None = None
    agent_connected_at: float | None = None
    ended_at: float | None = None
    hold_time: float | None = None
    talk_time: float | None = None
    disposition: State | None = None
    hangup_cause: int | None = None
    hangup_cause_txt: str = ""
    reconciled: bool = False
    updated_at: float = 1_764_000_001.0


def test_utc_text_round_trip() -> None:
    assert utc_text(0.5) == "1970-01-01T00:00:00.500000Z"
    assert parse_utc_text("1970-01-01T00:00:00.500000Z") == 0.5
    assert parse_utc_text("1970-01-01T08:00:00+08:00") == 0.0
    assert parse_utc_text("1970-01-01T00:00:01") == 1.0
    assert utc_text(None) is None


def test_utc_text_is_datetimes_text_to_the_microsecond() -> None:
    # utc_text formats by hand (the hot path's cost); datetime is the reference, rounding
    # (half to even) and the carry into the next second included.
    rng = random.Random(7)  # noqa: S311  # test data, not secrets
    stamps = [rng.uniform(-1e9, 4e9) for _ in range(20_000)]
    stamps += [rng.randrange(2**31) + f for f in (5e-7, 0.9999995, 0.5, 1.5e-6, 1e-7) for _ in "ab"]
    stamps += [0.0, -0.5, -1.0000005, 1_795_636_719.754426, 1_795_636_719.754427]
    for ts in stamps:
        want = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert utc_text(ts) == want, ts


async def test_open_is_wal_and_migrations_are_idempotent(db_path: Path) -> None:
    conn = await open_db(db_path)
    mode = await (await conn.execute("PRAGMA journal_mode")).fetchone()
    version = await (await conn.execute("PRAGMA user_version")).fetchone()
    await conn.close()
    assert mode is not None
    assert mode[0] == "wal"
    assert version is not None
    assert version[0] >= 1
    conn = await open_db(db_path)  # second open: nothing to migrate, no error
    await conn.close()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    conn = await open_db(db_path)
    await conn.execute("PRAGMA user_version = 999")
    await conn.close()
    with pytest.raises(StorageError, match="newer than this ivr-agent knows"):
        await open_db(db_path)


async def test_unopenable_path_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="cannot open database"):
        await open_db(tmp_path / "file" / "db.sqlite")


async def test_batch_coalesces_calls_and_keeps_every_event(db_path: Path) -> None:
    conn = await open_db(db_path)
    s = store.CallStore(conn, flush_interval=0.01, flush_max_rows=1000)
    call = FakeCall("1764000000.1")
    for i in range(5):
        s.put_call(replace(call, updated_at=1_764_000_001.0 + i))
        s.put_event(store.TimelineEntry(call.call_id, 1_764_000_000.0 + i, f"E{i}", "u", {"i": i}))
    s.put_call(replace(call, state=State.ENDED, ended_at=1_764_000_009.0, disposition=State.ENDED))
    assert s.pending == 6
    assert await s.flush() == 6
    assert await s.flush() == 0
    rows = await store.list_calls(conn)
    assert len(rows) == 1
    row = rows[0]
    assert row["caller_name"] == "张三"
    assert row["state"] == "ended"
    assert row["disposition"] == "ended"
    assert row["ended_at"] == "2025-11-24T16:00:09.000000Z"
    assert row["reconciled"] is False
    one = await store.get_call(conn, call.call_id)
    assert one is not None
    timeline = one["timeline"]
    assert isinstance(timeline, list)
    assert [t["kind"] for t in timeline] == ["E0", "E1", "E2", "E3", "E4"]
    assert timeline[2]["detail"] == {"i": 2}
    assert await store.get_call(conn, "nope") is None
    assert await store.open_call_ids(conn) == []
    await conn.close()


async def test_a_flush_stores_the_values_and_types_the_row_has(db_path: Path) -> None:
    # Rows reach SQLite as one JSON array per table (one statement): every column must come out
    # as a bound parameter would have put it, types included, and a timeline detail or a call
    # snapshot as the same compact text json.dumps(ensure_ascii=False, separators=(",", ":"))
    # makes. A value JSON cannot carry (NaN) sends its batch as parameters instead.
    conn = await open_db(db_path)
    s = store.CallStore(conn, flush_interval=0.01, flush_max_rows=1000)
    call = FakeCall(
        "1.1", caller_name='张 "三" \\', hangup_cause=16, hold_time=2.5, talk_time=30.0,
        reconciled=True,
    )  # fmt: skip
    s.put_call(call)
    details: list[dict[str, object]] = [
        {"name": '张三 "x" \\ \n\t\u0001 \u2028 😀 é/', "n": 1_795_636_719.754426, "ok": True},
        {"none": None, "neg": -0.0, "tiny": 5e-324, "big": 1.5e300, "e": 1e-07, "i": -(2**63)},
        {"fields": [["Event", "UserEvent"], ["X", "1"]], "nested": {"a": [1, 2.5, "b"]}},
        {},
    ]
    for i, detail in enumerate(details):
        s.put_timeline("1.1", 1_764_000_000.5 + i, f"K{i}", "1.2" if i else "", detail)
    assert await s.flush() == 5
    s.put_call(FakeCall("2.1", talk_time=float("nan"), caller_name='引号"和\\反斜杠'))
    s.put_timeline("2.1", 1_764_000_010.0, "Odd", "", {"x": float("nan")})
    assert await s.flush() == 2  # the NaNs: their batches went in as parameters
    with closing(sqlite3.connect(db_path)) as ref:
        got = ref.execute(
            "SELECT call_id, hangup_cause, typeof(hangup_cause), hold_time, typeof(hold_time), "
            "typeof(answered_at), reconciled, typeof(reconciled), caller_name, talk_time "
            "FROM calls ORDER BY call_id"
        ).fetchall()
        (snapshot,) = ref.execute("SELECT snapshot FROM calls WHERE call_id = '1.1'").fetchone()
        events = ref.execute(
            "SELECT call_id, at, kind, uniqueid, detail, typeof(detail) FROM call_events "
            "ORDER BY id"
        ).fetchall()
    assert got == [
        ("1.1", 16, "integer", 2.5, "real", "null", 1, "integer", '张 "三" \\', 30.0),
        ("2.1", None, "null", None, "null", "null", 0, "integer", '引号"和\\反斜杠', None),
    ]
    assert snapshot == call_to_json(call)
    compact = [json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in details]
    assert events == [
        *(
            ("1.1", f"2025-11-24T16:00:0{i}.500000Z", f"K{i}", "1.2" if i else "", text, "text")
            for i, text in enumerate(compact)
        ),
        ("2.1", "2025-11-24T16:00:10.000000Z", "Odd", "", '{"x":NaN}', "text"),
    ]
    await conn.close()


async def test_list_filters_and_orders(db_path: Path) -> None:
    conn = await open_db(db_path)
    s = store.CallStore(conn, flush_interval=0.01, flush_max_rows=1000)
    for i in range(10):
        s.put_call(FakeCall(f"c{i}", started_at=1000.0 + i))
    await s.flush()
    rows = await store.list_calls(conn, since=1005.0, limit=3)
    assert [r["call_id"] for r in rows] == ["c9", "c8", "c7"]
    assert len(await store.list_calls(conn, since=1005.0)) == 5
    assert sorted(await store.open_call_ids(conn)) == sorted(f"c{i}" for i in range(10))
    await conn.close()


async def test_failed_flush_keeps_rows_for_retry(db_path: Path) -> None:
    conn = await open_db(db_path)
    s = store.CallStore(conn, flush_interval=0.01, flush_max_rows=1000)
    s.put_call(FakeCall("keep", hangup_cause=16))
    await conn.execute("DROP TABLE call_events")
    s.put_event(store.TimelineEntry("keep", 1.0, "Hangup", "u", {}))
    with pytest.raises(StorageError, match="flush of 2 rows failed"):
        await s.flush()
    assert s.pending == 2
    await conn.close()


def test_committed_rows_survive_kill_9(db_path: Path) -> None:
    """A writer flushes 200 calls, reports it, then is SIGKILLed mid-way through more work."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import FakeCall
        from ivr_agent.store.db import open_db
        from ivr_agent.store.calls import CallStore
        from ivr_agent import logs
        logs.configure(fmt="json")  # logs to stderr; stdout is our channel

        async def main():
            conn = await open_db({str(db_path)!r})
            s = CallStore(conn, flush_interval=0.01, flush_max_rows=10_000)
            for i in range(200):
                s.put_call(FakeCall(f"k{{i}}"))
            await s.flush()
            print("flushed", flush=True)
            i = 200
            while True:  # keep writing until killed
                s.put_call(FakeCall(f"k{{i}}"))
                i += 1
                if i % 50 == 0:
                    await s.flush()

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "flushed"
    finally:  # never leave the writer running, whatever happened
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()

    import sqlite3

    with sqlite3.connect(db_path) as conn:
        ids = {r[0] for r in conn.execute("SELECT call_id FROM calls")}
        assert {f"k{i}" for i in range(200)} <= ids
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_last_flush_waits_out_a_locked_database(db_path: Path) -> None:
    """At shutdown another writer holds the lock for a while: the rows still get written."""
    import asyncio
    import sqlite3

    conn = await open_db(db_path)
    await conn.execute("PRAGMA busy_timeout = 20")  # fail fast, so the retry loop is exercised
    s = store.CallStore(conn, flush_interval=0.01, flush_max_rows=1000)
    s.put_call(FakeCall("late"))
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the lock

    async def release() -> None:
        await asyncio.sleep(1.2)
        other.execute("ROLLBACK")

    s.stop()
    await asyncio.gather(s.run(), release())
    other.close()
    rows = await store.list_calls(conn)
    await conn.close()
    assert [r["call_id"] for r in rows] == ["late"]
