"""The desk over HTTP and WebSocket (Starlette's TestClient on the app's own loop): pops reach
only their agent, bad input gets clear errors, every agent endpoint refuses other callers."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
import warnings
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest
from starlette.websockets import WebSocketDisconnect

from ivr_agent.config import load_settings
from ivr_agent.desk import Desk
from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.events import AgentCalled, AgentConnect
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store import users
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.passwords import hash_password

with warnings.catch_warnings():
    # Starlette asks for `httpx2` (not installed here); its TestClient works with httpx.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"
CALLER = "13912345678"
CID = "1795000000.77"


@dataclass
class DeskSite:
    portal: anyio.from_thread.BlockingPortal
    app: Any
    desk: Desk
    db: Db
    path: Path

    def client(self, name: str | None = None) -> TestClient:
        client = TestClient(self.app)
        client.portal = self.portal  # the app's loop: where the Db and the desk live
        if name:
            r = client.post("/api/login", json={"name": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
        return client

    def ring(self, agent: str, state: CallState = CallState.AGENT_RINGING) -> None:
        now = time.time()
        call = Call(
            call_id=CID, state=state, started_at=now, updated_at=now, caller_number=CALLER,
            caller_name="张伟", agent=agent if state is CallState.CONNECTED else "",
        )  # fmt: skip
        base = {"at": now, "uniqueid": CID, "linkedid": CID, "dest_uniqueid": "d",
                "dest_linkedid": CID, "queue": "support", "member_name": agent}  # fmt: skip
        if state is CallState.CONNECTED:
            change = CallChange(call, CallState.AGENT_RINGING, state, False, AgentConnect(**base))
        else:
            change = CallChange(call, CallState.QUEUED, state, False, AgentCalled(**base))
        self.portal.call(self.desk.observe, change)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path)) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    settings = load_settings(None, env={"IVR_AGENT_WEB_SESSION_KEY": "k" * 32})
    with anyio.from_thread.start_blocking_portal() as portal:
        db = portal.call(Db.open, tmp_path / "desk.db")
        hashed = hash_password(PASSWORD, n=2**10)
        now = time.time()
        for name, role in (("agent1", "agent"), ("agent2", "agent"), ("boss", "supervisor")):
            portal.call(users.add_user, db, name, users.Role(role), hashed, now)
        desk = Desk()
        desk.db = db
        task = portal.start_task_soon(desk.run)
        deps = WebDeps(db=db, root=RecordingsRoot(tmp_path), settings=settings, desk=desk)
        yield DeskSite(portal, create_app(deps), desk, db, tmp_path / "desk.db")
        task.cancel()
        portal.call(db.close)


def _next_pop(ws: Any, *, complete: bool = False) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.receive_text())
        if frame["type"] == "pop" and (frame["complete"] or not complete):
            return dict(frame)


def test_pop_reaches_only_the_ringing_agent(site: DeskSite) -> None:
    with (
        site.client("agent1").websocket_connect("/ws/agent") as ws1,
        site.client("agent2").websocket_connect("/ws/agent") as ws2,
    ):
        assert json.loads(ws1.receive_text())["type"] == "hello"
        assert json.loads(ws2.receive_text())["type"] == "hello"
        site.ring("agent1")
        pop = _next_pop(ws1)
        assert pop["kind"] == "ringing"
        assert not pop["complete"]  # at once, before any database read
        assert _next_pop(ws1)["complete"]
        assert pop["call"]["caller_name"] == "张伟"
        assert pop["phrases"]["phase"][0]["text"] == "您好!请问有什么可以帮到您?"
        ws2.send_text(json.dumps({"type": "ping"}))
        assert json.loads(ws2.receive_text())["type"] == "pong"  # and no pop before it
        assert CALLER not in json.dumps(site.desk.hub._kept.get("agent2", []))


def test_ws_needs_an_agent_session(site: DeskSite) -> None:
    for client, code in ((site.client(), 4401), (site.client("boss"), 4403)):
        with client.websocket_connect("/ws/agent") as ws, pytest.raises(WebSocketDisconnect) as e:
            ws.receive_text()
        assert e.value.code == code


def test_bad_messages_get_errors_and_the_socket_lives_on(site: DeskSite) -> None:
    with site.client("agent1").websocket_connect("/ws/agent") as ws:
        ws.receive_text()
        for text, code in (
            ("not json", "bad_message"), ("[1]", "bad_message"), ("x" * 5000, "too_large"),
            ('{"type": "resume", "after": "x"}', "bad_message"),
            ('{"type": "hack"}', "bad_message"),
        ):  # fmt: skip
            ws.send_text(text)
            assert json.loads(ws.receive_text())["error"] == code
        ws.send_bytes(b"\xff\xfe")
        assert json.loads(ws.receive_text())["error"] == "bad_message"
        ws.send_text('{"type": "ping"}')
        assert json.loads(ws.receive_text())["type"] == "pong"


def test_reconnect_resumes_without_losing_a_pop(site: DeskSite) -> None:
    client = site.client("agent1")
    with client.websocket_connect("/ws/agent") as ws:
        ws.receive_text()
        site.ring("agent1")
        seen = _next_pop(ws, complete=True)["seq"]
    site.ring("agent1", CallState.CONNECTED)  # while the desk is away
    for _ in range(100):
        if site.desk.hub.seq > seen:
            break
        time.sleep(0.01)
    with client.websocket_connect("/ws/agent") as ws:
        ws.receive_text()
        ws.send_text(json.dumps({"type": "resume", "after": seen}))
        missed = [json.loads(ws.receive_text()) for _ in range(2)]
    kinds = {f["type"]: f for f in missed}
    assert kinds["pop"]["kind"] == "answered"
    assert kinds["resumed"]["frames"] == 1  # the missed frame, in this desk's language


def _connected(site: DeskSite) -> None:
    site.ring("agent1")
    site.ring("agent1", CallState.CONNECTED)
    for _ in range(200):
        if site.desk.current.get("agent1") and site.desk.hub.seq >= 2:
            return
        time.sleep(0.01)


def test_no_agent_endpoint_shows_another_agents_caller(site: DeskSite) -> None:
    _connected(site)
    mine = site.client("agent1")
    r = mine.post(f"/api/desk/calls/{CID}/complaints", json={"category": "x", "steps": ["a"] * 5})
    assert r.status_code == 200, r.text
    complaint = r.json()["id"]
    other = site.client("agent2")
    attempts = [
        other.get(f"/api/desk/calls/{CID}"),
        other.put(f"/api/desk/calls/{CID}/customer", json={"version": 1, "name": "x"}),
        other.post(f"/api/desk/calls/{CID}/complaints", json={"category": "x", "steps": ["a"] * 5}),
        other.post(f"/api/desk/calls/{CID}/suggestions", json={"text": "x", "department": "d"}),
        other.post(f"/api/desk/calls/{CID}/blacklist", json={"reason": "x"}),
        other.get(f"/api/desk/complaints/{complaint}"),
    ]
    assert [a.status_code for a in attempts] == [404] * len(attempts)
    for r in (*attempts, other.get("/api/desk/me"), other.get("/api/desk/callbacks")):
        assert CALLER not in r.text
    assert other.get("/api/desk/search?q=139").status_code == 403
    assert other.post("/api/calls/current/silent-line", json={}).status_code == 404
    # The agent on the call sees the file, the complaint, and the number only there.
    assert mine.get(f"/api/desk/calls/{CID}").json()["call"]["caller_number"] == CALLER
    assert "caller_number" not in mine.get(f"/api/desk/complaints/{complaint}").json()
    assert CALLER not in mine.get("/api/desk/me").text


def test_customer_file_two_editors_no_lost_update(site: DeskSite) -> None:
    _connected(site)
    a, b = site.client("agent1"), site.client("agent1")
    version = a.get(f"/api/desk/calls/{CID}").json()["customer"]["version"]
    first = a.put(f"/api/desk/calls/{CID}/customer", json={"version": version, "notes": "A"})
    assert first.status_code == 200
    second = b.put(f"/api/desk/calls/{CID}/customer", json={"version": version, "notes": "B"})
    assert second.status_code == 409
    assert second.json()["error"] == "version_conflict"
    assert site.rows("SELECT notes, version FROM customers") == [("A", version + 1)]


def test_complaint_text_is_stored_intact(site: DeskSite) -> None:
    _connected(site)
    mine = site.client("agent1")
    big = "<script>alert('x')</script>" + "投" * 100_000
    r = mine.post(
        f"/api/desk/calls/{CID}/complaints",
        json={"category": "网络", "steps": [big, "", "", "", ""],
              "callback": {"due_at": "2030-01-01T09:00:00Z", "note": "<b>x</b>"}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "awaiting_callback"
    got = mine.get(f"/api/desk/complaints/{r.json()['id']}").json()
    assert got["steps"][0] == big
    assert [h["action"] for h in got["history"]] == ["created"]
    cid = r.json()["id"]
    moved = mine.post(f"/api/desk/complaints/{cid}/status", json={"status": "resolved"})
    assert moved.status_code == 200
    back = mine.post(f"/api/desk/complaints/{cid}/status", json={"status": "awaiting_callback"})
    assert back.status_code == 409
    other = site.client("agent2").post(
        f"/api/desk/complaints/{cid}/status", json={"status": "closed"}
    )
    assert other.status_code == 404
    history = mine.get(f"/api/desk/complaints/{cid}").json()["history"]
    assert [h["action"] for h in history] == ["created", "status"]
    too_big = mine.post(
        f"/api/desk/calls/{CID}/complaints",
        json={"category": "x", "steps": ["x" * 200_001] + [""] * 4},
    )
    assert too_big.status_code == 400
    assert "steps[1]" in too_big.json()["message"]
    assert site.rows("SELECT reason, caller_number FROM callbacks") == [("complaint", CALLER)]


def test_stale_session_is_refused(site: DeskSite) -> None:
    client = site.client("agent1")
    site.portal.call(users.set_password, site.db, "agent1", hash_password("new", n=2**10), 0.0)
    assert client.get("/api/desk/me").status_code == 401
    with client.websocket_connect("/ws/agent") as ws, pytest.raises(WebSocketDisconnect) as e:
        ws.receive_text()
    assert e.value.code == 4401


def test_supervisor_search_and_blacklist_are_audited(site: DeskSite) -> None:
    _connected(site)
    agent = site.client("agent1")
    proposed = agent.post(f"/api/desk/calls/{CID}/blacklist", json={"reason": "骚扰"})
    assert proposed.status_code == 200
    boss = site.client("boss")
    found = boss.get("/api/desk/search?q=139").json()["customers"]
    assert [c["number"] for c in found] == [CALLER]
    r = boss.post(
        f"/api/desk/blacklist/{proposed.json()['id']}/decision", json={"decision": "approved"}
    )
    assert r.status_code == 200
    actions = [a for (a,) in site.rows("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["blacklist_propose", "customer_search", "blacklist_approved"]
    assert site.portal.call(site.desk.caller_file, dataclasses.replace(
        site.desk.current["agent1"]
    )).blacklist["status"] == "approved"  # fmt: skip


def test_a_caller_who_rings_back_brings_their_complaint_to_the_next_agent(
    site: DeskSite,
) -> None:
    """agent1 files a complaint; the caller rings back the next day and reaches agent2, who
    must see and move that complaint (the handbook's callback promise), and only then."""
    _connected(site)
    r = site.client("agent1").post(
        f"/api/desk/calls/{CID}/complaints", json={"category": "网络", "steps": ["a"] * 5}
    )
    assert r.status_code == 200, r.text
    complaint = r.json()["id"]
    other = site.client("agent2")
    assert other.get(f"/api/desk/complaints/{complaint}").status_code == 404
    denied = other.post(f"/api/desk/complaints/{complaint}/status", json={"status": "resolved"})
    assert denied.status_code == 404
    assert CALLER not in denied.text
    # The same caller, a new call, now with agent2.
    now = time.time()
    again = Call(
        call_id="1795000099.5", state=CallState.CONNECTED, started_at=now, updated_at=now,
        caller_number=CALLER, caller_name="张伟", agent="agent2",
    )  # fmt: skip
    base = {"at": now, "uniqueid": again.call_id, "linkedid": again.call_id,
            "dest_uniqueid": "d2", "dest_linkedid": again.call_id, "queue": "support",
            "member_name": "agent2"}  # fmt: skip
    connect = AgentConnect(**base)
    change = CallChange(again, CallState.AGENT_RINGING, CallState.CONNECTED, False, connect)
    site.portal.call(site.desk.observe, change)
    for _ in range(200):
        if site.desk.current.get("agent2"):
            break
        time.sleep(0.01)
    shown = other.get(f"/api/desk/complaints/{complaint}")
    assert shown.status_code == 200, shown.text
    assert "caller_number" not in shown.json()
    moved = other.post(
        f"/api/desk/complaints/{complaint}/status", json={"status": "resolved", "note": "已回访"}
    )
    assert moved.status_code == 200, moved.text
    history = other.get(f"/api/desk/complaints/{complaint}").json()["history"]
    assert history[-1]["actor"] == "agent2"
