"""Recordings: search latency over 100,000 rows, and storage per recorded minute by format.

    .venv/bin/python bench/recordings_search.py search [--rows 100000] [--runs 50]
    sudo .venv/bin/python bench/recordings_search.py storage [--calls 4]   # needs the lab

`search` fills a fresh database with N recording rows spread over 180 days (50 agents, 20,000
callers, the real disposition mix, 0.5 % evidence) and times typical supervisor searches two ways:
(a) `store.recordings.search` on the connection, (b) the whole HTTP request `GET /api/recordings`
through the FastAPI app with a signed-in supervisor (session check, query, JSON, and the audit
row with its fsync). Median and p95 of `--runs` runs per query.

`storage` places the same calls into the lab hotline twice, once recorded as WAV (the default)
and once as Ogg Vorbis (IVR_AGENT_REC_FORMAT=ogg), and reports bytes per recorded minute per
caller kind, measured on the files Asterisk wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr_agent import logs
from ivr_agent.config import load_settings
from ivr_agent.domain.recordings import recording_id_for
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store import recordings as rs
from ivr_agent.store import users
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.passwords import hash_password

DAY = 86_400.0
DISPOSITIONS = ["answered"] * 70 + ["abandoned"] * 15 + ["no_agent"] * 8 + ["silent_line"] * 7


async def fill(db: Db, rows: int, now: float) -> None:
    rng = random.Random(7)  # synthetic data, not security
    batch: list[tuple[Any, ...]] = []
    sql = (
        "INSERT INTO recordings (recording_id, call_id, path, format, status, started_at, "
        "ended_at, duration, size, sha256, call_span, problem, evidence, caller_number, "
        "caller_name, agent, disposition, queue, updated_at) "
        "VALUES (?, ?, ?, 'wav', 'complete', ?, ?, ?, ?, ?, ?, '', ?, ?, '', ?, ?, 'support', ?)"
    )
    for i in range(rows):
        start = now - 180 * DAY * (i / rows) - rng.random() * 60
        dur = rng.uniform(5, 600)
        call_id = f"{int(start)}.{i}"
        batch.append(
            (
                recording_id_for(call_id), call_id, f"{call_id}.wav", utc_text(start),
                utc_text(start + dur), dur, int(dur * 16000) + 44, "0" * 64, dur,
                int(rng.random() < 0.005), f"13{rng.randrange(20_000):09d}",
                f"agent{rng.randrange(1, 51)}", rng.choice(DISPOSITIONS), utc_text(now),
            )
        )  # fmt: skip
        if len(batch) == 10_000:
            async with db.write() as conn:
                await conn.executemany(sql, batch)
            batch.clear()
    if batch:
        async with db.write() as conn:
            await conn.executemany(sql, batch)
    await db.conn.execute("ANALYZE")


def queries(now: float) -> dict[str, dict[str, Any]]:
    return {
        "newest 50, no filter": {},
        "agent": {"agent": "agent17"},
        "caller number": {"caller": "13000012345"},
        "disposition + one day": {"disposition": "silent_line", "since": now - 30 * DAY,
                                  "until": now - 29 * DAY},
        "evidence only": {"evidence": True},
        "agent + one week": {"agent": "agent3", "since": now - 100 * DAY, "until": now - 93 * DAY},
        "500 rows, no filter": {"limit": 500},
    }  # fmt: skip


def http_params(q: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in q.items():
        if k == "since":
            out["from"] = str(utc_text(v))
        elif k == "until":
            out["to"] = str(utc_text(v))
        elif k == "evidence":
            out["evidence"] = "true"
        else:
            out[k] = str(v)
    return out


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, float, int]:
    await work()  # warm the page cache and the statement cache
    samples, n = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        n = await work()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], n


async def search_bench(rows: int, runs: int) -> None:
    logs.configure(level="warning")
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        db = await Db.open(Path(tmp) / "bench.db")
        t = time.perf_counter()
        await fill(db, rows, now)
        print(f"filled {rows} rows in {time.perf_counter() - t:.1f} s")
        settings = load_settings(None, env={"IVR_AGENT_WEB_SESSION_KEY": "bench" * 8})
        await users.add_user(db, "sup", users.Role.SUPERVISOR, hash_password("x" * 10), now)
        deps = WebDeps(db=db, root=RecordingsRoot(tmp), settings=settings)
        transport = httpx.ASGITransport(app=create_app(deps))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post("/api/login", json={"name": "sup", "password": "x" * 10})
            r.raise_for_status()
            print(f"{'query':<24} {'rows':>5} {'store median':>13} {'p95':>7} "
                  f"{'HTTP median':>12} {'p95':>7}  (ms)")  # fmt: skip
            for name, q in queries(now).items():
                query = rs.RecordingQuery(**q)

                async def direct(query: rs.RecordingQuery = query) -> int:
                    return len(await rs.search(db.conn, query))

                async def http(q: dict[str, Any] = q) -> int:
                    resp = await client.get("/api/recordings", params=http_params(q))
                    resp.raise_for_status()
                    return len(resp.json()["items"])

                dm, dp, n = await timed(runs, direct)
                hm, hp, _ = await timed(runs, http)
                print(f"{name:<24} {n:>5} {dm:>13.2f} {dp:>7.2f} {hm:>12.2f} {hp:>7.2f}")
        await db.close()
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {runs} runs")


def asterisk_cpu(lab_dir: Path) -> float:
    """CPU seconds (user + system) the lab Asterisk has used so far."""
    pid = int((lab_dir / "asterisk.pid").read_text().strip())
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def storage_bench(calls: int) -> None:
    from ivr_agent.lab.pbx import Lab, default_lab_dir
    from ivr_agent.lab.simulator import LocalCall
    from tests.integration.service import lab_settings, running_service

    logs.configure(level="warning")
    info = await asyncio.to_thread(Lab(default_lab_dir()).up)
    kinds = {
        "speech, then hang up (~9 s)": LocalCall("talking", "13560000001", "甲", hold_s=0),
        "speech, then 20 s of silence": LocalCall("talking", "13560000002", "乙", hold_s=20),
        "silent caller, 20 s": LocalCall("silent", "13560000003", "丙", hold_s=20),
    }
    rows: list[rs.RecordingRow] = []
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = lab_settings(info, Path(tmp) / "storage.db")
        settings = dataclasses.replace(
            settings, web=dataclasses.replace(settings.web, enabled=False)
        )
        async with running_service(settings) as service:
            keeper = service.recordings
            assert keeper is not None
            # One format after the other, the same calls, so that Asterisk's CPU time per
            # format can be told apart (other lab users add noise: run it on a quiet lab).
            for fmt in ("wav", "ogg"):
                before = asterisk_cpu(info.lab_dir)
                for call in kinds.values():
                    action = call.originate()
                    action["Variable"] += f",IVR_AGENT_REC_FORMAT={fmt}"
                    for _ in range(calls):
                        await service.ami.send(action, timeout=5)
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    done = await rs.search(
                        keeper.db.conn, rs.RecordingQuery(status="complete", limit=1000)
                    )
                    mine = [r for r in done if r.caller_number.startswith("1356")]
                    if len([r for r in mine if r.format == fmt]) == len(kinds) * calls:
                        break
                    await asyncio.sleep(0.5)
                cpu[fmt] = asterisk_cpu(info.lab_dir) - before
                rows = mine
    print(f"{'caller':<30} {'format':<6} {'calls':>5} {'s/call':>7} {'bytes/min':>10}")
    minutes: dict[str, float] = {}
    for label, call in kinds.items():
        for fmt in ("wav", "ogg"):
            got = [r for r in rows if r.caller_number == call.caller_number and r.format == fmt]
            secs = sum(r.duration or 0 for r in got)
            minutes[fmt] = minutes.get(fmt, 0.0) + secs / 60
            rate = sum(r.size or 0 for r in got) / secs * 60 if secs else 0
            print(f"{label:<30} {fmt:<6} {len(got):>5} {secs / max(1, len(got)):>7.2f} "
                  f"{rate:>10,.0f}")  # fmt: skip
    for fmt in ("wav", "ogg"):
        print(f"Asterisk CPU, {fmt} batch: {cpu[fmt]:.2f} s for {minutes[fmt]:.1f} recorded min")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("search")
    s.add_argument("--rows", type=int, default=100_000)
    s.add_argument("--runs", type=int, default=50)
    st = sub.add_parser("storage")
    st.add_argument("--calls", type=int, default=4)
    args = p.parse_args()
    if args.what == "search":
        asyncio.run(search_bench(args.rows, args.runs))
    else:
        asyncio.run(storage_bench(args.calls))


if __name__ == "__main__":
    main()
