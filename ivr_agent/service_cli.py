"""`ivr-agent run` and `ivr-agent calls ...`: the service and its records."""

from __future__ import annotations

import argparse
from typing import Any

from ivr_agent.config import load_settings


def add_parsers(sub: Any) -> None:
    run = sub.add_parser("run", help="run the service against an Asterisk")
    run.add_argument("--config", required=True, help="path to the TOML config")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    load_settings(args.config)
    return 0
