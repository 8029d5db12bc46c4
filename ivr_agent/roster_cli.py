"""`ivr-agent roster ...`: import, show and export the duty roster; agents; change requests.

Handlers parse flags, open the database and print. What they compute lives in plain functions
(`load_file`, `on_duty_report`, `day_report`, `export_text`) and in `store.roster_ops`, which
the tests and the web side call directly.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TypedDict, TypeVar
from zoneinfo import ZoneInfo

import aiosqlite

from ivr_agent import rosterfile
from ivr_agent.config import Settings
from ivr_agent.domain.roster import (
    Agent,
    Roster,
    RosterError,
    RosterIssue,
    Shift,
    day_start,
    leader_gaps,
    local_epoch,
    local_text,
    span_text,
)
from ivr_agent.domain.roster_changes import ChangeError
from ivr_agent.domain.roster_rules import LEADER_GAPS
from ivr_agent.domain.roster_table import ParsedRoster, parse_table
from ivr_agent.errors import ConfigError
from ivr_agent.store import roster as store
from ivr_agent.store import roster_ops as ops
from ivr_agent.store.db import open_db

TEMPLATE_DAYS = 28  # a recurring roster (daily, mon..sun) is expanded over 4 weeks by default
SHOW_AHEAD = 7 * 86400.0  # how far `show` looks for the next change
_MAX_ISSUES_SHOWN = 50
_FOREVER = 4e9  # 2096: "every later shift" for an export without --until
_T = TypeVar("_T")
_Sub = argparse._SubParsersAction  # argparse has no public name for it
_Handler = Callable[[argparse.Namespace], int]


def command(
    parent: _Sub[argparse.ArgumentParser], name: str, handler: _Handler, text: str
) -> argparse.ArgumentParser:
    """A subcommand with --config, run by `handler`."""
    p = parent.add_parser(name, help=text)
    p.add_argument("--config", help="TOML config (default: see README)")
    p.set_defaults(handler=handler)
    return p


def add_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    """Register `ivr-agent roster ...` on the top-level subparsers."""
    roster = sub.add_parser("roster", help="the duty roster (值班表): who is on duty, changes")
    rs = roster.add_subparsers(dest="roster_command", metavar="ROSTER_COMMAND", required=True)

    imp = command(rs, "import", _import, "check a CSV/.xlsx roster, then replace its days' shifts")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true", help="check and report, change nothing")
    imp.add_argument("--by", help="who imports (default: the OS user)")
    imp.add_argument(
        "--leader-gap",
        choices=LEADER_GAPS,
        default="error",
        help="a time with agents on duty but no shift leader: error (default) or warning",
    )
    imp.add_argument("--from", dest="first", help="recurring rows: first day (default: today)")
    imp.add_argument("--until", help=f"recurring rows: last day (default: +{TEMPLATE_DAYS - 1}d)")

    show = command(rs, "show", _show, "who is on duty now, at a time, or over a day")
    show.add_argument("--date", help="YYYY-MM-DD: that day's shifts (with --at: an instant)")
    show.add_argument("--at", help="HH:MM: who is on duty then (today unless --date)")
    show.add_argument("--json", action="store_true")

    exp = command(rs, "export", _export, "write shifts as CSV (re-importable) or iCalendar")
    exp.add_argument("--format", choices=("csv", "ics"), required=True)
    exp.add_argument("--agent", help="only this agent's shifts")
    exp.add_argument("--output", type=Path, required=True)
    exp.add_argument("--from", dest="first", help="first day (default: today)")
    exp.add_argument("--until", help="last day (default: every later shift)")

    agents = rs.add_parser("agents", help="the agents a roster may name")
    ag = agents.add_subparsers(dest="agents_command", metavar="AGENTS_COMMAND", required=True)
    add = command(ag, "add", _agents_add, "add an agent")
    add.add_argument("name")
    add.add_argument("--interface", required=True, help="PJSIP/1001, Local/agent1@lab-agents/n")
    add.add_argument("--queues", required=True, help="comma-separated, e.g. support,leaders")
    add.add_argument("--display-name", default="")
    add.add_argument("--by", help="who adds (default: the OS user)")
    command(ag, "list", _agents_list, "every agent").add_argument("--json", action="store_true")

    from ivr_agent import roster_change_cli  # it imports this module's plumbing

    roster_change_cli.add_parsers(rs, command)


# -- What the handlers compute -----------------------------------------------------------------


def load_file(
    path: Path, tz: ZoneInfo, *, template: tuple[dt.date, dt.date] | None
) -> tuple[ParsedRoster, str]:
    """Read and parse a roster file: the parsed rows and the sha256 of the file."""
    got = rosterfile.read_roster_file(path)
    return parse_table(got.table, tz, template=template, source=f"import:{path.name}"), got.sha256


class ShiftView(TypedDict):
    id: int | None
    agent: str
    role: str
    shift: str  # local: "2026-07-01 08:00-17:00"
    breaks: list[str]  # local: "12:00-12:30"
    on_break: bool | None  # None in a day's listing
    interface: str


class OnDutyReport(TypedDict):
    at: str
    timezone: str
    on_duty: list[ShiftView]
    leader: str | None
    next_change: str | None


class DayReport(TypedDict):
    date: str
    timezone: str
    shifts: list[ShiftView]
    leader_gaps: list[str]


def on_duty_report(roster: Roster, t: float, tz: ZoneInfo) -> OnDutyReport:
    """Who is on duty at t, the shift leader, and when that next changes."""
    leader = roster.leader_at(t)
    nxt = roster.next_change(t)
    return {
        "at": local_text(t, tz),
        "timezone": tz.key,
        "on_duty": [_view(d.shift, tz, d.agent, d.on_break) for d in roster.on_duty(t)],
        "leader": leader.agent.name if leader else None,
        "next_change": local_text(nxt, tz) if nxt is not None else None,
    }


def day_report(roster: Roster, day: dt.date, tz: ZoneInfo) -> DayReport:
    """Every shift touching a local day, and the times in it with no shift leader."""
    lo, hi = day_start(day, tz), day_start(day + dt.timedelta(days=1), tz)
    shifts = sorted(
        (s for s in roster.shifts if s.start < hi and lo < s.end), key=lambda s: (s.start, s.agent)
    )
    return {
        "date": day.isoformat(),
        "timezone": tz.key,
        "shifts": [_view(s, tz, roster.agents.get(s.agent), None) for s in shifts],
        "leader_gaps": [span_text(a, b, tz) for a, b in leader_gaps(shifts, lo, hi)],
    }


def export_text(
    shifts: Sequence[Shift],
    agents: dict[str, Agent],
    fmt: str,
    tz: ZoneInfo,
    *,
    now: float,
    language: str = "zh-CN",
    title: str = "",
) -> str:
    if fmt == "csv":
        return rosterfile.shifts_to_csv(shifts, tz)
    return rosterfile.shifts_to_ics(shifts, agents, tz, now=now, title=title, language=language)


def _view(s: Shift, tz: ZoneInfo, agent: Agent | None, on_break: bool | None) -> ShiftView:
    return {
        "id": s.id,
        "agent": s.agent,
        "role": s.role.value,
        "shift": span_text(s.start, s.end, tz),
        "breaks": [span_text(b.start, b.end, tz)[11:] for b in s.breaks],
        "on_break": on_break,
        "interface": agent.interface if agent else "",
    }


# -- Handlers ----------------------------------------------------------------------------------


def _import(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    today = dt.datetime.now(tz).date()
    first = _date(args.first, "--from") if args.first else today
    last = _date(args.until, "--until") if args.until else first + dt.timedelta(TEMPLATE_DAYS - 1)
    if last < first:
        raise ConfigError("--until is before --from")
    parsed, sha = load_file(args.file, tz, template=(first, last))
    by = args.by or os_user()

    async def work(conn: aiosqlite.Connection) -> ops.ImportResult:
        return await ops.import_roster(
            conn,
            parsed,
            tz,
            by=by,
            at=time.time(),
            sha256=sha,
            leader_gap=args.leader_gap,
            dry_run=args.dry_run,
        )

    result = run_db(settings, work)
    print_issues(result.warnings)
    verb = "would replace" if result.dry_run else "replaced"
    print(
        f"{result.file}: {result.imported} shifts for {result.first_day}..{result.last_day} "
        f"({verb} {result.replaced}); sha256 {result.sha256[:12]}"
        + ("; dry run: nothing changed" if result.dry_run else "")
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    day = _date(args.date, "--date") if args.date else None
    if day is not None and args.at is None:
        lo, hi = day_start(day, tz), day_start(day + dt.timedelta(days=1), tz)
        day_view = day_report(run_db(settings, lambda c: store.load_roster(c, lo, hi)), day, tz)
        if args.json:
            json_out(day_view)
        else:
            _print_day(day_view)
        return 0
    t = time.time()
    if args.at is not None:
        t = local_instant(f"{day or dt.datetime.now(tz).date()} {args.at}", tz, "--at")
    roster = run_db(settings, lambda c: store.load_roster(c, t - 86400, t + SHOW_AHEAD))
    view = on_duty_report(roster, t, tz)
    if args.json:
        json_out(view)
    else:
        _print_on_duty(view)
    return 0


def _export(args: argparse.Namespace) -> int:
    settings, tz = settings_tz(args)
    first = _date(args.first, "--from") if args.first else dt.datetime.now(tz).date()
    lo = day_start(first, tz)
    hi = day_start(_date(args.until, "--until") + dt.timedelta(1), tz) if args.until else _FOREVER

    async def work(conn: aiosqlite.Connection) -> tuple[list[Shift], dict[str, Agent]]:
        agents = await store.load_agents(conn)
        if args.agent and args.agent not in agents:
            raise ConfigError(f"--agent: no agent {args.agent!r}")
        # Only shifts starting in the range: a CSV must not claim a day it does not cover.
        shifts = await store.load_shifts(conn, lo, hi, agent=args.agent)
        return [s for s in shifts if lo <= s.start < hi], agents

    shifts, agents = run_db(settings, work)
    title = f"{settings.site.name} {args.agent or ''}".strip()
    body = export_text(
        shifts,
        agents,
        args.format,
        tz,
        now=time.time(),
        language=settings.site.language,
        title=title,
    )
    # A BOM, so that Excel opens a UTF-8 CSV with Chinese names correctly.
    args.output.write_text(
        body, encoding="utf-8-sig" if args.format == "csv" else "utf-8", newline=""
    )
    print(f"wrote {len(shifts)} shifts to {args.output}")
    return 0


def _agents_add(args: argparse.Namespace) -> int:
    settings, _ = settings_tz(args)
    queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    agent = Agent(args.name, args.interface, queues, args.display_name)
    run_db(settings, lambda c: store.add_agent(c, agent, by=args.by or os_user(), at=time.time()))
    unmanaged = [q for q in queues if q not in settings.hotline.queues]
    if unmanaged:
        print(f"warning: not in hotline.queues: {', '.join(unmanaged)}", file=sys.stderr)
    print(f"agent {agent.name} added ({agent.interface}; {', '.join(queues)})")
    return 0


def _agents_list(args: argparse.Namespace) -> int:
    settings, _ = settings_tz(args)
    agents = run_db(settings, store.load_agents)
    rows = [
        {
            "name": a.name,
            "display_name": a.display_name,
            "interface": a.interface,
            "queues": list(a.queues),
            "active": a.active,
        }
        for a in agents.values()
    ]
    if args.json:
        json_out(rows)
        return 0
    for a in agents.values():
        state = "" if a.active else "  (inactive)"
        print(f"{a.name:<12} {a.interface:<32} {','.join(a.queues):<20} {a.display_name}{state}")
    return 0


# -- Plumbing ----------------------------------------------------------------------------------


def settings_tz(args: argparse.Namespace) -> tuple[Settings, ZoneInfo]:
    from ivr_agent.service_cli import load  # the service's config rules, loaded when needed

    settings = load(args)
    return settings, ZoneInfo(settings.site.timezone)


def run_db(settings: Settings, work: Callable[[aiosqlite.Connection], Awaitable[_T]]) -> _T:
    """Run `work` on the database; issue lists (bad file, refused change) go to stderr first."""

    async def run() -> _T:
        conn = await open_db(settings.storage.database)
        try:
            await store.require_schema(conn, settings.storage.database)
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except (RosterError, ChangeError) as err:
        print_issues(err.issues)
        raise


def _date(text: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag}: not a date (YYYY-MM-DD): {text!r}") from None


def local_instant(text: str, tz: ZoneInfo, flag: str) -> float:
    try:
        local = dt.datetime.strptime(text.replace("T", " "), "%Y-%m-%d %H:%M")  # noqa: DTZ007
    except ValueError:
        raise ConfigError(f"{flag}: not a local time (YYYY-MM-DD HH:MM): {text!r}") from None
    ts = local_epoch(local.date(), local.time(), tz)
    if ts is None:
        raise ConfigError(f"{flag}: {text} does not exist in {tz.key} (DST)")
    return ts


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def print_issues(issues: Iterable[RosterIssue]) -> None:
    shown = list(issues)
    for issue in shown[:_MAX_ISSUES_SHOWN]:
        print(str(issue), file=sys.stderr)
    if len(shown) > _MAX_ISSUES_SHOWN:
        print(f"... and {len(shown) - _MAX_ISSUES_SHOWN} more", file=sys.stderr)


def json_out(data: object) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


def _print_day(report: DayReport) -> None:
    print(f"{report['date']} ({report['timezone']})")
    for s in report["shifts"]:
        breaks = f"  breaks {', '.join(s['breaks'])}" if s["breaks"] else ""
        print(f"  #{s['id']!s:<6} {s['agent']:<12} {s['role']:<7} {s['shift']}{breaks}")
    for gap in report["leader_gaps"]:
        print(f"  no shift leader {gap}")


def _print_on_duty(report: OnDutyReport) -> None:
    print(f"on duty at {report['at']} ({report['timezone']}): leader {report['leader'] or '-'}")
    for d in report["on_duty"]:
        note = "  (on a break)" if d["on_break"] else ""
        print(f"  {d['agent']:<12} {d['role']:<7} {d['shift']}{note}")
    print(f"next change: {report['next_change'] or '-'}")
