"""Real load: 50 calls/s for 60 s through the lab Asterisk, the service checked against its CDRs.

    .venv/bin/python bench/real_load.py [--rate 50] [--seconds 60] [--agents 400]

Needs the lab Asterisk (`ivr-agent lab up`, as root). The service (`ivr_agent.app.Service`, lab
settings, INFO JSON logs to a file as in production, a fresh SQLite file) runs in a
subprocess, so that its CPU time can be read from /proc/<pid>/stat alone. Its duty-roster and
silent-line features are off: they act on the shared PBX (queue members, after-hours flag,
Redirects of anybody's calls); web is off. This process is the load generator: an event-less
AMI session (`Events: off`) that adds `--agents` extra Local agents to the `support` queue
(QueueAdd; put back when another engineer's roster service removes them; removed in a
`finally`) and then places `rate x seconds` talking Local callers with
`ivr_agent.lab.simulator.place_local_calls` (caller number unique to the run: other engineers'
calls are not ours; 9.2 s of speech, then `--hold` s). Per-call Originate variables, so that
nothing global is changed: `__AGENT_HOLD_OVR` (agents taking our calls hang up `--agent-hold` s
after their 5.1 s greeting) and `IVR_AGENT_OPEN=1` (our calls queue even "after hours").

The window runs from the first Originate until every call placed is ended in our DB and has
its caller-leg row in Asterisk's own CDR file (var/lab/var/log/cdr-custom/Master.csv). Figures:
calls placed/s, the service's CPU share (CPU seconds / wall seconds of the window, 1.0 = one
core), Asterisk's and the generator's, the AMI event lag p50/p99 (`Service.lag`: processing
time - the event's Timestamp header, sampled over the window), Asterisk warnings.

Correctness (exit 1 on a failure): every CDR caller-leg row of the run (uniqueid == linkedid,
src == our number, started in the window) is in our DB, ended, with disposition `answered` if
the CDR has the caller leg ANSWERED with an ANSWERED agent leg (`Local/agent...`) for that
linkedid (see `read_cdr` for why both) and `abandoned` if not
(`silent_line` if Asterisk's Cdr records put the caller in the silent-line context: another
engineer's service Redirected it; counted apart);
no AMI events dropped; no lab restart during the window (an attempt disturbed by another
engineer's `lab restart` is discarded and retried, see --attempts).

Before the window the service settles: its first recordings reconcile adopts every file already
in the lab folder (the time is printed). Afterwards the MixMonitor files of our calls are
deleted from the lab folder (`--keep-recordings` keeps them). The service's DB and log stay in
bench/data/real_load/<time>/.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import dataclasses
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import structlog
from record_traffic import (
    CDR_CSV,
    DATA,
    LAB_DIR,
    REPO,
    AgentGuard,
    AmiSender,
    add_agents,
    asterisk_pid,
    call_vars,
    cpu_seconds,
    lab_settings,
    remove_agents,
    remove_recordings,
    run_number,
    utc_now,
)
from replay import count_line, logged_summary, print_profile

from ivr_agent.lab.simulator import LocalCall, place_local_calls

OUT = DATA / "real_load"
MESSAGES_LOG = LAB_DIR / "var/log/messages.log"


# -- the service, in a subprocess ----------------------------------------------------------------


async def _service_main(db: Path, log_path: Path, profile_path: Path | None) -> None:
    from ivr_agent import logs
    from ivr_agent.app import Service

    reconciled = asyncio.Event()

    def watch(_logger: Any, _method: str, event_dict: Any) -> Any:
        if event_dict.get("event") == "recordings_reconciled":
            reconciled.set()
        return event_dict

    logs.configure("info", "json", stream=log_path.open("a", encoding="utf-8"))
    s = lab_settings()
    settings = dataclasses.replace(
        s,
        storage=dataclasses.replace(s.storage, database=str(db)),
        ami=dataclasses.replace(s.ami, reconnect_min=0.2, reconnect_max=1.0),
        # Features that act on the shared PBX stay off: the duty roster would make the queue's
        # members equal to an empty roster (removing everybody's agents, ours too) and set the
        # after-hours flag; silent-line would Redirect other engineers' test calls.
        roster=dataclasses.replace(s.roster, enabled=False),
        silent_line=dataclasses.replace(s.silent_line, enabled=False),
        web=dataclasses.replace(s.web, enabled=False),
    )
    structlog.configure(processors=[count_line, watch, *structlog.get_config()["processors"]])
    service = Service(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    started = time.monotonic()
    async with asyncio.timeout(20):
        await service.started.wait()
        await service.ami.wait_ready(15)
    # Start-up work is not load: the first recordings reconcile adopts every file already in the
    # lab folder (a fresh DB knows none). Wait for it and for the keeper to go idle.
    async with asyncio.timeout(600):
        await reconciled.wait()
        while service.recordings is not None and service.recordings.busy:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    settle = time.monotonic() - started
    await asyncio.sleep(1.0)
    profiler = cProfile.Profile() if profile_path else None
    print("ready", flush=True)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if line == "mark":  # the window starts: lag samples from here on
            service.lag.reset()
            if profiler is not None:
                profiler.enable()
            print("marked", flush=True)
        elif line in ("stop", ""):
            break
    if profiler is not None and profile_path is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)
    lag = service.lag
    result = {
        "lag_p50_ms": _ms(lag.percentile(50)),
        "lag_p99_ms": _ms(lag.percentile(99)),
        "lag_max_ms": _ms(lag.percentile(100)),
        "lag_samples": lag.count,
        "events_in": service.ami.stats.events_in,
        "events_dropped": service.ami.stats.events_dropped,
        "events_applied": service.events_applied,
        "events_rejected": service.events_rejected,
        "connects": service.ami.stats.connects,
        "startup_settle_s": round(settle, 1),
        "rss_mb": _rss_mb(),
    }
    stop.set()
    await task
    result["logged"] = logged_summary()  # warnings and errors of the whole run, shutdown too
    print(json.dumps(result), flush=True)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds per thread of `pid` (the main thread's id is the pid)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = cpu_seconds(f"{pid}/task/{task.name}")
        except (OSError, IndexError):
            continue
    return out


def _cpu(pid: int | None) -> float:
    """CPU seconds of `pid`; NaN once it is gone (a lab restart)."""
    try:
        return cpu_seconds(pid) if pid else float("nan")
    except (OSError, IndexError):
        return float("nan")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class ServiceProcess:
    def __init__(self, db: Path, log_path: Path, profile_path: Path | None = None) -> None:
        cmd = [sys.executable, __file__, "--service", "--db", str(db), "--log", str(log_path)]
        if profile_path is not None:
            cmd += ["--profile-to", str(profile_path)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        self._expect("ready")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _expect(self, word: str) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != word:
            self.proc.kill()
            raise SystemExit(f"service subprocess: expected {word!r}, got {line!r}")

    def mark(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("mark\n")
        self.proc.stdin.flush()
        self._expect("marked")

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.read()
        self.proc.wait(timeout=30)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


# -- ground truth and checks ---------------------------------------------------------------------


@dataclasses.dataclass
class Cdr:
    callers: dict[str, list[list[str]]]  # linkedid -> its caller-leg rows
    answered: set[str]  # caller leg ANSWERED with an ANSWERED Local/agent leg


def read_cdr(number: str, since: float) -> Cdr:
    """Our calls in Asterisk's CDR file. Answered = a caller-leg row ANSWERED and an ANSWERED
    agent leg. Both are needed: a Local agent answers at once, so when the caller hangs up just
    as an agent is called, the agent leg is ANSWERED (billsec 0) while the caller-leg row,
    whose party B was that agent, says NO ANSWER; app_queue reports QueueCallerAbandon."""
    callers: dict[str, list[list[str]]] = {}
    agents: set[str] = set()
    caller_answered: set[str] = set()
    if CDR_CSV.exists():
        with CDR_CSV.open(encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                if len(row) < 10:
                    continue
                uniqueid, linkedid, src, _dst, disposition = row[:5]
                try:
                    started = float(linkedid)
                except ValueError:
                    continue
                if started < since - 1:
                    continue
                if uniqueid == linkedid and src == number:
                    callers.setdefault(linkedid, []).append(row)
                    if disposition == "ANSWERED":
                        caller_answered.add(linkedid)
                elif row[9].startswith("Local/agent") and disposition == "ANSWERED":
                    agents.add(linkedid)
    return Cdr(callers, agents & caller_answered)


def read_db(db: Path, number: str) -> dict[str, dict[str, Any]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT call_id, state, disposition, agent, hold_time, talk_time "
                "FROM calls WHERE caller_number = ?",
                (number,),
            ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {str(r["call_id"]): dict(r) for r in rows}


def redirected_to_silent_line(db: Path) -> set[str]:
    """Calls whose Cdr events (Asterisk's cdr_manager records, as stored in the timeline) show
    the caller leg in the silent-line context: another engineer's service Redirected them
    (ours runs with silent-line off). Their disposition is silent_line by the domain's rule 1."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "SELECT DISTINCT call_id FROM call_events WHERE kind = 'Cdr' AND detail LIKE ?",
                ('%"destination_context":"ivr-agent-silent-line"%',),
            ).fetchall()
    except sqlite3.OperationalError:
        return set()
    return {str(r[0]) for r in rows}


