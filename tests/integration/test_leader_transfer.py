"""The shift leader button in the real lab: a caller talking to an agent is transferred to the
on-duty shift leader (agent4) through the `leaders` queue; with no leader on duty, a clear 409
and the caller stays with the agent.

The agent presses the button through the service's web API (POST /api/calls/current/leader),
signed in as themself. What happened is read from what the service recorded from AMI (the call's
timeline and record) and from Asterisk's QueueStatus.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ivr_agent.ami import AmiClient
from ivr_agent.domain.roster import Agent, Role, Shift
from ivr_agent.errors import AmiError
from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from ivr_agent.store import roster as store
from ivr_agent.store import users
from ivr_agent.store.db import parse_utc_text
from ivr_agent.store.txn import Db
from ivr_agent.web.passwords import hash_password
from tests.integration.service import db_rows, lab_settings, running_service, wait_until
from tests.integration.test_roster_pbx import (  # the autouse fixture cleans the test queues
    QUEUE,
    _clean_test_queues,  # noqa: F401
    _members,
    _roster,
    _settings,
    _wait_members,
)

pytestmark = pytest.mark.integration

HOUR = 3600.0
LEADERS = "leaders"  # the queue [ivr-agent-leader] sends the caller to
LEADER = Agent("agent4", "Local/agent4@lab-agents/n", (LEADERS,))
PASSWORD = "lab agent 密码"
_RUN = f"{random.randrange(10**4):04d}"  # noqa: S311  # numbers unique to this run


@pytest.fixture
async def leaders_queue(lab: LabInfo) -> AsyncIterator[None]:
    """The shared `leaders` queue with no waiting caller and agent4 idle; its members are put
    back as they were after the test."""
    settings = lab_settings(lab, Path("/nonexistent.db"), seed=False)
    client = AmiClient(settings.ami, lab.ami_secret)
    await client.start()
    try:
        await client.wait_ready(10)
        status = await client.send_list({"Action": "QueueStatus", "Queue": LEADERS}, timeout=5)
        channels = await client.send_list({"Action": "CoreShowChannels"}, timeout=5)
        before = {f["Location"]: f["Name"] for f in status if f.get("Event") == "QueueMember"}
        doomed = {f["Channel"] for f in status if f.get("Event") == "QueueEntry"}
        doomed |= {
            f["Channel"]
            for f in channels
            if f.get("Event") == "CoreShowChannel" and f["Channel"].startswith("Local/agent4@")
        }
        for channel in doomed:
            with contextlib.suppress(AmiError):
                await client.send({"Action": "Hangup", "Channel": channel}, timeout=5)
        yield
        status = await client.send_list({"Action": "QueueStatus", "Queue": LEADERS}, timeout=5)
        after = {f["Location"] for f in status if f.get("Event") == "QueueMember"}
        for iface in after - before.keys():
            with contextlib.suppress(AmiError):
                action = {"Action": "QueueRemove", "Queue": LEADERS, "Interface": iface}
                await client.send(action, timeout=5)
        for iface in before.keys() - after:
            with contextlib.suppress(AmiError):
                action = {
                    "Action": "QueueAdd",
                    "Queue": LEADERS,
                    "Interface": iface,
                    "MemberName": before[iface],
                }
                await client.send(action, timeout=5)
    finally:
        await client.close()


def _timeline(db: Path, call_id: str) -> list[tuple[float, str, dict[str, Any]]]:
    with sqlite3.connect(db, timeout=5) as conn:
        rows = conn.execute(
            "SELECT at, kind, detail FROM call_events WHERE call_id = ? ORDER BY id", (call_id,)
        ).fetchall()
    return [(parse_utc_text(at), kind, json.loads(detail)) for at, kind, detail in rows]


async def test_the_leader_button_transfers_the_caller_to_the_leader_on_duty(
    lab: LabInfo, tmp_path: Path, leaders_queue: None
) -> None:
    db = tmp_path / "leader.db"
    now = time.time()
    await _roster(db, [Shift("agent51", now - HOUR, now + HOUR)])  # no leader on duty yet
    udb = await Db.open(db)
    try:
        await store.add_agent(udb.conn, LEADER, by="test", at=now)
        await users.add_user(
            udb, "agent51", users.Role.AGENT, hash_password(PASSWORD), now, agent="agent51"
        )
    finally:
        await udb.close()
    s = _settings(lab, db)
    settings = dataclasses.replace(
        s, roster=dataclasses.replace(s.roster, leader_queues=(LEADERS,))
    )
    caller = f"137{_RUN}0001"
    async with running_service(settings) as service:
        await _wait_members(service.ami, {"agent51"}, 5)
        await _wait_members(service.ami, set(), 5, LEADERS)  # nobody leads: agent4 not there
        await place_local_calls(
            service.ami, LocalCall("talking", caller, "刁难", hold_s=60, queue=QUEUE)
        )
        await wait_until(
            lambda: bool(db_rows(db, "caller_number = ? AND agent = 'agent51'", (caller,))),
            10,
            "agent51 answers",
        )
        (row,) = db_rows(db, "caller_number = ?", (caller,))
        call_id = str(row["call_id"])
        assert service.web is not None
        async with httpx.AsyncClient(base_url=service.web.url) as web:
            r = await web.post("/api/login", json={"name": "agent51", "password": PASSWORD})
            assert r.status_code == 200, r.text

            # No shift leader on duty: a clear error, and the caller stays with the agent.
            r = await web.post("/api/calls/current/leader")
            assert r.status_code == 409, r.text
            assert r.json() == {
                "error": "no_leader_on_duty",
                "message": "no shift leader is on duty now",
            }
            assert service.current_call("agent51") == call_id

            # agent4 comes on duty as shift leader: the service puts them in `leaders`.
            conn = await Db.open(db)
            try:
                async with store.transaction(conn.conn):
                    t = time.time()
                    await store.insert_shifts(
                        conn.conn, [Shift("agent4", t - 60, t + HOUR, Role.LEADER)], by="t", at=t
                    )
                    await store.append_audit(
                        conn.conn, who="test", action="shift_edited", detail={}, at=t
                    )
            finally:
                await conn.close()
            await _wait_members(service.ami, {"agent4"}, 5, LEADERS)

            pressed = time.time()
            r = await web.post("/api/calls/current/leader")
            assert r.status_code == 200, r.text
            assert r.json() == {"call_id": call_id, "leader": "agent4", "mode": "transfer"}
        await wait_until(
            lambda: bool(db_rows(db, "call_id = ? AND agent = 'agent4'", (call_id,))),
            15,
            "the shift leader answers the transferred caller",
        )
        assert service.current_call("agent4") == call_id
        assert service.current_call("agent51") is None
        members = await _members(service.ami, LEADERS)
        assert members == {"agent4": False}
        # Done: the caller hangs up.
        book = service.book.get(call_id)
        assert book is not None
        await service.ami.send({"Action": "Hangup", "Channel": book.caller_channel}, timeout=5)
        await wait_until(
            lambda: bool(db_rows(db, "call_id = ? AND ended_at IS NOT NULL", (call_id,))),
            10,
            "the call to end",
        )

    timeline = _timeline(db, call_id)
    joins = [(at, d["queue"]) for at, k, d in timeline if k == "QueueCallerJoin"]
    assert [q for _, q in joins] == [QUEUE, LEADERS]
    assert joins[1][0] >= pressed - 0.5  # the caller joined `leaders` after the button
    connects = [(at, d["member_name"], d["queue"]) for at, k, d in timeline if k == "AgentConnect"]
    assert [(m, q) for _, m, q in connects] == [("agent51", QUEUE), ("agent4", LEADERS)]
    # A transfer: the agent's leg is released at once (not when agent51 would hang up).
    agent_gone = [
        at
        for at, k, d in timeline
        if k == "Hangup" and str(d.get("channel", "")).startswith("Local/agent51@lab-agents")
    ]
    assert agent_gone
    assert min(agent_gone) - pressed < 3.0
    (ended,) = db_rows(db, "call_id = ?", (call_id,))
    assert ended["agent"] == "agent4"
    assert ended["disposition"] == "answered"
