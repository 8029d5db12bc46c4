"""The roster API: on duty, the shift leader button (409 without a leader), requests, decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from ivr_agent.domain.roster import Agent, Role, Shift
from ivr_agent.rostering import Rostering
from ivr_agent.store import roster as store
from ivr_agent.store.alerts import Alert, raise_alert
from tests.web.conftest import Site

HOUR = 3600.0


class FakeAmi:
    def __init__(self) -> None:
        self.sent: list[Mapping[str, str]] = []

    async def send(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,
    ) -> Mapping[str, str]:
        self.sent.append(dict(action))
        return {"Response": "Success"}

    async def send_list(
        self,
        action: Mapping[str, str],
        *,
        timeout: float | None = None,
    ) -> Sequence[Mapping[str, str]]:
        return []


async def _setup(site: Site, tmp_path: Path, *, leader: bool) -> tuple[FakeAmi, list[int]]:
    db_path = str(tmp_path / "web.db")
    settings = site.deps.settings
    site.deps.settings = dataclasses.replace(
        settings, storage=dataclasses.replace(settings.storage, database=db_path)
    )
    now = time.time()
    conn = site.db.conn
    for n, queues in ((1, ("support",)), (2, ("support",)), (4, ("support", "leaders"))):
        agent = Agent(f"agent{n}", f"Local/agent{n}@lab-agents/n", queues)
        await store.add_agent(conn, agent, by="test", at=now)
    shifts = [
        Shift("agent1", now - HOUR, now + HOUR),
        Shift("agent2", now + 20 * HOUR, now + 21 * HOUR),
    ]
    if leader:
        shifts.append(Shift("agent4", now - HOUR, now + HOUR, Role.LEADER))
    async with store.transaction(conn):
        ids = await store.insert_shifts(conn, shifts, by="test", at=now)
    ami = FakeAmi()
    site.deps.roster = Rostering(ami, site.db, queues=("support",))
    site.deps.caller_channel = lambda _cid: "Local/s@lab-caller-talking-0001;1"
    return ami, ids


async def test_leader_button_transfers_the_caller(
    site: Site, tmp_path: Path, agent: httpx.AsyncClient
) -> None:
    ami, _ = await _setup(site, tmp_path, leader=True)
    site.live["agent1"] = "1795000000.1"
    r = await agent.post("/api/calls/current/leader")
    assert r.status_code == 200, r.text
    assert r.json() == {"call_id": "1795000000.1", "leader": "agent4", "mode": "transfer"}
    (redirect,) = ami.sent
    assert redirect["Action"] == "Redirect"
    assert redirect["Context"] == "ivr-agent-leader"
    assert redirect["Channel"] == "Local/s@lab-caller-talking-0001;1"


async def test_leader_button_without_a_leader_is_409(
    site: Site, tmp_path: Path, agent: httpx.AsyncClient
) -> None:
    ami, _ = await _setup(site, tmp_path, leader=False)
    site.live["agent1"] = "1795000000.1"
    r = await agent.post("/api/calls/current/leader")
    assert r.status_code == 409
    assert r.json()["error"] == "no_leader_on_duty"
    assert ami.sent == []
    site.live.clear()
    assert (await agent.post("/api/calls/current/leader")).status_code == 404


async def test_on_duty_alerts_and_an_approved_swap(
    site: Site, tmp_path: Path, agent: httpx.AsyncClient, supervisor: httpx.AsyncClient
) -> None:
    _, (mine, other, _) = await _setup(site, tmp_path, leader=True)
    r = await supervisor.get("/api/roster/onduty")
    assert r.status_code == 200
    assert {a["agent"] for a in r.json()["agents"]} == {"agent1", "agent4"}
    assert r.json()["leader"] == "agent4"
    await raise_alert(site.db, Alert("long_call", "1795000000.9", "agent1", 1.0, "1900 s"))
    alerts = (await supervisor.get("/api/roster/alerts")).json()["alerts"]
    assert alerts[0]["call_id"] == "1795000000.9"
    assert (await agent.get("/api/roster/alerts")).status_code == 403

    body = {"kind": "swap", "payload": {"shift": mine, "other": other}, "reason": "家里有事"}
    r = await agent.post("/api/roster/requests", json=body)
    assert r.status_code == 409  # agent1 alone on agent2's shift: no leader then
    assert "no shift leader" in r.json()["message"]
    settings = site.deps.settings
    site.deps.settings = dataclasses.replace(
        settings, roster=dataclasses.replace(settings.roster, leader_gap="warning")
    )
    r = await agent.post("/api/roster/requests", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["warnings"]
    change = r.json()["id"]
    assert r.json()["status"] == "pending"
    assert (await agent.post(f"/api/roster/requests/{change}/approve", json={})).status_code == 403
    r = await supervisor.post(f"/api/roster/requests/{change}/approve", json={"note": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    r = await supervisor.get("/api/roster/onduty")
    assert {a["agent"] for a in r.json()["agents"]} == {"agent2", "agent4"}
    again = await supervisor.post(f"/api/roster/requests/{change}/reject", json={})
    assert again.status_code == 409
    assert (await supervisor.post("/api/roster/requests/999/approve", json={})).status_code == 404
    bad = await agent.post("/api/roster/requests", json={**body, "payload": {"shift": "x"}})
    assert bad.status_code == 400


async def test_requests_list_by_status_with_the_console_contract(
    site: Site, tmp_path: Path, agent: httpx.AsyncClient, supervisor: httpx.AsyncClient
) -> None:
    _, (mine, _other, _) = await _setup(site, tmp_path, leader=True)
    start = time.time() + 600  # within agent4's leader shift
    moved = {"shift": mine, "end": iso(start)}
    first = {
        "kind": "change",
        "payload": {
            "shift": None,
            "agent": "agent2",
            "start": iso(start),
            "end": iso(start + 1800),
        },
        "reason": "加班",
    }
    r1 = await agent.post("/api/roster/requests", json=first)
    assert r1.status_code == 201, r1.text
    second = {"kind": "change", "payload": moved, "reason": "早退"}
    r2 = await agent.post("/api/roster/requests", json=second)
    assert r2.status_code == 201, r2.text
    assert (await agent.get("/api/roster/requests")).status_code == 403

    pending = (await supervisor.get("/api/roster/requests")).json()
    assert list(pending) == ["requests", "shifts"]
    # The shift the second request moves, so that the console says whose and when.
    assert list(pending["shifts"]) == [str(mine)]
    named = pending["shifts"][str(mine)]
    assert named["agent"] == "agent1"
    assert dt.datetime.fromisoformat(named["start"]).utcoffset() == dt.timedelta(0)
    assert [r["id"] for r in pending["requests"]] == [r2.json()["id"], r1.json()["id"]]
    newest = pending["requests"][0]
    assert set(newest) == {
        "id",
        "kind",
        "payload",
        "reason",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_note",
    }
    assert newest["kind"] == "change"
    assert newest["payload"] == r2.json()["payload"]  # the shape the POST takes
    assert newest["status"] == "pending"
    assert newest["requested_by"] == "agent1"
    assert newest["decided_by"] is None
    assert newest["decided_at"] is None
    assert newest["decision_note"] == ""
    at = dt.datetime.fromisoformat(newest["requested_at"])
    assert at.utcoffset() == dt.timedelta(0)
    assert abs(at.timestamp() - time.time()) < 60

    r = await supervisor.post(
        f"/api/roster/requests/{r1.json()['id']}/reject", json={"note": "不行"}
    )
    assert r.status_code == 200, r.text
    rejected = (await supervisor.get("/api/roster/requests?status=rejected")).json()["requests"]
    assert [r["id"] for r in rejected] == [r1.json()["id"]]
    assert rejected[0]["decided_by"] == "李主管"
    assert rejected[0]["decision_note"] == "不行"
    assert dt.datetime.fromisoformat(rejected[0]["decided_at"]).utcoffset() == dt.timedelta(0)
    assert [r["id"] for r in (await supervisor.get("/api/roster/requests")).json()["requests"]] == [
        r2.json()["id"]
    ]
    approved = (await supervisor.get("/api/roster/requests?status=approved")).json()
    assert approved == {"requests": [], "shifts": {}}
    bad = await supervisor.get("/api/roster/requests?status=maybe")
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_request"


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


async def test_alerts_are_listed_newest_first_and_acknowledged_once(
    site: Site, tmp_path: Path, agent: httpx.AsyncClient, supervisor: httpx.AsyncClient
) -> None:
    await _setup(site, tmp_path, leader=True)
    now = time.time()
    old = await raise_alert(
        site.db, Alert("long_call", "1795000000.7", "agent1", now - 60, "1900 s")
    )
    new = await raise_alert(
        site.db,
        Alert("private_call", "1795000000.8", "agent2", now, "agent2 called 139****5678, ..."),
    )
    assert old is not None
    assert new is not None
    r = await supervisor.get("/api/roster/alerts")
    assert r.status_code == 200
    listed = r.json()["alerts"]
    assert [a["id"] for a in listed] == [new.id, old.id]
    assert listed[0] == {
        "id": new.id,
        "kind": "private_call",
        "call_id": "1795000000.8",
        "agent": "agent2",
        "at": pytest.approx(now),
        "detail": "agent2 called 139****5678, ...",
        "acknowledged_by": None,
        "acknowledged_at": None,
    }
    assert (await agent.post(f"/api/roster/alerts/{old.id}/ack", json={})).status_code == 403
    r = await supervisor.post(f"/api/roster/alerts/{old.id}/ack", json={"note": "已提醒"})
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_by"] == "李主管"
    assert r.json()["acknowledged_at"] == pytest.approx(time.time(), abs=5)
    again = await supervisor.post(f"/api/roster/alerts/{old.id}/ack", json={})
    assert again.status_code == 409
    assert (await supervisor.post("/api/roster/alerts/999/ack", json={})).status_code == 404
    open_ = (await supervisor.get("/api/roster/alerts?open=true")).json()["alerts"]
    assert [a["id"] for a in open_] == [new.id]
    everything = (await supervisor.get("/api/roster/alerts")).json()["alerts"]
    assert everything[1]["acknowledged_by"] == "李主管"
    (entry,) = [e for e in await store.list_audit(site.db.conn) if e.action == "alert_acknowledged"]
    assert entry.who == "李主管"
    assert entry.detail == {
        "id": old.id,
        "kind": "long_call",
        "call_id": "1795000000.7",
        "agent": "agent1",
        "note": "已提醒",
    }