def compare(
    cdr: Cdr, db: dict[str, dict[str, Any]], silent: set[str]
) -> tuple[list[str], dict[str, int]]:
    problems: list[str] = []
    tally = {"answered": 0, "abandoned": 0, "silent_line": 0}
    bad: list[str] = []
    for lid in sorted(cdr.callers):
        row = db.get(lid)
        want = "answered" if lid in cdr.answered else "abandoned"
        if lid in silent:
            want = "silent_line"
        if row is None:
            bad.append(f"{lid}: in the CDR, not in our DB")
        elif row["state"] != "ended":
            bad.append(f"{lid}: state {row['state']}, not ended")
        elif row["disposition"] != want:
            bad.append(f"{lid}: disposition {row['disposition']}, CDR says {want}")
        else:
            tally[want] += 1
    if bad:
        problems.append(f"{len(bad)} of {len(cdr.callers)} CDR calls wrong, e.g. {bad[:5]}")
    extra = db.keys() - cdr.callers.keys()
    if extra:
        example = sorted(extra)[:3]
        problems.append(f"{len(extra)} calls in our DB have no CDR caller row, e.g. {example}")
    return problems, tally


def asterisk_warnings(since_line: int) -> dict[str, int]:
    """WARNING/ERROR lines Asterisk logged after line `since_line`, by source file."""
    out: dict[str, int] = {}
    try:
        lines = MESSAGES_LOG.read_text(errors="replace").splitlines()[since_line:]
    except OSError:
        return out
    for line in lines:
        for level in ("WARNING", "ERROR"):
            if f"] {level}[" in line:
                where = line.split("] ", 2)[-1].split(":", 1)[0]
                key = f"{level} {where}"
                out[key] = out.get(key, 0) + 1
    return out


