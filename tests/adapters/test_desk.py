"""The desk feature without the web: what a pop costs when no desk is open, and its bounds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr_agent import desk as desk_module
from ivr_agent.desk import Desk
from ivr_agent.deskhub import Connection
from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.events import AgentCalled, AgentConnect
from ivr_agent.store import customers
from ivr_agent.store.txn import Db

CALLER = "13912345678"


def _change(call_id: str, agent: str, state: CallState) -> CallChange:
    now = time.time()
    call = Call(
        call_id=call_id, state=state, started_at=now, updated_at=now, caller_number=CALLER,
        caller_name="张伟", agent=agent if state is CallState.CONNECTED else "",
    )  # fmt: skip
    base = {"at": now, "uniqueid": call_id, "linkedid": call_id, "dest_uniqueid": "d",
            "dest_linkedid": call_id, "queue": "support", "member_name": agent}  # fmt: skip
    if state is CallState.CONNECTED:
        return CallChange(call, CallState.AGENT_RINGING, state, False, AgentConnect(**base))
    return CallChange(call, CallState.QUEUED, state, False, AgentCalled(**base))


@pytest.fixture
async def desk(db_path: Path) -> AsyncIterator[Desk]:
    db = await Db.open(db_path)
    desk = Desk(database=str(db_path))
    desk.db = db
    task = asyncio.create_task(desk.run())
    yield desk
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await db.close()


async def _frame(conn: Connection) -> dict[str, object]:
    async with asyncio.timeout(5):
        return dict(json.loads(await conn.queue.get()))


async def test_no_desk_open_nothing_rendered_but_the_file_is_created(desk: Desk) -> None:
    assert desk.db is not None
    desk.observe(_change("1.1", "agent1", CallState.AGENT_RINGING))
    async with asyncio.timeout(5):
        while await customers.get(desk.db.conn, CALLER) is None:
            await asyncio.sleep(0.01)
    assert desk.hub.seq == 0  # no pop rendered for nobody
    assert desk.hub.kept_bytes == 0
    # The agent opens the desk before answering: the answer pop comes, then with the file.
    conn = desk.hub.subscribe("agent1", "en", "x")
    desk.observe(_change("1.1", "agent1", CallState.CONNECTED))
    first, second = await _frame(conn), await _frame(conn)
    assert (first["kind"], first["complete"]) == ("answered", False)
    assert (second["kind"], second["complete"]) == ("answered", True)
    assert second["customer"] == {"name": "张伟", "notes": "", "tags": [], "version": 1}
    assert "phrases" in second
    assert desk.call_of("agent1", "1.1") is not None  # the privacy memory is kept regardless


async def test_pops_are_rendered_in_the_open_desks_language_only(desk: Desk) -> None:
    conn = desk.hub.subscribe("agent1", "en", "x")
    desk.observe(_change("2.1", "agent1", CallState.AGENT_RINGING))
    pop = await _frame(conn)
    assert pop["kind"] == "ringing"
    assert {lang for _, lang, _ in desk.hub._kept["agent1"]} == {"en"}


async def test_recent_callers_are_bounded_in_total(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_module, "_KEEP_ASSIGNED_TOTAL", 5)
    for n in range(4):
        desk.observe(_change(f"3.{n}", "agent1", CallState.AGENT_RINGING))
    for n in range(3):
        desk.observe(_change(f"4.{n}", "agent2", CallState.AGENT_RINGING))
    assert sum(len(a) for a in desk.assigned.values()) == 5
    # The least recently busy agent's oldest callers went first.
    assert [a.call_id for a in desk.assigned["agent1"]] == ["3.2", "3.3"]
    assert desk.call_of("agent2", "4.0") is not None
    assert desk.call_of("agent1", "3.0") is None
