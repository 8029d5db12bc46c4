"""The roster drives the real lab PBX: who rings, shift boundaries, swaps, after hours, repair.

Each test gives the service its own database with its own agents (agent51..agent54) and
queues (roster-test, roster-test-leaders, lab-only: dialplan/lab/queues.conf), so that other
tests' services and calls in the shared lab never move or ring them, and a roster made for the
test; then it watches Asterisk itself (QueueStatus, the call records).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr_agent.ami import AmiClient
from ivr_agent.config import Settings
from ivr_agent.domain.roster import Agent, Role, Shift
from ivr_agent.domain.roster_changes import Swap, new_request
from ivr_agent.errors import AmiError
from ivr_agent.lab.amiprobe import RawAmi
from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from ivr_agent.store import roster as store
from ivr_agent.store import roster_ops as ops
from ivr_agent.store.db import open_db
from tests.integration.service import db_rows, lab_settings, running_service, wait_until

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
QUEUE = "roster-test"
LEADERS = "roster-test-leaders"
AGENTS = [
    Agent(f"agent{n}", f"Local/agent{n}@lab-agents/n", (QUEUE, LEADERS) if n == 54 else (QUEUE,))
    for n in (51, 52, 53, 54)
]
# Caller numbers unique to this run: the lab is shared, calls of an earlier run may linger.
_RUN = f"{random.randrange(10**4):04d}"  # noqa: S311


def _num(n: int) -> str:
    return f"133{_RUN}{n:04d}"


HOUR = 3600.0


@pytest.fixture(autouse=True)
async def _clean_test_queues(lab: LabInfo) -> None:
    """Start from empty test queues with idle test agents: earlier tests' calls may linger."""
    settings = lab_settings(lab, Path("/nonexistent.db"), seed=False)
    client = AmiClient(settings.ami, lab.ami_secret)
    await client.start()
    try:
        await client.wait_ready(10)
        status = await client.send_list({"Action": "QueueStatus"}, timeout=5)
        channels = await client.send_list({"Action": "CoreShowChannels"}, timeout=5)
        doomed = {
            f["Channel"]
            for f in status
            if f.get("Event") == "QueueEntry" and f.get("Queue") in (QUEUE, LEADERS)
        }
        doomed |= {
            f["Channel"]
            for f in channels
            if f.get("Event") == "CoreShowChannel"
            and any(f["Channel"].startswith(f"Local/{a.name}@") for a in AGENTS)
        }
        for channel in doomed:
            with contextlib.suppress(AmiError):
                await client.send({"Action": "Hangup", "Channel": channel}, timeout=5)
        for f in status:
            if f.get("Event") == "QueueMember" and f.get("Queue") in (QUEUE, LEADERS):
                action = {"Action": "QueueRemove", "Queue": f["Queue"], "Interface": f["Location"]}
                with contextlib.suppress(AmiError):
                    await client.send(action, timeout=5)
    finally:
        await client.close()


async def _roster(db: Path, shifts: Iterable[Shift]) -> list[int]:
    """The lab agents, and exactly these shifts (audited, so a running service reloads)."""
    conn = await open_db(db)
    try:
        have = await store.load_agents(conn)
        for agent in AGENTS:
            if agent.name not in have:
                await store.add_agent(conn, agent, by="test", at=time.time())
        async with store.transaction(conn):
            await conn.execute("DELETE FROM shifts")
            ids = await store.insert_shifts(conn, list(shifts), by="test", at=time.time())
            await store.append_audit(
                conn, who="test", action="shift_edited", detail={"test": True}, at=time.time()
            )
        return ids
    finally:
        await conn.close()


def _settings(lab: LabInfo, db: Path, *, reconcile_interval: float = 60.0) -> Settings:
    s = lab_settings(lab, db, seed=False)
    roster = dataclasses.replace(
        s.roster, reconcile_interval=reconcile_interval, leader_queues=(LEADERS,)
    )
    # An empty recordings folder: adopting the shared lab's thousands of files is not this
    # test's business, and it would compete for the event loop and the database.
    (db.parent / "rec").mkdir(exist_ok=True)
    hotline = dataclasses.replace(s.hotline, queues=(QUEUE,), recordings_dir=str(db.parent / "rec"))
    return dataclasses.replace(s, roster=roster, hotline=hotline)


async def _members(ami: AmiClient, queue: str = QUEUE) -> dict[str, bool]:
    """Member name -> paused, from Asterisk's QueueStatus."""
    frames = await ami.send_list({"Action": "QueueStatus", "Queue": queue}, timeout=5)
    return {f["Name"]: f.get("Paused") == "1" for f in frames if f.get("Event") == "QueueMember"}