def log_lines() -> int:
    try:
        return len(MESSAGES_LOG.read_text(errors="replace").splitlines())
    except OSError:
        return 0


# -- one run -------------------------------------------------------------------------------------


async def _load(args: argparse.Namespace, service: ServiceProcess, db: Path) -> dict[str, Any]:
    settings = lab_settings()
    number = run_number()
    count = round(args.rate * args.seconds)
    ast_pid = asterisk_pid()
    sender = await AmiSender.login(settings)
    sender.extra_vars = call_vars(args.agent_hold)
    agents: list[str] = []
    guard: AgentGuard | None = None
    guard_task: asyncio.Task[None] | None = None
    try:
        agents = await add_agents(sender, args.agents)
        guard = AgentGuard(sender, len(agents))
        guard_task = asyncio.create_task(guard.run())
        await asyncio.sleep(1.0)
        await asyncio.to_thread(service.mark)
        first_log_line = log_lines()
        t0 = time.time()
        cpu0 = (cpu_seconds(service.pid), _cpu(ast_pid), time.process_time())
        threads0 = thread_cpu(service.pid)
        call = LocalCall(args.scenario, number, "压力测试", hold_s=args.hold)
        placed = await place_local_calls(sender, call, count=count, rate=args.rate)
        t_placed = time.time()
        print(
            f"placed {placed.queued}/{count} calls in {placed.seconds:.1f}s "
            f"({placed.queued / max(placed.seconds, 1e-9):.1f}/s), {placed.failed} failed",
            flush=True,
        )
        # Done when every call of ours in the DB is ended and has its CDR row, and the CDR has
        # stopped growing (an Originate that timed out under load may still have placed its
        # call: the CDR, not our count, says how many calls there were). The window ends at
        # the first poll that saw the final state.
        deadline = time.monotonic() + args.drain
        last: tuple[int, int] | None = None
        t1, cpu1, threads1 = t0, cpu0, threads0
        cdr = read_cdr(number, t0)
        while time.monotonic() < deadline and not sender.lost:
            cdr, rows = read_cdr(number, t0), read_db(db, number)
            now = time.time()
            cpus = (cpu_seconds(service.pid), _cpu(ast_pid), time.process_time())
            done = (
                len(cdr.callers) >= placed.queued
                and rows
                and all(r["state"] == "ended" for r in rows.values())
                and rows.keys() <= cdr.callers.keys()
            )
            state = (len(cdr.callers), len(rows))
            if done and state == last:
                break
            if state != last:
                t1, cpu1, last = now, cpus, state
                threads1 = thread_cpu(service.pid)
            await asyncio.sleep(1.0)
        restarted = sender.lost or asterisk_pid() != ast_pid
    finally:
        if guard_task is not None:
            guard_task.cancel()
            await asyncio.gather(guard_task, return_exceptions=True)
        await sender.close()
        removed = await remove_agents(settings, agents)
        readds = guard.readds if guard else 0
        print(f"extra agents: {len(agents)} added ({readds} times again), {removed} removed")
    wall = max(t1 - t0, 1e-3)  # t1 == t0 when a lab restart cut the wait short
    return {
        "number": number,
        "sent": count,
        "placed": placed.queued,
        "failed": placed.failed,
        "place_s": placed.seconds,
        "place_errors": placed.errors[:3],
        "window_s": round(wall, 1),
        "drain_s": round(t1 - t_placed, 1),
        "cpu_service": (cpu1[0] - cpu0[0]) / wall,
        "cpu_service_main": (threads1.get(service.pid, 0.0) - threads0.get(service.pid, 0.0))
        / wall,
        "cpu_asterisk": (cpu1[1] - cpu0[1]) / wall,
        "cpu_generator": (cpu1[2] - cpu0[2]) / wall,
        "cdr": cdr,
        "rows": read_db(db, number),
        "t0": t0,
        "asterisk_restarted": restarted,
        "loadavg": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "asterisk_warnings": asterisk_warnings(first_log_line),
        "agents": len(agents),
        "agents_readded": readds,
    }


