"""Record real lab AMI traffic: the raw bytes of >= 1,000 calls, for bench/replay.py and memory.py.

    .venv/bin/python bench/record_traffic.py [--calls 1000] [--rate 25] [--agents 200]

Needs the lab Asterisk (`ivr-agent lab up`, as root). A plain asyncio TCP client logs in as the
service's AMI user (`ivr-agent`, `read = call,agent,cdr,user,system`: the events the service
really gets) and writes every byte received after the Login reply to `bench/data/traffic.ami`,
untouched. Meanwhile a second, event-less AMI session places `--calls` talking Local callers
(`ivr_agent.lab.simulator.place_local_calls`, caller number unique to this run, 1 s after the
speech) into the hotline. `--agents` extra Local agents are added to the `support` queue for the
run (QueueAdd; put back if another engineer's duty-roster service removes them; removed in a
`finally`) so that the calls are answered. Every Originate also sets two per-call variables, so
that nothing global in the shared lab is changed and other engineers' settings do not change
our calls: `__AGENT_HOLD_OVR` (the lab dialplan's per-call override of AGENT_HOLD: agents that
take our calls hang up `--agent-hold` s after their 5.1 s greeting, others keep the lab's 60 s)
and `IVR_AGENT_OPEN=1` (a channel variable shadows the global that a roster service sets to 0
"after hours", so our calls always queue).

Recording stops 3 s (Cdr records) after the last channel of the last of our calls hung up; the
file ends on a frame boundary. Other engineers' calls are in it too: that is real traffic.
The lab's MixMonitor files of our calls are deleted afterwards (`--keep-recordings` keeps them):
they would slow every later service start-up in the lab (its recordings reconcile adopts each
file). `bench/data/traffic.json` describes the run. A lab restart while recording (Shutdown
event, link lost) spoils the recording: the attempt is discarded and retried (`--attempts`).
Exit status 1 when no clean recording could be made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import structlog

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from ivr_agent.config import Settings, load_settings, require_ami_secret  # noqa: E402
from ivr_agent.errors import AmiActionFailed, AmiDisconnected, AmiTimeout  # noqa: E402
from ivr_agent.lab.simulator import LocalCall, place_local_calls  # noqa: E402

DATA = BENCH / "data"
LAB_TOML = REPO / "var/lab/ivr-agent.toml"
LAB_DIR = REPO / "var/lab"
CDR_CSV = LAB_DIR / "var/log/cdr-custom/Master.csv"
AGENT_BASE = 9000  # extra agents are agent9001...: far from the lab's agent1..4
_SEP = b"\r\n\r\n"


def lab_settings() -> Settings:
    return load_settings(LAB_TOML)


def call_vars(agent_hold: int) -> dict[str, str]:
    """Per-call Originate variables of our calls (see the module docstring)."""
    return {"__AGENT_HOLD_OVR": str(agent_hold), "IVR_AGENT_OPEN": "1"}


def run_number() -> str:
    """A caller number unique to this run (199 + 8 digits of the clock), to find our calls."""
    return f"199{int(time.time() * 10) % 10**8:08d}"


def shown(path: Path) -> str:
    """`path` relative to the repo when it is inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def asterisk_pid() -> int | None:
    try:
        return int((LAB_DIR / "asterisk.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def cpu_seconds(pid: int | str) -> float:
    """utime + stime of a process (all its threads) from /proc, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_headers(raw: bytes) -> dict[str, str]:
    """One frame's headers (first occurrence wins); independent of the code under test."""
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep and key not in out:
            out[key] = value
    return out


class AmiSender:
    """An AMI session for actions only (`Events: off`): the load generator must not spend the
    box's CPU parsing thousands of events per second. `send` has the `ActionSender` shape
    `place_local_calls` wants; `extra_vars` are added to every Originate's `Variable`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, str]]] = {}
        self._lists: dict[str, list[dict[str, str]]] = {}  # list actions: frames so far
        self._task: asyncio.Task[None] | None = None
        self.extra_vars: dict[str, str] = {}
        self.lost = False

    @classmethod
    async def login(cls, settings: Settings, within: float = 5.0) -> AmiSender:
        cfg = settings.ami
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
            await reader.readline()  # "Asterisk Call Manager/x.y.z"
        sender = cls(reader, writer)
        sender._task = asyncio.create_task(sender._read())
        secret = require_ami_secret(settings)
        login = {"Action": "Login", "Username": cfg.username, "Secret": secret, "Events": "off"}
        reply = await sender.send(login, timeout=within)
        if reply.get("Response") != "Success":
            await sender.close()
            raise AmiActionFailed("Login", reply.get("Message", "refused"))
        return sender

    async def _read(self) -> None:
        try:
            while True:
                frame = parse_headers((await self._reader.readuntil(_SEP))[:-4])
                aid = frame.get("ActionID", "")
                listing = self._lists.get(aid)
                if listing is not None:
                    listing.append(frame)
                    mark = frame.get("EventList", "").lower()
                    if "Response" in frame:
                        done = frame["Response"] != "Success" or mark != "start"
                    else:
                        done = mark == "complete"
                    if not done:
                        continue
                fut = self._pending.pop(aid, None)
                if fut is not None and not fut.done():
                    fut.set_result(frame)
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.lost = True
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(AmiDisconnected("AMI link lost"))
            self._pending.clear()

    async def send(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109  # the ActionSender signature
    ) -> dict[str, str]:
        if self.lost:
            raise AmiDisconnected("AMI link lost")
        fields = dict(action)
        if fields.get("Action") == "Originate" and self.extra_vars:
            extra = ",".join(f"{k}={v}" for k, v in self.extra_vars.items())
            fields["Variable"] = f"{fields['Variable']},{extra}" if "Variable" in fields else extra
        aid = fields.pop("ActionID", None) or f"bench-{next(self._ids)}"
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._pending[aid] = fut
        text = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        self._writer.write(f"{text}ActionID: {aid}\r\n\r\n".encode())
        try:
            async with asyncio.timeout(timeout or 5.0):
                return await fut
        except TimeoutError as err:
            raise AmiTimeout(f"{fields.get('Action')} {aid}: no response") from err
        finally:
            self._pending.pop(aid, None)

    async def send_list(
        self,
        action: Mapping[str, str],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109  # as send()
    ) -> list[dict[str, str]]:
        """A list action (QueueSummary...): the response, the items and the Complete event."""
        aid = f"bench-{next(self._ids)}"
        self._lists[aid] = []
        try:
            await self.send({**action, "ActionID": aid}, timeout=timeout)
            return self._lists[aid]
        finally:
            self._lists.pop(aid, None)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(2):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def add_agents(sender: AmiSender, count: int) -> list[str]:
    """QueueAdd `count` extra Local agents to `support`; returns their interfaces."""
    added: list[str] = []
    for n in range(AGENT_BASE + 1, AGENT_BASE + count + 1):
        iface = f"Local/agent{n}@lab-agents/n"
        action = {"Action": "QueueAdd", "Queue": "support", "Interface": iface}
        reply = await sender.send({**action, "MemberName": f"agent{n}"}, timeout=5)
        if reply.get("Response") == "Success" or "Already there" in reply.get("Message", ""):
            added.append(iface)
    return added


@dataclasses.dataclass
class AgentGuard:
    """Puts our extra agents back whenever `support` has fewer members than we added: another
    engineer's service (duty roster) makes the queue's members equal to its roster at start-up
    and every minute, which removes ours. `run()` until cancelled; `readds` says how often."""

    sender: AmiSender
    count: int
    every: float = 2.0
    readds: int = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                frames = await self.sender.send_list({"Action": "QueueSummary", "Queue": "support"})
                members = next((int(f["LoggedIn"]) for f in frames if "LoggedIn" in f), 0)
                if members < self.count:
                    self.readds += 1
                    await add_agents(self.sender, self.count)
            except (AmiTimeout, AmiDisconnected, ValueError):
                continue


async def remove_agents(settings: Settings, interfaces: list[str]) -> int:
    """QueueRemove the extra agents, on a fresh session (the old one may be gone)."""
    if not interfaces:
        return 0
    try:
        sender = await AmiSender.login(settings)
    except (OSError, TimeoutError, AmiActionFailed) as err:
        print(f"warning: cannot remove the extra agents ({err}); a lab restart drops them")
        return 0
    removed = 0
    try:
        for iface in interfaces:
            with contextlib.suppress(AmiTimeout, AmiDisconnected):
                action = {"Action": "QueueRemove", "Queue": "support", "Interface": iface}
                reply = await sender.send(action, timeout=5)
                removed += reply.get("Response") == "Success"
    finally:
        await sender.close()
    return removed


def remove_recordings(settings: Settings, call_ids: set[str]) -> int:
    """Delete the MixMonitor files of our own calls (`<CALL_ID>.wav|.ogg`, CALL_ID = Linkedid):
    thousands of bench files in the shared lab folder would slow every service start-up
    (the recordings reconcile adopts each file). Only exact names of our calls are touched."""
    root = Path(settings.hotline.recordings_dir)
    removed = 0
    for call_id in call_ids:
        if not call_id.replace(".", "").isdigit():
            continue
        for ext in ("wav", "ogg"):  # the dialplan records Ogg Vorbis when the lab asks for it
            with contextlib.suppress(FileNotFoundError):
                (root / f"{call_id}.{ext}").unlink()
                removed += 1
    return removed


@dataclasses.dataclass
class Tracker:
    """Follows the calls of one caller number in the raw stream: done when all hung up."""

    number: str
    mine: set[str] = dataclasses.field(default_factory=set)  # Linkedids of our calls
    live: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # Linkedid -> Uniqueids
    frames: int = 0
    shutdown: bool = False

    def feed(self, raw: bytes) -> None:
        self.frames += 1
        h = parse_headers(raw)
        event = h.get("Event")
        uid, lid = h.get("Uniqueid", ""), h.get("Linkedid", "")
        if event == "Shutdown":
            self.shutdown = True
        elif event == "Newchannel" and lid:
            self.live.setdefault(lid, set()).add(uid)
        elif event == "Hangup" and lid in self.live:
            self.live[lid].discard(uid)
        if uid and uid == lid and h.get("CallerIDNum") == self.number:
            self.mine.add(lid)

    def open_calls(self) -> int:
        return sum(1 for lid in self.mine if self.live.get(lid))


async def _record_once(
    args: argparse.Namespace, settings: Settings, out: Path
) -> dict[str, object]:
    cfg = settings.ami
    number = run_number()
    tracker = Tracker(number)
    reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
    await reader.readline()
    login = f"Action: Login\r\nUsername: {cfg.username}\r\nSecret: {require_ami_secret(settings)}"
    writer.write(f"{login}\r\nEvents: on\r\nActionID: rec-1\r\n\r\n".encode())
    async with asyncio.timeout(5):
        reply = parse_headers((await reader.readuntil(_SEP))[:-4])
    if reply.get("Response") != "Success":
        raise SystemExit(f"AMI login refused: {reply.get('Message')}")
    stop = asyncio.Event()
    size = 0
    lost = False

    async def record() -> None:
        nonlocal size, lost
        tail = b""
        with out.open("wb") as f:
            while not stop.is_set():
                try:
                    async with asyncio.timeout(0.2):
                        data = await reader.read(1 << 18)
                except TimeoutError:
                    continue
                if not data:
                    lost = True
                    break
                f.write(data)
                size += len(data)
                chunks = (tail + data).split(_SEP)
                tail = chunks.pop()
                for raw in chunks:
                    tracker.feed(raw)
            f.truncate(size - len(tail))  # end on a frame boundary
            size -= len(tail)

    rec_task = asyncio.create_task(record())
    started = time.time()
    sender = await AmiSender.login(settings)
    sender.extra_vars = call_vars(args.agent_hold)
    agents: list[str] = []
    guard: AgentGuard | None = None
    guard_task: asyncio.Task[None] | None = None
    try:
        agents = await add_agents(sender, args.agents)
        guard = AgentGuard(sender, len(agents))
        guard_task = asyncio.create_task(guard.run())
        call = LocalCall("talking", number, "回放录制", hold_s=args.hold)
        result = await place_local_calls(sender, call, count=args.calls, rate=args.rate)
        print(f"placed {result.queued}/{args.calls} calls in {result.seconds:.1f}s", flush=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (lost or tracker.shutdown):
            if len(tracker.mine) >= result.queued and not tracker.open_calls():
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(3.0)  # the Cdr records follow the last Hangup
    finally:
        if guard_task is not None:
            guard_task.cancel()
            await asyncio.gather(guard_task, return_exceptions=True)
        stop.set()
        await rec_task
        writer.close()
        await sender.close()
        removed = await remove_agents(settings, agents)
        readds = guard.readds if guard else 0
        print(f"extra agents: {len(agents)} added ({readds} times again), {removed} removed")
        if not args.keep_recordings:
            await asyncio.sleep(2.0)  # MixMonitor closes its file just after the hangup
            gone = remove_recordings(settings, tracker.mine)
            print(f"lab recordings of our calls removed: {gone}", flush=True)
    return {
        "file": shown(out),
        "recorded_at": utc_now(),
        "started": started,
        "seconds": round(time.time() - started, 1),
        "bytes": size,
        "frames": tracker.frames,
        "caller_number": number,
        "calls_placed": result.queued,
        "calls_failed": result.failed,
        "calls_seen": len(tracker.mine),
        "calls_open_at_end": tracker.open_calls(),
        "rate": args.rate,
        "extra_agents": len(agents),
        "agents_readded": readds,
        "agent_hold_s": args.agent_hold,
        "caller_hold_s": args.hold,
        "ami_user": cfg.username,
        "disturbed": lost or tracker.shutdown,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=25.0, help="calls per second")
    parser.add_argument("--agents", type=int, default=200, help="extra queue members")
    parser.add_argument("--hold", type=float, default=1.0, help="caller: seconds after speech")
    parser.add_argument("--agent-hold", type=int, default=1, help="agent: s after greeting")
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument(
        "--keep-recordings", action="store_true", help="keep our calls' files in the lab folder"
    )
    parser.add_argument("--out", type=Path, default=DATA / "traffic.ami")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = lab_settings()
    for attempt in range(1, args.attempts + 1):
        part = args.out.with_suffix(".part")
        meta = asyncio.run(_record_once(args, settings, part))
        ok = (
            not meta["disturbed"]
            and meta["calls_seen"] == meta["calls_placed"] == args.calls
            and meta["calls_open_at_end"] == 0
        )
        print(json.dumps(meta, ensure_ascii=False), flush=True)
        if ok:
            part.replace(args.out)
            meta["file"] = shown(args.out)
            args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
            mb = meta["bytes"] / 1e6  # type: ignore[operator]
            print(f"recorded {meta['calls_seen']} calls, {meta['frames']} frames, {mb:.1f} MB")
            return 0
        part.unlink(missing_ok=True)
        print(f"attempt {attempt}: recording not clean (lab restart or calls missing), retrying")
        time.sleep(5)
    return 1


if __name__ == "__main__":
    sys.exit(main())