async def _wait_members(
    ami: AmiClient, want: set[str], within: float, queue: str = QUEUE, *, ringable: bool = False
) -> float:
    """Wait until the queue's members (`ringable`: only those not paused) are exactly `want`;
    returns when (epoch seconds)."""
    deadline = time.monotonic() + within
    while True:
        members = await _members(ami, queue)
        got = {m for m, paused in members.items() if not (ringable and paused)}
        if got == want:
            return time.time()
        if time.monotonic() > deadline:
            raise AssertionError(f"{queue} members {sorted(got)}, expected {sorted(want)}")
        await asyncio.sleep(0.05)


def _called(db: Path) -> set[str]:
    """Every member of QUEUE that calls in `db` rang (AgentCalled in the timelines)."""
    with sqlite3.connect(db, timeout=5) as conn:
        rows = conn.execute("SELECT detail FROM call_events WHERE kind = 'AgentCalled'").fetchall()
    details = [json.loads(r[0]) for r in rows]
    # The service records every call in the shared lab: only this test's queue counts.
    return {d.get("member_name", "") for d in details if d.get("queue") == QUEUE}


def _answered_by(db: Path, number: str) -> list[str]:
    return [str(r["agent"]) for r in db_rows(db, "caller_number = ? AND agent != ''", (number,))]


async def test_off_duty_never_rings_and_who_comes_on_duty_gets_the_next_call(
    lab: LabInfo, ami: RawAmi, tmp_path: Path
) -> None:
    db = tmp_path / "roster.db"
    now = time.time()
    start2 = now + 6.0  # agent2's shift starts during the test
    await _roster(
        db,
        [
            Shift("agent51", now - HOUR, now + HOUR),
            Shift("agent52", start2, start2 + HOUR),
            Shift("agent53", now + 5 * HOUR, now + 6 * HOUR),  # later today: off duty now
        ],
    )
    async with running_service(_settings(lab, db)) as service:
        await _wait_members(service.ami, {"agent51"}, 5)
        assert await _members(service.ami, LEADERS) == {}
        # Busy agent1 with a long call; agent2 is not on duty yet: the next caller waits.
        await place_local_calls(
            service.ami, LocalCall("talking", _num(1), "甲", hold_s=20, queue=QUEUE)
        )
        await wait_until(lambda: bool(_answered_by(db, _num(1))), 10, "agent1 answers")
        await place_local_calls(
            service.ami, LocalCall("talking", _num(2), "乙", hold_s=4, queue=QUEUE)
        )
        added = await _wait_members(service.ami, {"agent51", "agent52"}, start2 - time.time() + 5)
        assert added - start2 < 1.0, f"agent2 added {added - start2:.2f} s after the boundary"
        assert added >= start2 - 0.05
        await wait_until(lambda: bool(_answered_by(db, _num(2))), 10, "agent2 answers")
    assert _answered_by(db, _num(1)) == ["agent51"]
    assert _answered_by(db, _num(2)) == ["agent52"]
    assert _called(db) <= {"agent51", "agent52"}  # agent3/agent4 (off duty) never rang


async def test_shift_end_during_a_call_waits_for_it_then_after_hours_takes_a_callback(
    lab: LabInfo, ami: RawAmi, tmp_path: Path
) -> None:
    db = tmp_path / "roster.db"
    now = time.time()
    end = now + 5.0
    await _roster(db, [Shift("agent51", now - HOUR, end)])
    async with running_service(_settings(lab, db)) as service:
        await _wait_members(service.ami, {"agent51"}, 5, ringable=True)
        await place_local_calls(
            service.ami, LocalCall("talking", _num(11), "丙", hold_s=9, queue=QUEUE)
        )
        await wait_until(lambda: bool(_answered_by(db, _num(11))), 10, "agent1 answers")
        # The shift ends mid-call: agent1 is paused at once (no new call), the call goes on.
        await asyncio.sleep(max(0.0, end - time.time()) + 1.0)
        assert await _members(service.ami) == {"agent51": True}
        assert not db_rows(db, "caller_number = ? AND ended_at IS NOT NULL", (_num(11),))
        await wait_until(
            lambda: bool(db_rows(db, "caller_number = ? AND ended_at IS NOT NULL", (_num(11),))),
            15,
            "the call to end by itself",
        )
        await _wait_members(service.ami, set(), 5)  # removed once the call is over
        # Nobody on duty now: after-hours prompt, press 1, a callback request is stored.
        await place_local_calls(
            service.ami, LocalCall("callback", _num(12), "丁", hold_s=12, queue=QUEUE)
        )
        await wait_until(
            lambda: bool(db_rows(db, "caller_number = ? AND ended_at IS NOT NULL", (_num(12),))),
            30,
            "the after-hours call to end",
        )
    (call,) = db_rows(db, "caller_number = ?", (_num(11),))
    assert call["disposition"] == "answered"
    assert float(str(call["talk_time"])) >= 7.0  # not cut at the shift's end
    (after,) = db_rows(db, "caller_number = ?", (_num(12),))
    assert after["disposition"] == "after_hours"
    assert after["agent"] == ""
    with sqlite3.connect(db, timeout=5) as conn:
        cbs = conn.execute(
            "SELECT call_id, caller_number, reason, status FROM callbacks"
        ).fetchall()
        audit = [r[0] for r in conn.execute("SELECT action FROM roster_audit ORDER BY id")]
    assert cbs == [(after["call_id"], _num(12), "after_hours", "open")]
    assert "queue_member_paused" in audit
    assert audit.index("queue_member_paused") < audit.index("queue_member_removed")


