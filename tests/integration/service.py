"""Integration helpers: the service in-process or as a subprocess, against the lab."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from ivr_agent.app import Service
from ivr_agent.config import Settings, load_settings
from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.seed import seed_sync

REPO = Path(__file__).resolve().parents[2]


def lab_settings(lab: LabInfo, db: Path, *, seed: bool = True) -> Settings:
    """The lab's settings on database `db`, seeded (unless told not to) with the lab's agents
    and roster: the service adds queue members only for the agents on duty."""
    s = load_settings(lab.config_path)
    if seed:
        seed_sync(db, tz=s.site.timezone, if_needed=True)
    return dataclasses.replace(
        s,
        storage=dataclasses.replace(s.storage, database=str(db), flush_interval=0.02),
        ami=dataclasses.replace(s.ami, reconnect_min=0.2, reconnect_max=1.0),
        # Any free port: several services (and the lab's own on 8080) may run at once.
        web=dataclasses.replace(s.web, port=0),
    )


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Service]:
    service = Service(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        async with asyncio.timeout(15):
            await service.started.wait()
            await service.ami.wait_ready(10)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def db_rows(
    db: Path, where: str = "1=1", params: tuple[object, ...] = ()
) -> list[dict[str, object]]:
    """Read committed rows straight from SQLite (what another process would see)."""
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=5) as conn:
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute(f"SELECT * FROM calls WHERE {where}", params).fetchall()  # noqa: S608
        except sqlite3.OperationalError:
            return []  # schema not created yet
    return [dict(r) for r in rows]


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


def cdr_linkedids(lab: LabInfo, since: float) -> set[str]:
    """Linkedids of Asterisk's own CDRs (cdr_custom Master.csv) for calls started >= since."""
    path = lab.lab_dir / "var/log/cdr-custom/Master.csv"
    out: set[str] = set()
    if not path.exists():
        return out
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            uniqueid, linkedid = row[0], row[1]
            if float(linkedid) >= since - 1 and uniqueid == linkedid:
                out.add(linkedid)
    return out


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivr_agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )
