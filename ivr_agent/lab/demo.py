"""`ivr-agent demo`: the lab PBX, the service against it and a steady trickle of simulated calls.

Ctrl-C (or SIGTERM) stops the trickle, then the service, then the lab: nothing is left running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
from pathlib import Path
from typing import Any

import structlog

from ivr_agent import logs
from ivr_agent.app import Service
from ivr_agent.config import load_settings
from ivr_agent.errors import AmiError, LabError
from ivr_agent.lab import sipp
from ivr_agent.lab.demo_users import banner_lines, ensure_demo_users
from ivr_agent.lab.pbx import Lab, LabInfo, default_lab_dir
from ivr_agent.lab.simulator import LocalCall, place_local_calls

log = structlog.get_logger(__name__)

# Simulated callers: (name, number). Numbers are in a reserved-looking range, not real people's.
CALLERS = (
    ("张三", "13800138000"),
    ("李四", "13900139000"),
    ("王五", "13700137000"),
    ("赵丽", "13600136000"),
    ("陈静", "15000150000"),
    ("刘洋", "18600186000"),
)


def add_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="lab PBX + service + a trickle of simulated calls")
    demo.add_argument("--dir", type=Path, default=None, help="lab folder (default ./var/lab)")
    demo.add_argument(
        "--interval", type=float, default=5.0, help="seconds between calls (default 5)"
    )
    demo.add_argument(
        "--calls", type=int, default=0, help="stop after this many calls (default: until Ctrl-C)"
    )
    demo.add_argument("--keep-lab", action="store_true", help="leave the lab PBX running on exit")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.interval < 0.5:
        raise LabError("--interval must be >= 0.5 s")
    lab = Lab(args.dir.resolve() if args.dir else default_lab_dir(), echo=print)
    print("== starting the lab PBX (first run builds it: about a minute)")
    info = lab.up()
    try:
        asyncio.run(_run(info, args.interval, args.calls))
    finally:
        if not args.keep_lab:
            print("== stopping the lab PBX")
            lab.down()
    return 0


async def _run(info: LabInfo, interval: float, calls: int) -> None:
    settings = load_settings(info.config_path)
    logs.configure(level=settings.log.level, fmt="console")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await ensure_demo_users(settings.storage.database)  # lab only: known passwords
    service = Service(settings)
    async with asyncio.TaskGroup() as tg:
        runner = tg.create_task(service.run(stop), name="service")
        await service.started.wait()
        await service.ami.wait_ready(settings.ami.connect_timeout)
        _banner(info)
        trickle = tg.create_task(_trickle(service, info, interval, calls, stop), name="trickle")
        await stop.wait()
        trickle.cancel()
        await runner


async def _trickle(
    service: Service, info: LabInfo, interval: float, calls: int, stop: asyncio.Event
) -> None:
    rng = random.Random()  # noqa: S311  # picking demo callers, not security
    n = 0
    while not stop.is_set() and (calls == 0 or n < calls):
        n += 1
        name, number = rng.choice(CALLERS)
        roll = rng.random()
        try:
            if roll < 0.2:
                await sipp.place_sip_calls(
                    info.lab_dir, "talking", caller_number=number, caller_name=name, hold_s=8
                )
            else:
                scenario = "silent" if roll < 0.4 else "talking"
                call = LocalCall(scenario, number, name, hold_s=rng.uniform(6, 15))
                await place_local_calls(service.ami, call)
        except (AmiError, LabError, OSError) as err:
            log.warning("demo_call_failed", error=str(err))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    if calls:
        await asyncio.sleep(20)  # let the last calls finish before stopping
        stop.set()


def _banner(info: LabInfo) -> None:
    print(
        "\n== ivr-agent demo is running\n"
        f"   lab PBX:      Asterisk 22 on loopback (AMI {info.ami_host}:{info.ami_port}, "
        f"SIP 127.0.0.1:{info.sip_port})\n"
        f"   service:      {info.config_path}\n"
        f"   recordings:   {info.recordings_dir}\n"
        f"   call records: .venv/bin/ivr-agent calls list --config {info.config_path}\n"
        + banner_lines("http://127.0.0.1:8080")
        + "   supervisor:   http://127.0.0.1:8080/supervisor   (recordings: /recordings)\n"
        "   Ctrl-C stops everything.\n",
        flush=True,
    )
