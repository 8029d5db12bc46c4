"""`ivr-agent lab ...`: bring the lab PBX up and down, place simulated calls."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    lab = sub.add_parser("lab", help="the lab PBX (a real Asterisk on loopback)")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)
    status = lab_sub.add_parser("status", help="tell what runs")
    status.set_defaults(handler=_status)


def _status(_args: argparse.Namespace) -> int:
    print("lab: not provisioned")
    return 1