async def test_only_an_approved_swap_changes_routing(
    lab: LabInfo, ami: RawAmi, tmp_path: Path
) -> None:
    db = tmp_path / "roster.db"
    now = time.time()
    a, _, b = await _roster(
        db,
        [
            Shift("agent51", now - HOUR, now + HOUR),
            Shift("agent54", now - HOUR, now + HOUR, Role.LEADER),
            Shift("agent52", now + 20 * HOUR, now + 21 * HOUR),
        ],
    )
    async with running_service(_settings(lab, db)) as service:
        await _wait_members(service.ami, {"agent51", "agent54"}, 5)
        conn = await open_db(db)
        try:
            req = new_request("agent51", Swap(a, b), "家里有事", time.time())
            stored, _ = await ops.request_change(conn, req, TZ, leader_gap="warning")
            await asyncio.sleep(2.5)  # pending: routing must not change
            assert set(await _members(service.ami)) == {"agent51", "agent54"}
            assert stored.id is not None
            await ops.decide_change(
                conn,
                stored.id,
                TZ,
                approve=True,
                by="supervisor",
                at=time.time(),
                leader_gap="warning",
            )
        finally:
            await conn.close()
        await _wait_members(service.ami, {"agent52", "agent54"}, 3)
        await place_local_calls(
            service.ami, LocalCall("talking", _num(21), "戊", hold_s=3, queue=QUEUE)
        )
        await wait_until(lambda: bool(_answered_by(db, _num(21))), 10, "a call answered")
    assert _answered_by(db, _num(21))[0] in {"agent52", "agent54"}
    assert "agent51" not in _called(db)


async def test_reconcile_repairs_a_hand_edited_queue(
    lab: LabInfo, ami: RawAmi, tmp_path: Path
) -> None:
    db = tmp_path / "roster.db"
    now = time.time()
    await _roster(
        db,
        [
            Shift("agent51", now - HOUR, now + HOUR),
            Shift("agent52", now - HOUR, now + HOUR),
            Shift("agent54", now - HOUR, now + HOUR, Role.LEADER),
        ],
    )
    async with running_service(_settings(lab, db, reconcile_interval=1.0)) as service:
        await _wait_members(service.ami, {"agent51", "agent52", "agent54"}, 5)
        # An operator edits the queue by hand: removes agent2, adds an unknown interface.
        for action in (
            {"Action": "QueueRemove", "Queue": QUEUE, "Interface": "Local/agent52@lab-agents/n"},
            {
                "Action": "QueueAdd",
                "Queue": QUEUE,
                "Interface": "Local/agent59@lab-agents/n",
                "MemberName": "agent59",
            },
        ):
            reply = await ami.action(action)
            assert reply.get("Response") == "Success", reply
        await _wait_members(service.ami, {"agent51", "agent52", "agent54"}, 4)
        assert service.rostering is not None
        assert service.rostering.is_open is True
    with sqlite3.connect(db, timeout=5) as conn:
        rows = conn.execute(
            "SELECT action, detail FROM roster_audit WHERE action LIKE 'queue_member_%'"
        ).fetchall()
    repaired = {(a, json.loads(d)["interface"]) for a, d in rows}
    assert ("queue_member_added", "Local/agent52@lab-agents/n") in repaired
    assert ("queue_member_removed", "Local/agent59@lab-agents/n") in repaired
