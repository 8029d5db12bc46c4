"""Silent line in the real lab: accuracy over mixed calls and reaction time.

    sudo .venv/bin/python bench/silent_line.py [--calls 200] [--rate 5] [--sip 20]

Runs the service in-process against the lab PBX (roster off, 150 bench agents added to the queue
for the run and removed after), places N calls: half silent, half talking, `--sip` of them over
the SIP trunk with SIPp (real RTP: speech or silence), the rest as Local channels. Reports:
  * silent calls that got the prompt (goal 100 %), talking calls that got it (goal 0);
  * reaction: Redirect success time minus the end of the silence window (which starts at the
    AgentConnect event), p50/p99 in ms (goal: p99 <= 300 ms).
Exits 1 if a correctness goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr_agent import logs
from ivr_agent.config import load_settings
from ivr_agent.errors import AmiActionFailed
from ivr_agent.lab import sipp
from ivr_agent.lab.pbx import Lab, default_lab_dir
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from tests.integration.service import db_rows, running_service, wait_until

AGENTS = 150


async def main(calls: int, rate: float, sip_calls: int) -> int:
    lab = Lab(default_lab_dir())
    info = lab.info()
    tmp = Path(tempfile.mkdtemp(prefix="bench-silent-"))
    base = load_settings(info.config_path)
    settings = dataclasses.replace(
        base,
        storage=dataclasses.replace(base.storage, database=str(tmp / "calls.db")),
        roster=dataclasses.replace(base.roster, enabled=False),
        web=dataclasses.replace(base.web, enabled=False),
    )
    logs.configure(level="warning")
    rng = random.Random(7)
    plan = [("silent" if i % 2 else "talking", i < sip_calls) for i in range(calls)]
    rng.shuffle(plan)
    kind_of: dict[str, str] = {}
    async with running_service(settings) as service:
        ami = service.ami
        for n in range(AGENTS):
            await ami.send(
                {"Action": "QueueAdd", "Queue": "support",
                 "Interface": f"Local/agentB{n}@lab-agents/n", "MemberName": f"agentB{n}"}
            )  # fmt: skip
        try:
            started = time.monotonic()
            sip_tasks = []
            for i, (kind, via_sip) in enumerate(plan):
                number = f"1370000{i:04d}"
                kind_of[number] = kind
                hold = 30.0 if kind == "silent" else 14.0
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if via_sip:
                    sip_tasks.append(
                        asyncio.create_task(
                            sipp.place_sip_calls(
                                info.lab_dir,
                                kind,
                                caller_number=number,
                                caller_name="测试",
                                hold_s=hold,
                            )
                        )
                    )
                else:
                    await place_local_calls(ami, LocalCall(kind, number, "测试", hold_s=hold))
            await wait_until(
                lambda: len(db_rows(Path(settings.storage.database),
                                    "caller_number LIKE '1370000%' AND ended_at IS NOT NULL"))
                >= calls,
                120, "all calls ended",
            )  # fmt: skip
            await asyncio.gather(*sip_tasks, return_exceptions=True)
            history = list(service.silent_line.history) if service.silent_line else []
        finally:
            for n in range(AGENTS):
                with contextlib.suppress(AmiActionFailed):  # already gone: fine
                    await ami.send(
                        {"Action": "QueueRemove", "Queue": "support",
                         "Interface": f"Local/agentB{n}@lab-agents/n"}
                    )  # fmt: skip
    rows = db_rows(Path(settings.storage.database), "caller_number LIKE '1370000%'")
    by_id = {str(r["call_id"]): str(r["caller_number"]) for r in rows}
    prompted = {by_id[t.call_id] for t in history if t.ok and t.call_id in by_id}
    silent = {n for n, k in kind_of.items() if k == "silent"}
    talking = set(kind_of) - silent
    late = sorted(
        (t.redirected_at - t.window_end) * 1000
        for t in history
        if t.ok and t.window_end is not None and t.call_id in by_id
    )
    p50 = statistics.median(late) if late else float("nan")
    p99 = late[min(len(late) - 1, round(0.99 * (len(late) - 1)))] if late else float("nan")
    print(f"calls={calls} (sip={sip_calls}) rate={rate}/s agents={AGENTS}")
    print(f"silent prompted: {len(prompted & silent)}/{len(silent)}")
    print(f"talking prompted: {len(prompted & talking)}/{len(talking)}")
    print(f"reaction after window end: p50={p50:.1f} ms p99={p99:.1f} ms max={late[-1]:.1f} ms")
    disp = {str(r["caller_number"]): str(r["disposition"]) for r in rows}
    heard = {n for n in silent if disp.get(n) == "silent_line"}
    print(f"silent calls ended as silent_line (the prompt played): {len(heard)}/{len(silent)}")
    print(
        f"talking calls ended as silent_line: {sum(disp.get(n) == 'silent_line' for n in talking)}"
    )
    failures = [t.error for t in history if not t.ok and t.call_id in by_id]
    if failures:
        print(f"redirects that reported an error: {len(failures)}, e.g. {failures[:3]}")
    ok = heard == silent and not (prompted & talking) and len(rows) == calls
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--sip", type=int, default=20)
    a = parser.parse_args()
    sys.exit(asyncio.run(main(a.calls, a.rate, a.sip)))
