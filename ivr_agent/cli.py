"""The `ivr-agent` command. Each command group registers itself from the module that owns it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ivr_agent import __version__
from ivr_agent.errors import IvrAgentError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr-agent",
        description="Runs an Asterisk call-center hotline by its staff handbook.",
    )
    parser.add_argument("--version", action="version", version=f"ivr-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # Imported here so that `ivr-agent --help` stays fast and each group owns its own flags.
    from ivr_agent import recordings_cli, service_cli, users_cli
    from ivr_agent.lab import commands as lab_commands
    from ivr_agent.lab import demo

    service_cli.add_parsers(sub)
    recordings_cli.add_parser(sub)
    users_cli.add_parser(sub)
    from ivr_agent import roster_cli  # `roster ...`, with the change requests (roster_change_cli)

    roster_cli.add_parser(sub)
    from ivr_agent import prompts_cli

    prompts_cli.add_parser(sub)
    demo.add_parser(sub)
    lab_commands.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "lab":
        # Lab commands talk to the user with print(); only warnings from the libraries below.
        from ivr_agent import logs

        logs.configure(level="warning")
    try:
        rc: int = args.handler(args)
    except IvrAgentError as err:
        print(f"ivr-agent: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return rc
