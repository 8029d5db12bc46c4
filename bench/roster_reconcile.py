"""Roster reconcile against the real lab: 200 agents across 5 queues, after a reconnect.

    .venv/bin/python bench/roster_reconcile.py [--agents 200] [--runs 5]

Uses the lab's own queues `roster-bench1..5` (dialplan/lab/queues.conf: nobody else touches
them) and a temp database with `--agents` agents, each in all 5 queues, all on duty. Each run
first scrambles the queues over AMI the way a PBX looks after a restart or a hand edit (every
member gone, or: half the members missing, 20 strangers added, a quarter paused by the roster)
and then times `Rostering.reconcile()` from the start (QueueStatus) to the end (the last
QueueAdd/QueueRemove/QueuePause answered and the roster_audit rows committed). The bar is < 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr_agent.ami import AmiClient
from ivr_agent.config import load_settings
from ivr_agent.domain.roster import Agent, Shift
from ivr_agent.lab.pbx import Lab, default_lab_dir
from ivr_agent.rostering import Rostering
from ivr_agent.store import roster as store
from ivr_agent.store.txn import Db

QUEUES = tuple(f"roster-bench{n}" for n in range(1, 6))


def _iface(n: int) -> str:
    return f"Local/agent{7000 + n}@lab-agents/n"


async def _clear(ami: AmiClient) -> None:
    frames = await ami.send_list({"Action": "QueueStatus"}, timeout=10)
    doomed = [
        {"Action": "QueueRemove", "Queue": f["Queue"], "Interface": f["Location"]}
        for f in frames
        if f.get("Event") == "QueueMember" and f.get("Queue") in QUEUES
    ]
    await asyncio.gather(*(ami.send(a, timeout=5) for a in doomed))


async def _scramble(ami: AmiClient, agents: int, rng: random.Random) -> None:
    """Half the members there (a quarter of those paused by the roster), 20 strangers."""
    actions = []
    for q in QUEUES:
        for n in rng.sample(range(agents), agents // 2):
            paused = rng.random() < 0.25
            actions.append(
                {
                    "Action": "QueueAdd",
                    "Queue": q,
                    "Interface": _iface(n),
                    "MemberName": f"agent{7000 + n}",
                    "Paused": "true" if paused else "false",
                }
            )
        for n in range(4):
            actions.append(
                {
                    "Action": "QueueAdd",
                    "Queue": q,
                    "Interface": f"Local/agent{8000 + n}@lab-agents/n",
                    "MemberName": f"stranger{n}",
                }
            )
    await asyncio.gather(*(ami.send(a, timeout=5) for a in actions))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    lab = Lab(default_lab_dir()).info()
    settings = load_settings(lab.config_path)
    ami = AmiClient(settings.ami, lab.ami_secret)
    await ami.start()
    await ami.wait_ready(10)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        db = await Db.open(Path(tmp) / "bench.db")
        now = time.time()
        for n in range(args.agents):
            agent = Agent(f"agent{7000 + n}", _iface(n), QUEUES)
            await store.add_agent(db.conn, agent, by="bench", at=now)
        shifts = [Shift(f"agent{7000 + n}", now - 3600, now + 3600) for n in range(args.agents)]
        async with store.transaction(db.conn):
            await store.insert_shifts(db.conn, shifts, by="bench", at=now)
        # No leader queues here: every agent's own 5 queues are managed.
        feature = Rostering(ami, db, queues=QUEUES, leader_queues=())
        results: dict[str, list[float]] = {"cold (all 1000 missing)": [], "scrambled": []}
        changes: dict[str, int] = {}
        for run in range(args.runs):
            for case in results:
                await _clear(ami)
                if case == "scrambled":
                    await _scramble(ami, args.agents, rng)
                started = time.perf_counter()
                got = await feature.reconcile()
                results[case].append(time.perf_counter() - started)
                changes[case] = got.changes
                assert got.failed == 0, got
                check = await feature.reconcile()
                assert check.changes == 0, f"run {run}: not converged: {check}"
        await _clear(ami)
        await db.close()
    await ami.close()
    print(f"{args.agents} agents x {len(QUEUES)} queues, {args.runs} runs each")
    for case, times in results.items():
        print(
            f"  {case:26s} changes {changes[case]:5d}  median {statistics.median(times):.3f} s"
            f"  max {max(times):.3f} s  ({', '.join(f'{t:.3f}' for t in times)})"
        )


if __name__ == "__main__":
    asyncio.run(main())
