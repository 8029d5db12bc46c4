"""The lab demo's sign-ins: agent1..agent4 (the lab queue's members) and a supervisor.

Known passwords, printed by the demo banner: for the lab on loopback only, never production.
`ivr-agent demo` creates the ones that are missing at start (existing users are left alone).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Final

from ivr_agent.store import users
from ivr_agent.store.txn import Db
from ivr_agent.web.passwords import hash_password

DEMO_USERS: Final = (
    ("agent1", users.Role.AGENT, "agent1-demo"),
    ("agent2", users.Role.AGENT, "agent2-demo"),
    ("agent3", users.Role.AGENT, "agent3-demo"),
    ("agent4", users.Role.AGENT, "agent4-demo"),
    ("supervisor", users.Role.SUPERVISOR, "supervisor-demo"),
)


async def ensure_demo_users(database: str | Path) -> list[str]:
    """Create the demo users that do not exist yet; returns the names created."""
    db = await Db.open(database)
    created = []
    try:
        for name, role, password in DEMO_USERS:
            if await users.by_name(db.conn, name) is not None:
                continue
            hashed = await asyncio.to_thread(hash_password, password)
            await users.add_user(
                db, name, role, hashed, time.time(), agent=name if role is users.Role.AGENT else ""
            )
            created.append(name)
    finally:
        await db.close()
    return created


def banner_lines(url: str) -> str:
    who = ", ".join(f"{n} / {p}" for n, _, p in DEMO_USERS)
    return f"   agent desk:   {url}/desk   (demo users: {who})\n"
