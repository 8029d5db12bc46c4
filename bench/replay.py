"""Replay recorded lab traffic at full speed: the service's whole pipeline vs bare panoramisk 1.4.

    .venv/bin/python bench/replay.py [--runs 3] [--traffic bench/data/traffic.ami] [--profile]

Needs a recording from `bench/record_traffic.py` (no lab needed here). A fake AMI server runs in
a child process (so it does not share the measured event loop): for each connection it sends the
banner, answers Login, sends FullyBooted, answers CoreShowChannels with an empty list, then
writes the recording as fast as the socket takes it (chunks cut at frame boundaries; Ping and
other actions are answered in between). Runs alternate (a), (b), in the same process:

(a) bare panoramisk 1.4: `Manager(...).register_event('*', count)`, a callback that only counts
    (the server sends the recording right after FullyBooted, as nothing asks for channels);
    timed from its first to its last recorded event;
(b) the service: `ivr_agent.app.Service` (production defaults, see `replay_settings`) pointed at
    the fake server and a fresh SQLite file: AmiClient -> events.parse -> CallBook.apply ->
    CallStore (batched, WAL, synchronous=FULL), plus what `Service` runs on every event today
    (desk, recording keeper). Timed from the first recorded frame handled until a separate
    SQLite reader sees every call and every timeline row committed ("all rows flushed"); the
    rate to the last frame handled (before the last flushes) is printed too.

Both count events/s over the same frames; the medians and the ratio b/a are printed.
Correctness, checked after every (b) run (exit 1 on a failure): no event dropped, no frame
malformed, no event rejected; calls ended in the DB == calls that start and end in the
recording; calls in the DB == calls that start in it; the answered ones == those with an
AgentConnect. The reference counts come from a tiny independent parser in this file. The
service's warnings and errors are counted per run and printed (not written).
`--profile` adds one (b) run under cProfile and prints the main thread's time by stage.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import dataclasses
import gc
import io
import logging
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from record_traffic import parse_headers  # noqa: E402  # bench/ is sys.path[0]

from ivr_agent.app import Service  # noqa: E402
from ivr_agent.config import AmiConfig, HotlineConfig, Settings, StorageConfig  # noqa: E402

DATA = BENCH / "data"
SEP = b"\r\n\r\n"
SECRET = "bench"  # noqa: S105  # the fake server's, accepted whatever it is
SERVICE_USER = "bench-service"  # the server waits for CoreShowChannels before replaying
BARE_USER = "bench-bare"  # the server replays right after FullyBooted
_CHUNK = 1 << 18
_BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def frames_of(blob: bytes) -> list[bytes]:
    parts = blob.split(SEP)
    if parts and not parts[-1]:
        parts.pop()
    return parts


@dataclasses.dataclass
class Truth:
    """What the recording holds, by the simplest reading: the reference for the checks."""

    frames: int = 0
    started: set[str] = dataclasses.field(default_factory=set)  # caller-leg Newchannel seen
    ended: set[str] = dataclasses.field(default_factory=set)  # ... and every channel hung up
    answered: set[str] = dataclasses.field(default_factory=set)  # ended, with an AgentConnect

    @classmethod
    def of(cls, blob: bytes) -> Truth:
        t = cls()
        live: dict[str, set[str]] = {}
        connected: set[str] = set()
        for raw in frames_of(blob):
            t.frames += 1
            h = parse_headers(raw)
            event, uid, lid = h.get("Event"), h.get("Uniqueid", ""), h.get("Linkedid", "")
            if event == "Newchannel":
                if uid == lid:
                    t.started.add(lid)
                if lid in t.started:
                    live.setdefault(lid, set()).add(uid)
            elif event == "Hangup" and lid in live:
                live[lid].discard(uid)
                if not live[lid]:
                    t.ended.add(lid)
            elif event == "AgentConnect":
                connected.add(lid)
        t.answered = t.ended & connected
        return t


# -- fake AMI server (child process) -------------------------------------------------------------


def _chunks(blob: bytes) -> Iterator[bytes]:
    """~256 KiB pieces that end on frame boundaries, so replies can go in between."""
    start = 0
    while start < len(blob):
        end = blob.find(SEP, start + _CHUNK)
        end = len(blob) if end < 0 else end + len(SEP)
        yield blob[start:end]
        start = end


def _reply(aid: str, body: str = "") -> bytes:
    return f"Response: Success\r\nActionID: {aid}\r\n{body}\r\n".encode()


async def serve(segment: Callable[[int], bytes | None]) -> None:
    """Serve `segment(0)` after the handshake and `segment(k)` on the k-th `BenchNext` action."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_BANNER)
        sent = -1
        blasting: asyncio.Task[None] | None = None

        async def blast(k: int, after: asyncio.Task[None] | None) -> None:
            if after is not None:
                await after
            data = segment(k)
            for chunk in _chunks(data or b""):
                writer.write(chunk)
                await writer.drain()

        def next_segment() -> None:
            nonlocal sent, blasting
            sent += 1
            blasting = asyncio.create_task(blast(sent, blasting))

        try:
            while True:
                h = parse_headers((await reader.readuntil(SEP))[:-4])
                action, aid = h.get("Action", "").lower(), h.get("ActionID", "")
                if action == "login":
                    writer.write(_reply(aid, "Message: Authentication accepted\r\n"))
                    writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\n")
                    writer.write(b"Status: Fully Booted\r\n\r\n")
                    if h.get("Username") == BARE_USER:
                        next_segment()
                elif action == "coreshowchannels":
                    listing = "EventList: start\r\nMessage: Channels will follow\r\n"
                    writer.write(_reply(aid, listing))
                    writer.write(
                        f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\n"
                        "EventList: Complete\r\nListItems: 0\r\n\r\n".encode()
                    )
                    if sent < 0:  # a later resync (after drops) must not replay again
                        next_segment()
                elif action == "benchnext":
                    writer.write(_reply(aid))
                    next_segment()
                elif action == "logoff":
                    writer.write(f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode())
                    break
                else:  # Ping and anything else
                    writer.write(_reply(aid, "Ping: Pong\r\n" if action == "ping" else ""))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if blasting is not None:
                blasting.cancel()
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def start_server(argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    """Run `python <argv>` (a script's --serve mode); returns the process and its port."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise SystemExit(f"replay server failed to start (exit {proc.returncode})")
    return proc, int(line)


# -- (b) the service -----------------------------------------------------------------------------


def replay_settings(port: int, database: Path, *, pbx_features: bool = False) -> Settings:
    """Production defaults (queue size, flush interval/rows, recordings), pointed at the fake
    server, a fresh database and an empty recordings folder next to it (the replayed calls
    have no files: the recording keeper flags them missing, as it would in production).

    The features that act on the PBX by the clock (duty roster: queue members, after-hours
    flag, long-call alerts; silent line: Redirects after a silence window) are off unless
    `pbx_features`: replayed 20x faster than real time, with hour-old Timestamps, their timers
    would fire for reasons that never happen live. The desk and the recording keeper stay on."""
    ami = AmiConfig(
        host="127.0.0.1", port=port, username=SERVICE_USER, secret=SECRET, ping_interval=600
    )
    rec = database.parent / "rec"
    rec.mkdir(exist_ok=True)
    settings = Settings(
        ami=ami,
        storage=StorageConfig(database=str(database)),
        hotline=HotlineConfig(recordings_dir=str(rec)),
        source="<bench>",
    )
    if pbx_features:
        return settings
    return dataclasses.replace(
        settings,
        roster=dataclasses.replace(settings.roster, enabled=False),
        silent_line=dataclasses.replace(settings.silent_line, enabled=False),
    )


class MeteredService(Service):
    """The service, counting the frames it takes (the server's FullyBooted and the adapter's
    IvrAgentConnected come first: `skip`) and stamping the first and the `goal`-th. A frame is
    taken when `handle()` gets it, or when the AMI adapter ignores it unparsed (an event that
    `events.parse` does not model: `AmiStats.events_ignored`, counted when its read arrives)."""

    def __init__(self, settings: Settings, *, skip: int = 2) -> None:
        super().__init__(settings)
        self.frames = 0
        self.skip = skip
        self.first_at = 0.0
        self.last_at = 0.0
        self._goal = -1
        self._reached = asyncio.Event()

    def handle(self, frame: dict[str, str]) -> Any:
        self.frames += 1
        if not self.first_at and self.frames > self.skip:
            self.first_at = time.perf_counter()
        change = super().handle(frame)
        if self._goal > 0 and not self.last_at and self.taken >= self._goal:
            self.last_at = time.perf_counter()
            self._reached.set()
        return change

    @property
    def taken(self) -> int:
        return self.frames + self.ami.stats.events_ignored

    async def until(
        self,
        frames: int,
        task: asyncio.Task[None],
        timeout: float = 600,  # noqa: ASYNC109  # also ends the wait when `task` fails
    ) -> None:
        """Wait until `frames` recorded frames are handled (or the service fails)."""
        self._goal = self.skip + frames
        self.last_at = 0.0
        if self.taken >= self._goal:
            self.last_at = time.perf_counter()
            return
        self._reached.clear()
        waiter = asyncio.ensure_future(self._reached.wait())
        done, _ = await asyncio.wait(
            {waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if task in done:
                task.result()  # the service failed: raise its error
            raise TimeoutError(f"{self.taken - self.skip}/{frames} frames after {timeout}s")

    async def flushed(self) -> None:
        """Wait until the store has nothing pending and a flush interval went by."""
        store = self.store
        assert store is not None
        while store.pending:  # noqa: ASYNC110  # the store has no "empty" event to wait on
            await asyncio.sleep(0.01)
        await asyncio.sleep(self.settings.storage.flush_interval * 4)


def db_counts(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT call_id, state, disposition FROM calls").fetchall()
    return {
        "calls": len(rows),
        "ended": {cid for cid, state, _ in rows if state == "ended"},
        "answered": {cid for cid, state, disp in rows if state == "ended" and disp == "answered"},
        "dispositions": dict(sorted(_count(d for _, s, d in rows if s == "ended").items())),
    }


def _count(values: Iterator[str] | Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def check(truth: Truth, db: Path, service: Service, copies: int = 1) -> list[str]:
    """Correctness of one service run against the recording; [] when all is right."""
    problems: list[str] = []
    stats = service.ami.stats
    if stats.events_dropped or stats.malformed:
        problems.append(f"dropped {stats.events_dropped}, malformed {stats.malformed}")
    if service.events_rejected:
        problems.append(f"{service.events_rejected} events rejected (InvalidTransition)")
    got = db_counts(db)
    want_ended, want_calls = len(truth.ended) * copies, len(truth.started) * copies
    if len(got["ended"]) != want_ended:
        problems.append(f"calls ended in DB {len(got['ended'])} != in recording {want_ended}")
    if got["calls"] != want_calls:
        problems.append(f"calls in DB {got['calls']} != started in recording {want_calls}")
    if copies == 1 and got["answered"] != truth.answered:
        extra, missing = got["answered"] - truth.answered, truth.answered - got["answered"]
        problems.append(f"answered: {len(extra)} not in recording, {len(missing)} missing")
    if copies > 1 and len(got["answered"]) != len(truth.answered) * copies:
        problems.append(f"answered {len(got['answered'])} != {len(truth.answered) * copies}")
    return problems


def wait_rows(
    db: Path, calls: int, ended: int, events: int, store: Any, timeout: float = 120
) -> float:
    """Poll the DB from outside the service (a reader of committed data, as another process
    would be) until it holds `calls` calls, `ended` of them ended, and at least `events`
    timeline rows (features such as silent-line add a few of their own) while the store has
    nothing pending. Returns the perf_counter time at which it did."""
    deadline = time.perf_counter() + timeout
    with sqlite3.connect(db, timeout=5) as conn:
        while True:
            ((n_calls, n_ended),) = conn.execute(
                "SELECT count(*), count(ended_at) FROM calls"
            ).fetchall()
            (n_events,) = conn.execute("SELECT count(*) FROM call_events").fetchone()
            now = time.perf_counter()
            if (n_calls, n_ended) == (calls, ended) and n_events >= events and not store.pending:
                return now
            if now > deadline:
                raise TimeoutError(
                    f"DB has {n_calls}/{calls} calls, {n_ended}/{ended} ended, "
                    f"{n_events}/{events} timeline rows after {timeout}s"
                )
            time.sleep(0.002)


async def _service(
    port: int, truth: Truth, db: Path, profile: cProfile.Profile | None, pbx_features: bool
) -> dict[str, Any]:
    n = truth.frames
    service = MeteredService(replay_settings(port, db, pbx_features=pbx_features))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    if profile is not None:
        profile.enable()
    try:
        await service.until(n, task)
        # Every change the book made is one timeline row; every call one row in `calls`.
        flushed = await asyncio.to_thread(
            wait_rows,
            db,
            len(truth.started),
            len(truth.ended),
            service.events_applied,
            service.store,
        )
        if profile is not None:
            profile.disable()
        stop.set()
        await task
        stopped = time.perf_counter()
    finally:
        if profile is not None:
            profile.disable()
        stop.set()
        if not task.done():
            await asyncio.wait({task}, timeout=10)
    first, last = service.first_at, service.last_at
    return {
        "service": service,
        "eps": n / (flushed - first),
        "eps_handled": n / (last - first),
        "flush_tail_ms": (flushed - last) * 1000,
        "stop_ms": (stopped - flushed) * 1000,
    }


# -- (a) bare panoramisk -------------------------------------------------------------------------


async def _bare_panoramisk(port: int, n: int) -> dict[str, Any]:
    from panoramisk import Manager

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    count = 0
    first = last = 0.0
    want = n + 1  # + the server's FullyBooted

    def on_event(_manager: object, _message: object) -> None:
        nonlocal count, first, last
        count += 1
        last = time.perf_counter()
        if count == 2:
            first = last
        if count == want and not done.done():
            done.set_result(None)

    manager = Manager(
        host="127.0.0.1", port=port, username=BARE_USER, secret=SECRET, loop=loop, ping_delay=600
    )
    manager.register_event("*", on_event)
    await manager.connect()
    seen = -1
    while not done.done() and seen != count:  # stop early if it goes quiet (a lost frame)
        seen = count
        await asyncio.wait({done}, timeout=3)
    manager.close()
    return {"eps": (count - 1) / (last - first), "events": count - 1}


# -- main ----------------------------------------------------------------------------------------


LOGGED: collections.Counter[str] = collections.Counter()  # "level:event" -> lines, per run


ERRORS: dict[str, str] = {}  # the first line of each error-level event, for the report


def count_line(_logger: Any, method: str, event_dict: Any) -> Any:
    key = f"{method}:{event_dict.get('event')}"
    LOGGED[key] += 1
    if method in ("error", "critical", "exception") and key not in ERRORS:
        ERRORS[key] = repr({k: v for k, v in event_dict.items() if k != "exc_info"})[:300]
    return event_dict


def _drop(_logger: Any, _method: str, _event_dict: Any) -> Any:
    raise structlog.DropEvent


def configure_logs(info: bool) -> None:
    """Default: WARNING and above are counted (printed per run), not written. --log-info: the
    production setup (`ivr_agent.logs`, JSON lines at INFO) writing to /dev/null, so the cost
    of the INFO lines is in the figures."""
    if info:
        from ivr_agent import logs

        logs.configure("info", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
        structlog.configure(processors=[count_line, *structlog.get_config()["processors"]])
    else:
        structlog.configure(
            processors=[count_line, _drop],
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        )


def logged_summary() -> str:
    """The warnings and errors of the last run, then reset."""
    lines = {k: v for k, v in LOGGED.items() if not k.startswith(("info:", "debug:"))}
    LOGGED.clear()
    text = ", ".join(f"{k} x{v}" for k, v in sorted(lines.items())) or "none"
    for example in ERRORS.values():
        text += f"\n         first: {example}"
    ERRORS.clear()
    return text


# Pipeline stages for the profile summary: (label, file suffix, function, part of the line
# above); cumulative times of the top-level entry points do not overlap, the indented ones are
# parts of the stage above them.
_STAGES = (
    (
        "AMI adapter: data_received (decode, amiframes, queue)",
        "ivr_agent/ami_protocol.py",
        "data_received",
    ),
    ("events.parse", "ivr_agent/domain/events.py", "parse"),
    (
        "CallBook.apply (calls.transition, with_changes)",
        "ivr_agent/domain/callbook.py",
        "apply",
    ),
    ("Service._record", "ivr_agent/app.py", "_record"),
    (
        "  of which CallStore.put_timeline (detail JSON, utc_text)",
        "ivr_agent/store/calls.py",
        "put_timeline",
    ),
    ("  of which Desk.observe", "ivr_agent/desk.py", "observe"),
    ("Desk jobs (caller file from SQLite, screen-pop JSON)", "ivr_agent/desk.py", "_loop"),
    ("CallStore.flush in the loop (call_row, call_to_json)", "ivr_agent/store/calls.py", "flush"),
    ("RecordingKeeper (rows, file checks)", "ivr_agent/recordings/keeper.py", "run"),
    ("RecordingKeeper.finalise tasks", "ivr_agent/recordings/keeper.py", "_finalise_logged"),
)


def print_profile(profile: cProfile.Profile | str, top: int = 20) -> None:
    """Main-thread time by pipeline stage, then the top functions by own time. (aiosqlite and
    to_thread work runs in other threads: not in this profile.) `profile`: or a .prof file."""
    stats = pstats.Stats(profile)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    idle = sum(
        v[2] for (_, _, fn), v in raw.items() if fn == "<method 'poll' of 'select.epoll' objects>"
    )
    print(f"main thread, profiled: {total:.2f} s wall, of which {idle:.2f} s idle in epoll")
    shown = 0.0
    for label, suffix, func in _STAGES:
        ct = sum(v[3] for (f, _, fn), v in raw.items() if f.endswith(suffix) and fn == func)
        if not label.startswith(" "):
            shown += ct
        print(f"  {ct:6.2f} s  {100 * ct / total:5.1f} %  {label}")
    rest = total - shown - idle
    print(
        f"  {rest:6.2f} s  {100 * rest / total:5.1f} %  "
        "the rest (event loop, task switching, handle() glue, other tasks)"
    )
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)  # type: ignore[arg-type]
    print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traffic", type=Path, default=DATA / "traffic.ami")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="one more (b) run, cProfiled")
    parser.add_argument("--log-info", action="store_true", help="service logs at INFO (JSON)")
    parser.add_argument(
        "--pbx-features", action="store_true", help="duty roster and silent line on (defaults)"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        blob = args.serve.read_bytes()
        asyncio.run(serve(lambda k: blob if k == 0 else None))
        return 0
    if not args.traffic.exists():
        print(f"{args.traffic}: no recording; run bench/record_traffic.py first")
        return 2
    configure_logs(args.log_info)
    blob = args.traffic.read_bytes()
    truth = Truth.of(blob)
    n = truth.frames
    print(
        f"recording {args.traffic.name}: {len(blob) / 1e6:.1f} MB, {n:,} frames, "
        f"{len(truth.started)} calls started, {len(truth.ended)} ended, "
        f"{len(truth.answered)} answered ({n / max(1, len(truth.started)):.1f} frames/call)"
    )
    server, port = start_server([__file__, "--serve", str(args.traffic)])
    bare: list[float] = []
    ours: list[float] = []
    handled: list[float] = []
    failures: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="ivr-replay-"))
    try:
        for i in range(args.runs + (1 if args.profile else 0)):
            profiling = i == args.runs
            if not profiling:
                gc.collect()
                a = asyncio.run(_bare_panoramisk(port, n))
                if a["events"] != n:
                    failures.append(f"run {i + 1}: panoramisk saw {a['events']} of {n} events")
                bare.append(a["eps"])
            db = tmp / f"run{i + 1}.db"
            gc.collect()
            profile = cProfile.Profile() if profiling else None
            b = asyncio.run(_service(port, truth, db, profile, args.pbx_features))
            problems = check(truth, db, b["service"])
            failures.extend(f"run {i + 1}: {p}" for p in problems)
            if profile is not None:
                print(f"\nprofiled run (cProfile overhead included): {b['eps']:,.0f} events/s")
                print_profile(profile)
                continue
            ours.append(b["eps"])
            handled.append(b["eps_handled"])
            counts = db_counts(db)
            print(
                f"run {i + 1}: panoramisk {bare[-1]:,.0f} ev/s   service {ours[-1]:,.0f} ev/s "
                f"(last frame handled at {handled[-1]:,.0f} ev/s, flush tail "
                f"{b['flush_tail_ms']:.0f} ms; stop {b['stop_ms']:.0f} ms; "
                f"{b['service'].ami.stats.events_ignored:,} unmodelled events not parsed)   "
                f"DB: {len(counts['ended'])} ended "
                f"{counts['dispositions']}  {'OK' if not problems else 'FAIL'}",
                flush=True,
            )
            print(f"       service warnings/errors: {logged_summary()}")
            db.unlink()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    if bare and ours:
        a_med, b_med = statistics.median(bare), statistics.median(ours)
        print(
            f"\n{n:,} frames x {len(ours)} runs, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, logs {'INFO json' if args.log_info else 'WARNING'}, "
            f"roster+silent-line {'on' if args.pbx_features else 'off'}, "
            f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        print(f"(a) bare panoramisk 1.4, '*' callback counting : median {a_med:,.0f} events/s")
        print(f"(b) service: AmiClient+parse+CallBook+CallStore: median {b_med:,.0f} events/s")
        print(
            f"    (to the last frame handled, before the final flush: "
            f"median {statistics.median(handled):,.0f} events/s)"
        )
        print(f"ratio b/a = {b_med / a_med:.2f}x   goal: >= 20,000 events/s and >= 0.5x")
        print(
            f"correctness: {'OK' if not failures else 'FAILED'} (DB ended calls == "
            f"{len(truth.ended)} calls ended in the recording; answered == AgentConnect)"
        )
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
