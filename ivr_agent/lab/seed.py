"""The lab's agents and roster in a database: agent1..agent4 (agent4 also leads), roster.csv.

`lab up` seeds the lab's own database; the integration tests seed each temp database the same
way, since the service adds queue members only for the agents its roster puts on duty.
Idempotent: agents already there are kept, the roster's days are replaced by the import.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import time
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from ivr_agent import rosterfile
from ivr_agent.domain.roster import Agent
from ivr_agent.domain.roster_table import parse_table
from ivr_agent.store import roster as store
from ivr_agent.store import roster_ops as ops
from ivr_agent.store.db import open_db

ROSTER_CSV: Final = Path(__file__).resolve().parents[2] / "dialplan" / "lab" / "roster.csv"
SEED_BY: Final = "lab-seed"
_DAYS: Final = 28


def lab_agents() -> list[Agent]:
    agents = [
        Agent(f"agent{n}", f"Local/agent{n}@lab-agents/n", ("support",), f"坐席{n}")
        for n in range(1, 4)
    ]
    agents.append(Agent("agent4", "Local/agent4@lab-agents/n", ("support", "leaders"), "班长4"))
    return agents


async def seed(
    db: Path,
    *,
    tz: str = "Asia/Shanghai",
    roster_csv: Path = ROSTER_CSV,
    if_needed: bool = False,
) -> int:
    """Add the lab agents (if missing) and import `roster_csv` from yesterday for 4 weeks.

    `if_needed`: import only when no shift covers the next day (keeps a lab's own edits).
    Returns the number of shifts imported.
    """
    zone = ZoneInfo(tz)
    conn = await open_db(db)
    try:
        have = await store.load_agents(conn)
        now = time.time()
        for agent in lab_agents():
            if agent.name not in have:
                await store.add_agent(conn, agent, by=SEED_BY, at=now)
        if if_needed and await store.load_shifts(conn, now, now + 86400.0):
            return 0
        today = dt.datetime.now(zone).date()
        first = today - dt.timedelta(days=1)
        got = rosterfile.read_roster_file(roster_csv)
        parsed = parse_table(
            got.table,
            zone,
            template=(first, first + dt.timedelta(days=_DAYS - 1)),
            source=f"import:{roster_csv.name}",
        )
        result = await ops.import_roster(conn, parsed, zone, by=SEED_BY, at=now, sha256=got.sha256)
        return result.imported
    finally:
        await conn.close()


def seed_sync(
    db: Path,
    *,
    tz: str = "Asia/Shanghai",
    roster_csv: Path = ROSTER_CSV,
    if_needed: bool = False,
) -> int:
    """`seed` from sync code, also from inside a running event loop (in a worker thread)."""
    work = seed(db, tz=tz, roster_csv=roster_csv, if_needed=if_needed)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result(60)
