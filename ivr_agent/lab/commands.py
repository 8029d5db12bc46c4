"""`ivr-agent lab ...`: bring the lab PBX up and down, tell its status, place simulated calls."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from ivr_agent.ami import AmiClient
from ivr_agent.config import load_settings, require_ami_secret
from ivr_agent.errors import LabError
from ivr_agent.lab import simulator, sipp
from ivr_agent.lab.pbx import Lab, LabStatus, default_lab_dir

EXIT_DOWN = 3


def add_parser(sub: Any) -> None:
    lab = sub.add_parser("lab", help="the lab PBX (a real Asterisk 22 on loopback, in a chroot)")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)

    def command(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = lab_sub.add_parser(name, help=help_text)
        parser.add_argument(
            "--dir",
            type=Path,
            default=None,
            help="lab state folder (default: $IVR_AGENT_LAB_DIR or ./var/lab)",
        )
        parser.set_defaults(handler=handler)
        return parser

    command("up", "build (first time) and start the lab; idempotent", _up)
    command("down", "stop Asterisk and unmount the lab folder; idempotent", _down)
    command("restart", "restart only Asterisk (same secret and config)", _restart)
    status = command("status", "tell what runs (exit 0 when up, 3 when down)", _status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    call = command("call", "place simulated calls into the lab hotline", _call)
    call.add_argument(
        "--via",
        choices=("local", "sip"),
        default="local",
        help="local: AMI Originate of Local channels; sip: SIPp over the lab's PJSIP trunk",
    )
    call.add_argument("--scenario", choices=sipp.SCENARIOS, default="talking")
    call.add_argument(
        "--caller-id",
        default="张三 <13800138000>",
        help="caller name and number, e.g. '张三 <13800138000>' (default)",
    )
    call.add_argument("--dialed", default="95000", help="the dialed hotline number (default 95000)")
    call.add_argument("--count", type=int, default=1, help="number of calls (default 1)")
    call.add_argument("--rate", type=float, default=1.0, help="calls per second (default 1)")
    call.add_argument(
        "--hold",
        type=float,
        default=10.0,
        help="seconds each caller stays on the line (default 10)",
    )


def _lab(args: argparse.Namespace) -> Lab:
    lab_dir = args.dir.resolve() if args.dir else default_lab_dir()
    return Lab(lab_dir, echo=print)


def _up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    info = lab.up()
    print(f"service config: {info.config_path}")
    print(f"run the service: ivr-agent run --config {info.config_path}")
    _print_status(lab.status())
    return 0


def _down(args: argparse.Namespace) -> int:
    _lab(args).down()
    return 0


def _restart(args: argparse.Namespace) -> int:
    lab = _lab(args)
    lab.restart()
    _print_status(lab.status())
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        print(json.dumps(status.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_status(status)
    return 0 if status.up else EXIT_DOWN


def _print_status(status: LabStatus) -> None:
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    print(f"lab:       {'UP' if status.up else 'DOWN'} ({status.lab_dir})")
    print(f"chroot:    {yes(status.chroot_present)} ({status.chroot})")
    print(f"mounted:   {yes(status.mounted)}")
    pid = f" (PID {status.pid})" if status.pid else ""
    print(f"asterisk:  {'running' if status.asterisk_running else 'stopped'}{pid}")
    print(f"ami:       {'ready' if status.ami_ready else 'not ready'} on {status.ami}")
    print(f"sip:       {status.sip}; rtp {status.rtp_ports}")


def _call(args: argparse.Namespace) -> int:
    name, number = sipp.parse_caller_id(args.caller_id)
    lab_dir = args.dir.resolve() if args.dir else default_lab_dir()
    lab = Lab(lab_dir)
    if not lab.status().up:
        raise LabError(f"the lab in {lab_dir} is not up: run `ivr-agent lab up` first")
    if args.via == "local":
        call = simulator.LocalCall(args.scenario, number, name, args.dialed, args.hold)
        try:
            call.originate()
        except ValueError as err:
            raise LabError(str(err)) from None
        sim = asyncio.run(_local_calls(lab, call, args.count, args.rate))
        print(
            f"local {args.scenario}: {sim.queued}/{args.count} calls queued, "
            f"{sim.failed} failed, {sim.seconds}s"
        )
        for error in sim.errors:
            print(f"  {error}")
        return 0 if sim.failed == 0 and sim.queued == args.count else 1
    result = asyncio.run(
        sipp.place_sip_calls(
            lab_dir,
            args.scenario,
            caller_number=number,
            caller_name=name,
            dialed=args.dialed,
            count=args.count,
            rate=args.rate,
            hold_s=args.hold,
        )
    )
    print(
        f"sipp {result.scenario}: {result.successful}/{result.calls_total} calls ok, "
        f"{result.failed} failed, exit {result.returncode}, {result.seconds}s ({result.workdir})"
    )
    if not result.ok:
        print(result.log_tail)
        return 1
    return 0


async def _local_calls(lab: Lab, call: simulator.LocalCall, count: int, rate: float) -> Any:
    settings = load_settings(lab.info().config_path)
    client = AmiClient(settings.ami, require_ami_secret(settings), queue_size=1000)
    await client.start()
    try:
        await client.wait_ready(settings.ami.connect_timeout)
        try:
            return await simulator.place_local_calls(client, call, count=count, rate=rate)
        except ValueError as err:
            raise LabError(str(err)) from None
    finally:
        await client.close()
