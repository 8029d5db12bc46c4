"""Memory: the service's RSS after 10,000 replayed calls vs after 1,000 (no per-call leak).

    .venv/bin/python bench/memory.py [--copies 10] [--traffic bench/data/traffic.ami]

Needs a recording from `bench/record_traffic.py` (~1,000 calls; no lab needed here). The fake
AMI server of `bench/replay.py` (child process) sends copy 0 of the recording after the
handshake and copy k on the k-th `BenchNext` action. Copy k is the recording with every
Uniqueid/Linkedid value (`Uniqueid`, `Linkedid`, `Dest*`, Cdr `UniqueID`, `CALL_ID`) rewritten
to `<epoch>.<seq + k*10^7>` and every channel name's sequence number (`...-0000001a;1`) to
`seq + k*0x1000000`, so each copy is ~1,000 new, distinct calls.

The service (`ivr_agent.app.Service`, production defaults, a fresh SQLite file) runs in this
process. After each copy: wait until the book has taken every frame, the store has nothing
pending and the recording keeper is idle, `gc.collect()`, then read VmRSS from
/proc/self/status. (The keeper's wait for a recording file is cut to 0.5 s: the replayed calls
have no files, and 15 s of waiting per call would hold thousands of tasks between copies.)

Pass: RSS after 10 copies - RSS after 1 copy <= --budget MB (10), and the DB holds every call
ended, answered ones as in the recording. Exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from replay import (
    DATA,
    MeteredService,
    Truth,
    check,
    configure_logs,
    logged_summary,
    parse_headers,
    replay_settings,
    serve,
    start_server,
)

_UID_HEADERS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "UniqueID")
_UID = re.compile(rb"(?<![\d.])(\d{9,10})\.(\d{1,7})(?![\d.])")
_CHAN_SEQ = re.compile(rb"(?<=[A-Za-z0-9]-)([0-9a-f]{8})(?=[;\r])")


def uid_values(blob: bytes) -> set[bytes]:
    """Every Uniqueid/Linkedid value in the recording (timestamps are not among them)."""
    out: set[bytes] = set()
    for raw in blob.split(b"\r\n\r\n"):
        h = parse_headers(raw)
        out.update(h[k].encode() for k in _UID_HEADERS if h.get(k))
    return out


def rewriter(blob: bytes) -> Callable[[int], bytes]:
    """copy(k): the recording with ids and channel sequence numbers moved to range k."""
    uids = uid_values(blob)

    def copy(k: int) -> bytes:
        if k == 0:
            return blob

        def uid(m: re.Match[bytes]) -> bytes:
            if m.group(0) not in uids:
                return m.group(0)  # a Timestamp or some other number: leave it
            return m.group(1) + b"." + str(int(m.group(2)) + k * 10**7).encode()

        def seq(m: re.Match[bytes]) -> bytes:
            return f"{int(m.group(1), 16) + k * 0x1000000:08x}".encode()

        return _CHAN_SEQ.sub(seq, _UID.sub(uid, blob))

    return copy


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _settle(service: MeteredService) -> None:
    await service.flushed()
    keeper = service.recordings
    while keeper is not None and keeper.busy:  # noqa: ASYNC110  # no "idle" event to wait on
        await asyncio.sleep(0.05)
    await service.flushed()


async def _run(port: int, truth: Truth, copies: int, db: Path) -> tuple[list[float], list[str]]:
    settings = replay_settings(port, db)
    settings = dataclasses.replace(
        settings, recordings=dataclasses.replace(settings.recordings, finalise_timeout=0.5)
    )
    service = MeteredService(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    rss: list[float] = []
    started = time.perf_counter()
    try:
        for k in range(copies):
            if k:
                await service.ami.send({"Action": "BenchNext"}, timeout=10)
            await service.until(truth.frames * (k + 1), task)
            await _settle(service)
            gc.collect()
            rss.append(rss_mb())
            calls = len(truth.started) * (k + 1)
            print(
                f"after {calls:6,} calls ({truth.frames * (k + 1):9,} frames, "
                f"{time.perf_counter() - started:5.1f} s): RSS {rss[-1]:7.1f} MB   "
                f"book {len(service.book)} live calls",
                flush=True,
            )
        stop.set()
        await task
    finally:
        stop.set()
        if not task.done():
            await asyncio.wait({task}, timeout=15)
    return rss, check(truth, db, service, copies=copies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traffic", type=Path, default=DATA / "traffic.ami")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--budget", type=float, default=10.0, help="MB allowed from 1 to N")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.traffic.exists():
        print(f"{args.traffic}: no recording; run bench/record_traffic.py first")
        return 2
    blob = args.traffic.read_bytes()
    if args.serve:
        copy = rewriter(blob)
        asyncio.run(serve(lambda k: copy(k) if k < args.copies else None))
        return 0
    configure_logs(False)
    truth = Truth.of(blob)
    other = Truth.of(rewriter(blob)(1))  # the rewrite keeps every call and makes new ids
    if (len(other.started), len(other.ended), len(other.answered)) != (
        len(truth.started),
        len(truth.ended),
        len(truth.answered),
    ) or other.started & truth.started:
        print("FAIL the rewritten copy does not hold the same, distinct calls")
        return 1
    print(
        f"recording {args.traffic.name}: {truth.frames:,} frames, {len(truth.started)} calls; "
        f"replaying {args.copies} distinct copies"
    )
    del blob, other  # the measured process should hold the pipeline, not the recording
    gc.collect()
    cmd = [__file__, "--serve", "--traffic", str(args.traffic), "--copies", str(args.copies)]
    server, port = start_server(cmd)
    with tempfile.TemporaryDirectory(prefix="ivr-memory-") as tmp:
        try:
            rss, problems = asyncio.run(_run(port, truth, args.copies, Path(tmp) / "memory.db"))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"service warnings/errors: {logged_summary()}")
    growth = rss[-1] - rss[0]
    n1, n2 = len(truth.started), len(truth.started) * args.copies
    if len(rss) > 2:
        slope = (rss[-1] - rss[1]) / (n2 - 2 * n1) * 1e6  # bytes/call from copy 2 on
        print(
            f"without the first copy's warm-up: {2 * n1:,} -> {n2:,} calls "
            f"{rss[-1] - rss[1]:+.1f} MB ({slope / 1e3:.2f} KB/call)"
        )
    if len(rss) >= 20:
        print(f"{10 * n1:,} -> {n2:,} calls: {rss[-1] - rss[9]:+.1f} MB")
    print(
        f"RSS after {n1:,} calls {rss[0]:.1f} MB, after {n2:,} calls {rss[-1]:.1f} MB: "
        f"{growth:+.1f} MB (budget +{args.budget:g} MB)"
    )
    if growth > args.budget:
        problems.append(f"RSS grew {growth:.1f} MB > {args.budget:g} MB")
    print(f"correctness: {'OK' if not problems else 'FAILED'}")
    for p in problems:
        print(f"FAIL {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