def run_once(args: argparse.Namespace, run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    db, log_path = run_dir / "service.db", run_dir / "service.log"
    prof = run_dir / "service.prof" if args.profile else None
    service = ServiceProcess(db, log_path, prof)
    try:
        res = asyncio.run(_load(args, service, db))
    finally:
        svc = service.stop()
    if not args.keep_recordings:
        time.sleep(2.0)  # MixMonitor closes its file just after the hangup
        ours = set(res["cdr"].callers) | set(res["rows"])
        res["recordings_removed"] = remove_recordings(lab_settings(), ours)
    problems, tally = compare(res["cdr"], res["rows"], redirected_to_silent_line(db))
    res["service"], res["tally"], res["profile"] = svc, tally, prof
    if res["asterisk_restarted"]:
        problems.insert(0, "DISTURBED: the lab Asterisk restarted during the window")
    elif svc.get("connects", 1) > 1:
        # Not a restart: the service itself dropped the link (e.g. its Ping went unanswered
        # while Asterisk was overloaded); the events in between are lost, calls reconciled.
        problems.append(f"the service reconnected {svc['connects'] - 1} time(s) to AMI")
    if svc.get("events_dropped"):
        problems.append(f"{svc['events_dropped']} AMI events dropped by the service")
    if res["failed"] or len(res["cdr"].callers) != res["sent"]:
        problems.append(
            f"{res['sent']} Originates: {res['placed']} queued, {res['failed']} failed or timed "
            f"out (5 s); {len(res['cdr'].callers)} calls in the CDR"
        )
    return res, problems


def report(args: argparse.Namespace, res: dict[str, Any], problems: list[str]) -> None:
    svc = res["service"]
    cdr = res["cdr"]
    calls = len(cdr.callers)
    starts = [float(lid) for lid in cdr.callers]
    span = max(starts) - min(starts) + 1 / args.rate if starts else 1.0
    print(
        f"\nreal load {utc_now()}: {args.scenario} callers, {res['sent']} Originates at "
        f"{args.rate:g}/s in {res['place_s']:.1f} s ({res['placed']} queued, {res['failed']} "
        f"failed/timed out); {calls} calls in the CDR (started at {calls / span:.1f}/s); window "
        f"{res['window_s']} s (drain {res['drain_s']} s after the last Originate), "
        f"{res['agents']} extra agents (put back {res['agents_readded']} times), "
        f"{os.cpu_count()} CPUs, load average {res['loadavg']}"
    )
    print(
        f"CDR caller legs: {len(cdr.callers)} ({len(cdr.answered)} with an answered agent leg); "
        f"our DB: {len(res['rows'])} calls, consistent: {res['tally']}"
    )
    print(
        f"service: CPU {res['cpu_service']:.1%} of one core (event-loop thread "
        f"{res['cpu_service_main']:.1%}, SQLite/file threads "
        f"{res['cpu_service'] - res['cpu_service_main']:.1%}); AMI lag p50 {svc.get('lag_p50_ms')} "
        f"ms, p99 {svc.get('lag_p99_ms')} ms, max {svc.get('lag_max_ms')} ms "
        f"({svc.get('lag_samples')} events); events in {svc.get('events_in')}, "
        f"dropped {svc.get('events_dropped')}, rejected {svc.get('events_rejected')}"
    )
    print(
        f"Asterisk CPU {res['cpu_asterisk']:.1%} of one core; generator CPU "
        f"{res['cpu_generator']:.1%}; Asterisk warnings: {res['asterisk_warnings'] or 'none'}"
    )
    print(
        f"service: start-up settle {svc.get('startup_settle_s')} s (recordings reconcile), "
        f"RSS {svc.get('rss_mb')} MB, warnings/errors: {svc.get('logged')}"
    )
    if "recordings_removed" in res:
        print(f"lab recordings of our calls removed: {res['recordings_removed']}")
    if res.get("profile"):
        print("\nservice profile over the window (cProfile: CPU share above is inflated):")
        print_profile(str(res["profile"]))
    print(f"correctness: {'OK' if not problems else 'FAILED'}")
    for p in problems:
        print(f"FAIL {p}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--agents", type=int, default=400, help="extra queue members")
    parser.add_argument("--hold", type=float, default=1.0, help="caller: seconds after speech")
    parser.add_argument(
        "--scenario",
        choices=("talking", "silent"),
        default="talking",
        help="talking: 9.2 s of speech, then --hold s; silent: no audio, hangs up after --hold s",
    )
    parser.add_argument("--agent-hold", type=int, default=1, help="agent: s after greeting")
    parser.add_argument("--drain", type=float, default=90.0, help="max s to wait for the end")
    parser.add_argument("--attempts", type=int, default=2)
    parser.add_argument(
        "--keep-recordings", action="store_true", help="keep our calls' files in the lab folder"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the service over the window"
    )
    parser.add_argument("--service", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.service:
        asyncio.run(_service_main(args.db, args.log, args.profile_to))
        return 0
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    for attempt in range(1, args.attempts + 1):
        run_dir = OUT / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        run_dir.mkdir(parents=True, exist_ok=True)
        res, problems = run_once(args, run_dir)
        report(args, res, problems)
        print(f"(service DB and log: {run_dir.relative_to(REPO)})")
        if not (problems and problems[0].startswith("DISTURBED")) or attempt == args.attempts:
            return 1 if problems else 0
        print(f"attempt {attempt} disturbed by a lab restart: retrying in 10 s", flush=True)
        time.sleep(10)
    return 1


if __name__ == "__main__":
    sys.exit(main())
