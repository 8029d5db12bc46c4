"""Hotline misuse in the real lab: an agent's line calling a number that never called the hotline
raises a `private_call` alert (stored, in the supervisors' API); calling a caller back does not.

The agent's line places the call the way a PBX's click-to-dial does (dialplan/lab/extensions.conf
[lab-agent-dialout]): Originate rings the agent's own interface (Local/agent51@lab-agents/n, the
line the roster knows), and once the agent's phone answers, that line dials the number.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from ivr_agent.ami import AmiClient
from ivr_agent.domain.roster import Shift
from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from ivr_agent.store import users
from ivr_agent.store.txn import Db
from ivr_agent.web.passwords import hash_password
from tests.integration.service import db_rows, running_service, wait_until
from tests.integration.test_roster_pbx import (  # the autouse fixture cleans the test queues
    QUEUE,
    _clean_test_queues,  # noqa: F401
    _roster,
    _settings,
    _wait_members,
)

pytestmark = pytest.mark.integration

HOUR = 3600.0
PASSWORD = "lab supervisor 密码"
_RUN = f"{random.randrange(10**4):04d}"  # noqa: S311  # numbers unique to this run


async def _agent_dials(ami: AmiClient, agent: str, number: str) -> None:
    """`agent`'s line calls `number` (click-to-dial); the agent hangs up after ~4 s."""
    reply = await ami.send(
        {
            "Action": "Originate",
            "Channel": f"Local/{agent}@lab-agents/n",
            "Context": "lab-agent-dialout",
            "Exten": number,
            "Priority": "1",
            "CallerID": f'"{agent}" <{agent}>',
            "Variable": "AGENT_HOLD_OVR=4,PSTN_HOLD=10",
            "Timeout": "10000",
            "Async": "true",
        },
        timeout=5,
    )
    assert reply.get("Response") == "Success", reply


def _dial_calls(db: Path, number: str) -> list[str]:
    """Calls in whose timeline a channel dialed `number` (DialBegin with that extension)."""
    with sqlite3.connect(db, timeout=5) as conn:
        rows = conn.execute(
            "SELECT call_id, detail FROM call_events WHERE kind = 'DialBegin'"
        ).fetchall()
    return sorted({cid for cid, d in rows if json.loads(d).get("exten") == number})


def _alerts(db: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(db, timeout=5) as conn:
        return conn.execute(
            "SELECT kind, call_id, agent, detail FROM alerts ORDER BY id"
        ).fetchall()


async def test_an_agent_line_calling_a_stranger_alerts_calling_a_caller_back_does_not(
    lab: LabInfo, tmp_path: Path
) -> None:
    db = tmp_path / "misuse.db"
    now = time.time()
    await _roster(db, [Shift("agent51", now - HOUR, now + HOUR)])
    udb = await Db.open(db)
    try:
        await users.add_user(udb, "值班主管", users.Role.SUPERVISOR, hash_password(PASSWORD), now)
    finally:
        await udb.close()
    caller = f"135{_RUN}0001"  # calls the hotline first
    stranger = f"139{_RUN}0002"  # never did
    async with running_service(_settings(lab, db)) as service:
        rostering = service.rostering
        assert rostering is not None
        await _wait_members(service.ami, {"agent51"}, 5)  # the roster (and its lines) loaded
        await place_local_calls(
            service.ami, LocalCall("talking", caller, "甲", hold_s=2, queue=QUEUE)
        )
        await wait_until(
            lambda: bool(db_rows(db, "caller_number = ? AND ended_at IS NOT NULL", (caller,))),
            20,
            "the hotline call to end",
        )

        await _agent_dials(service.ami, "agent51", stranger)
        await wait_until(lambda: bool(_alerts(db)), 15, "the private_call alert")
        await _agent_dials(service.ami, "agent51", caller)  # a call back: work, not private
        await wait_until(lambda: rostering.alerts.looked_up >= 2, 15, "the call back looked up")

        assert service.web is not None
        async with httpx.AsyncClient(base_url=service.web.url) as web:
            r = await web.post("/api/login", json={"name": "值班主管", "password": PASSWORD})
            assert r.status_code == 200, r.text
            listed = (await web.get("/api/roster/alerts", params={"open": "true"})).json()
        # The agent's calls out end as what they are: not hotline calls (not "abandoned"),
        # and no recording is expected of them.
        await wait_until(
            lambda: len(db_rows(db, "caller_number = 'agent51' AND ended_at IS NOT NULL")) == 2,
            40,
            "the agent's two calls out to end",
        )
    (private_call,) = _dial_calls(db, stranger)
    (call_back,) = _dial_calls(db, caller)
    mask = f"139****{stranger[-4:]}"
    assert _alerts(db) == [
        ("private_call", private_call, "agent51", f"agent51 called {mask}, not a hotline caller")
    ]
    assert call_back != private_call
    (shown,) = listed["alerts"]
    assert (shown["kind"], shown["call_id"], shown["agent"]) == (
        "private_call",
        private_call,
        "agent51",
    )
    assert stranger not in shown["detail"]
    assert shown["acknowledged_by"] is None
    # The private call was placed from the agent's own line (the roster's interface).
    (placed,) = db_rows(db, "call_id = ?", (private_call,))
    assert str(placed["caller_number"]) == "agent51"
    outbound = db_rows(db, "caller_number = 'agent51'")
    assert {str(r["disposition"]) for r in outbound} == {"not_hotline"}
    (hotline_call,) = db_rows(db, "caller_number = ?", (caller,))
    assert hotline_call["disposition"] == "answered"
