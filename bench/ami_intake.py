"""AMI event intake: bare panoramisk 1.4 vs ivr_agent's AmiClient, same run, same traffic.

    .venv/bin/python bench/ami_intake.py [--events N] [--runs R]

A replay server runs in a child process (so it does not share the measured event loop): for each
connection it sends the banner, answers Login, sends FullyBooted and then N synthetic but realistic
AMI event frames (~480 bytes each, the mix of one queued call in the lab, ChanVariable lines,
some Chinese CallerIDName) as fast as the socket takes them. Each client is timed from
`connect` to its N-th event:

(a) panoramisk 1.4 `Manager` with a '*' callback that only counts;
(b) `AmiClient` with a consumer that drains `next_frame()` and counts.

Runs alternate a/b; the medians and the ratio b/a are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr_agent.ami import AmiClient
from ivr_agent.config import AmiConfig

SECRET = "bench"  # noqa: S105  # the replay server's, accepted whatever it is
_NAMES = ["张三丰", "李小龙", "王芳", "Zhang Wei", "Li Na", "陈静", "<unknown>", "欧阳娜娜"]


def _channel(prefix: str, chan: str, uid: str, name: str, num: str, ctx: str = "ivr") -> str:
    p = prefix
    return (
        f"{p}Channel: {chan}\r\n{p}ChannelState: 6\r\n{p}ChannelStateDesc: Up\r\n"
        f"{p}CallerIDNum: {num}\r\n{p}CallerIDName: {name}\r\n{p}ConnectedLineNum: <unknown>\r\n"
        f"{p}ConnectedLineName: <unknown>\r\n{p}Language: zh\r\n{p}AccountCode: \r\n"
        f"{p}Context: {ctx}\r\n{p}Exten: s\r\n{p}Priority: 1\r\n{p}Uniqueid: {uid}\r\n"
        f"{p}Linkedid: {uid.split('-')[0]}\r\n"
    )


def _vars(prefix: str, uid: str, kind: str, agent: str) -> str:
    return (
        f"{prefix}ChanVariable: CALL_ID={uid}\r\n{prefix}ChanVariable: CALLER_KIND={kind}\r\n"
        f"{prefix}ChanVariable: AGENT_ID={agent}\r\n"
    )


def synth_events(n: int, seed: int = 7) -> bytes:
    """N event frames in the proportions of one queued call in the lab (VarSet/Newexten heavy)."""
    rnd = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        uid = f"17956{i // 100:05d}.{i % 100}"
        chan = f"Local/s@caller-{i // 100:06x};1"
        name = rnd.choice(_NAMES)
        num = f"138{rnd.randrange(10**8):08d}"
        head = _channel("", chan, uid, name, num)
        cv = _vars("", uid, "talking", "")
        kind = rnd.random()
        if kind < 0.30:
            body = f"Event: VarSet\r\nPrivilege: dialplan,all\r\n{head}{cv}"
            body += f"Variable: MIXMONITOR_FILENAME\r\nValue: /lab/rec/{uid}.wav\r\n"
        elif kind < 0.47:
            body = f"Event: Newexten\r\nPrivilege: dialplan,all\r\n{head}{cv}"
            body += "Extension: s\r\nApplication: Queue\r\nAppData: support,r,,,60\r\n"
        elif kind < 0.57:
            body = "Event: TestEvent\r\nPrivilege: reporting,all\r\nType: StateChange\r\n"
            body += "State: PLAYBACK\r\nAppFile: app_playback.c\r\nAppFunction: playback_exec\r\n"
            body += f"AppLine: 301\r\nMessage: /lab/sounds/talk\r\nUniqueid: {uid}\r\n"
        elif kind < 0.67:
            body = f"Event: Newchannel\r\nPrivilege: call,all\r\n{head}{cv}"
        elif kind < 0.77:
            body = f"Event: Newstate\r\nPrivilege: call,all\r\n{head}{cv}"
        elif kind < 0.84:
            body = f"Event: Hangup\r\nPrivilege: call,all\r\n{head}{cv}"
            body += "Cause: 16\r\nCause-txt: Normal Clearing\r\n"
        elif kind < 0.90:
            dest = _channel("Dest", f"Local/agent{i % 400}@agents/n;1", uid + "-a", "坐席", "8001")
            body = f"Event: AgentCalled\r\nPrivilege: agent,all\r\n{head}{cv}{dest}"
            body += f"Queue: support\r\nInterface: Local/agent{i % 400}@agents/n\r\n"
        elif kind < 0.95:
            body = f"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\n{head}{cv}"
            body += f"Queue: support\r\nPosition: {i % 7 + 1}\r\nCount: {i % 9 + 1}\r\n"
        else:
            body = "Event: Cdr\r\nPrivilege: cdr,all\r\nAccountCode: \r\nSource: 13800138000\r\n"
            body += f'Destination: s\r\nDestinationContext: ivr\r\nCallerID: "{name}" <{num}>\r\n'
            body += f"Channel: {chan}\r\nDestinationChannel: \r\nLastApplication: Queue\r\n"
            body += "LastData: support,r,,,60\r\nStartTime: 2026-11-25 10:00:00\r\n"
            body += "AnswerTime: 2026-11-25 10:00:01\r\nEndTime: 2026-11-25 10:00:09\r\n"
            body += "Duration: 9\r\nBillableSeconds: 8\r\nDisposition: ANSWERED\r\n"
            body += f"AMAFlags: DOCUMENTATION\r\nUniqueID: {uid}\r\nUserField: \r\n"
        out.append(body + "\r\n")
    return "".join(out).encode()


# -- replay server (child process) ---------------------------------------------------------------


async def _serve(n: int) -> None:
    blob = synth_events(n)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            login = (await reader.readuntil(b"\r\n\r\n")).decode()
            aid = next(ln[10:] for ln in login.split("\r\n") if ln.startswith("ActionID: "))
            reply = f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted"
            booted = "Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted"
            writer.write(f"{reply}\r\n\r\n{booted}\r\n\r\n".encode())
            writer.write(blob)
            await writer.drain()
            while await reader.read(65536):  # until the client hangs up
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# -- the two clients -----------------------------------------------------------------------------


async def _bare_panoramisk(port: int, n: int) -> float:
    from panoramisk import Manager

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    count = 0
    want = n + 1  # + FullyBooted

    def on_event(_manager: object, _message: object) -> None:
        nonlocal count
        count += 1
        if count == want:
            done.set_result(None)

    manager = Manager(
        host="127.0.0.1", port=port, username="bench", secret=SECRET, loop=loop, ping_delay=600
    )
    manager.register_event("*", on_event)
    start = time.perf_counter()
    await manager.connect()
    async with asyncio.timeout(300):
        await done
    elapsed = time.perf_counter() - start
    manager.close()
    return n / elapsed


async def _ami_client(port: int, n: int) -> float:
    cfg = dataclasses.replace(
        AmiConfig(), host="127.0.0.1", port=port, username="bench", ping_interval=600
    )
    client = AmiClient(cfg, SECRET)
    want = n + 2  # + FullyBooted + IvrAgentConnected
    count = 0
    start = time.perf_counter()
    await client.start()
    async with asyncio.timeout(300):
        while count < want:
            await client.next_frame()
            count += 1
    elapsed = time.perf_counter() - start
    await client.close()
    assert client.stats.events_dropped == 0
    return n / elapsed


def _run(client: Callable[[int, int], Coroutine[Any, Any, float]], port: int, n: int) -> float:
    gc.collect()
    return asyncio.run(client(port, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.events))
        return
    # The adapter's info lines (connect/close) would interleave with the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    size = len(synth_events(1000)) / 1000
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--events", str(args.events)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        bare: list[float] = []
        ours: list[float] = []
        for i in range(args.runs):
            bare.append(_run(_bare_panoramisk, port, args.events))
            ours.append(_run(_ami_client, port, args.events))
            print(f"run {i + 1}: panoramisk {bare[-1]:,.0f} ev/s   AmiClient {ours[-1]:,.0f} ev/s")
    finally:
        server.terminate()
        server.wait(timeout=10)
    a, b = statistics.median(bare), statistics.median(ours)
    print(
        f"\n{args.events:,} events x {args.runs} runs, ~{size:.0f} bytes/event, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"(a) bare panoramisk 1.4, '*' callback counting : median {a:,.0f} events/s")
    print(f"(b) AmiClient, consumer draining next_frame()  : median {b:,.0f} events/s")
    print(f"ratio b/a = {b / a:.2f}x")


if __name__ == "__main__":
    main()
