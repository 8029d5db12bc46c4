"""`ivr-agent run` and `ivr-agent calls ...`: the service and its records."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ivr_agent import logs
from ivr_agent.app import Service
from ivr_agent.config import Settings, load_settings
from ivr_agent.errors import ConfigError
from ivr_agent.store import calls as call_store
from ivr_agent.store.db import open_db, parse_utc_text

DEFAULT_CONFIGS = ("var/lab/ivr-agent.toml", "/etc/ivr-agent/ivr-agent.toml")


def resolve_config(given: str | None) -> str:
    """--config, else $IVR_AGENT_CONFIG, else the lab's config, else /etc/ivr-agent."""
    if given:
        return given
    if env := os.environ.get("IVR_AGENT_CONFIG"):
        return env
    for candidate in DEFAULT_CONFIGS:
        if Path(candidate).is_file():
            return candidate
    raise ConfigError(
        "no config: pass --config PATH or set IVR_AGENT_CONFIG "
        f"(looked for {', '.join(DEFAULT_CONFIGS)})"
    )


def add_parsers(sub: Any) -> None:
    run = sub.add_parser("run", help="run the service against an Asterisk")
    run.add_argument("--config", help="TOML config (default: see README)")
    run.set_defaults(handler=_run)

    calls = sub.add_parser("calls", help="call records")
    calls_sub = calls.add_subparsers(dest="calls_command", metavar="CALLS_COMMAND", required=True)
    lst = calls_sub.add_parser("list", help="call records, newest first")
    lst.add_argument("--config")
    lst.add_argument("--json", action="store_true", help="a JSON array (full numbers)")
    lst.add_argument("--since", help="only calls started at or after this ISO-8601 time")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    lst.set_defaults(handler=_calls_list)
    show = calls_sub.add_parser("show", help="one call with its event timeline (JSON)")
    show.add_argument("call_id")
    show.add_argument("--config")
    show.set_defaults(handler=_calls_show)


def load(args: argparse.Namespace, *, cache_loggers: bool = False) -> Settings:
    settings = load_settings(resolve_config(args.config))
    logs.configure(level=settings.log.level, fmt=settings.log.format, cache=cache_loggers)
    return settings


def _run(args: argparse.Namespace) -> int:
    settings = load(args, cache_loggers=True)
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Service(settings).run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _calls_list(args: argparse.Namespace) -> int:
    settings = load(args)
    since = None
    if args.since:
        try:
            since = parse_utc_text(args.since)
        except ValueError:
            raise ConfigError(f"--since: not an ISO-8601 time: {args.since!r}") from None
    if args.limit < 1:
        raise ConfigError("--limit must be >= 1")
    rows = asyncio.run(_query_list(settings, since, args.limit))
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    for r in rows:
        print(
            f"{r['started_at']}  {r['call_id']:<24} {r['caller_number'] or '-':<14} "
            f"{r['caller_name'] or '-':<8} {r['state']:<13} {r['disposition'] or '-':<12} "
            f"{r['agent'] or '-'}"
        )
    return 0


async def _query_list(settings: Settings, since: float | None, limit: int) -> list[dict[str, Any]]:
    conn = await open_db(settings.storage.database)
    try:
        return await call_store.list_calls(conn, since=since, limit=limit)
    finally:
        await conn.close()


def _calls_show(args: argparse.Namespace) -> int:
    settings = load(args)
    row = asyncio.run(_query_one(settings, args.call_id))
    if row is None:
        print(f"ivr-agent: error: no call {args.call_id!r}", file=sys.stderr)
        return 1
    json.dump(row, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0


async def _query_one(settings: Settings, call_id: str) -> dict[str, Any] | None:
    conn = await open_db(settings.storage.database)
    try:
        return await call_store.get_call(conn, call_id)
    finally:
        await conn.close()
