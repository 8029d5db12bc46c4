"""The roster feature against a fake PBX: reconcile, boundaries, deferred removal, callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.events import UserEvent
from ivr_agent.domain.roster import Agent, Role, Shift
from ivr_agent.errors import AmiActionFailed
from ivr_agent.rostering import Rostering
from ivr_agent.store import callbacks
from ivr_agent.store import roster as store
from ivr_agent.store.txn import Db

HOUR = 3600.0


@dataclass
class Member:
    name: str
    paused: bool = False
    reason: str = ""
    in_call: bool = False


@dataclass
class FakePbx:
    """Queues as Asterisk keeps them, driven by the AMI actions the feature sends."""

    queues: dict[str, dict[str, Member]] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)

    async def send(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> Mapping[str, str]:
        kind = action["Action"]
        self.actions.append(kind)
        if kind == "Setvar":
            self.globals[action["Variable"]] = action["Value"]
            return {"Response": "Success"}
        q = self.queues.setdefault(action["Queue"], {})
        iface = action["Interface"]
        if kind == "QueueAdd":
            if iface in q:
                raise AmiActionFailed(kind, "Unable to add interface: Already there")
            q[iface] = Member(action["MemberName"], action["Paused"] == "true")
        elif kind == "QueueRemove":
            q.pop(iface)
        elif kind == "QueuePause":
            q[iface].paused = action["Paused"] == "true"
            q[iface].reason = action.get("Reason", "")
        return {"Response": "Success"}

    async def send_list(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> Sequence[Mapping[str, str]]:
        return [
            {
                "Event": "QueueMember",
                "Queue": queue,
                "Name": m.name,
                "Location": iface,
                "Membership": "dynamic",
                "InCall": "1" if m.in_call else "0",
                "Paused": "1" if m.paused else "0",
                "PausedReason": m.reason,
            }
            for queue, members in self.queues.items()
            for iface, m in members.items()
        ]

    def names(self, queue: str = "support") -> dict[str, bool]:
        return {m.name: m.paused for m in self.queues.get(queue, {}).values()}


def _iface(n: int) -> str:
    return f"Local/agent{n}@lab-agents/n"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Db]:
    d = await Db.open(tmp_path / "r.db")
    now = time.time()
    for n in (1, 2, 4):
        queues = ("support", "leaders") if n == 4 else ("support",)
        await store.add_agent(d.conn, Agent(f"agent{n}", _iface(n), queues), by="t", at=now)
    yield d
    await d.close()


async def _shifts(db: Db, *shifts: Shift) -> None:
    async with store.transaction(db.conn):
        await db.conn.execute("DELETE FROM shifts")
        await store.insert_shifts(db.conn, shifts, by="t", at=time.time())
        await store.append_audit(db.conn, who="t", action="shift_edited", detail={}, at=0)


@contextlib.asynccontextmanager
async def running(feature: Rostering) -> AsyncIterator[None]:
    task = asyncio.create_task(feature.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(check: object, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_reconcile_follows_the_roster_and_sets_the_open_flag(db: Db) -> None:
    now = time.time()
    await _shifts(
        db,
        Shift("agent1", now - HOUR, now + HOUR),
        Shift("agent4", now - HOUR, now + HOUR, Role.LEADER),
    )
    pbx = FakePbx({"support": {_iface(2): Member("agent2"), "SIP/x": Member("stranger")}})
    feature = Rostering(pbx, db, queues=("support",))
    result = await feature.reconcile()
    assert pbx.names() == {"agent1": False, "agent4": False}
    assert pbx.names("leaders") == {"agent4": False}
    assert pbx.globals == {"IVR_AGENT_OPEN_support": "1"}
    assert (result.changes, result.failed, result.open) == (5, 0, True)
    again = await feature.reconcile()  # idempotent: nothing left to do
    assert again.changes == 0
    audit = [e.action for e in await store.list_audit(db.conn)]
    assert audit.count("queue_member_added") == 3
    assert audit.count("queue_member_removed") == 2


async def test_boundaries_breaks_and_a_shift_ending_during_a_call(db: Db) -> None:
    now = time.time()
    await _shifts(
        db,
        Shift("agent1", now - HOUR, now + 1.2),
        Shift("agent2", now + 0.6, now + HOUR),
    )
    pbx = FakePbx()
    feature = Rostering(pbx, db, queues=("support",))
    async with running(feature):
        feature.on_resync()
        await _until(lambda: pbx.names() == {"agent1": False})
        pbx.queues["support"][_iface(1)].in_call = True
        await _until(lambda: pbx.names() == {"agent1": False, "agent2": False})
        # agent1's shift ends during its call: paused, kept until the call is over.
        await _until(lambda: pbx.names() == {"agent1": True, "agent2": False})
        pbx.queues["support"][_iface(1)].in_call = False
        call = Call(
            call_id="1.1",
            state=CallState.ENDED,
            started_at=now,
            updated_at=now,
            agent="agent1",
            agent_interface=_iface(1),
        )
        feature.observe(CallChange(call, CallState.CONNECTED, CallState.ENDED, True, None))
        await _until(lambda: pbx.names() == {"agent2": False})
        # Nobody on duty: the hotline is closed.
        await _shifts(db)
        await _until(lambda: pbx.globals.get("IVR_AGENT_OPEN_support") == "0")
        assert pbx.names() == {}


async def test_callback_event_is_stored_and_long_calls_alert(db: Db) -> None:
    pbx = FakePbx()
    feature = Rostering(pbx, db, queues=("support",), long_call_alert=0.2)
    now = time.time()
    call = Call(call_id="9.9", state=CallState.IVR, started_at=now, updated_at=now)
    ev = UserEvent(at=now, name="IvrAgentCallback", fields=(("CallerNumber", "13800138000"),))
    async with running(feature):
        feature.observe(CallChange(call, CallState.IVR, CallState.IVR, False, ev))
        await _until(lambda: feature._callbacks == [])
        rows = await callbacks.list_callbacks(db.conn, status="open")
        assert [(r["call_id"], r["caller_number"], r["reason"]) for r in rows] == [
            ("9.9", "13800138000", "after_hours")
        ]
        talking = Call(
            call_id="9.8",
            state=CallState.CONNECTED,
            started_at=now,
            updated_at=now,
            agent="agent1",
            agent_connected_at=now,
        )
        feature.observe(CallChange(talking, CallState.QUEUED, CallState.CONNECTED, False, None))
        await _until(lambda: len(feature.alerts) == 1)
    assert feature.alerts[0].call_id == "9.8"
    await callbacks.set_callback_status(db, rows[0]["id"], "done", by="李主管", at=now, note="ok")  # type: ignore[arg-type]
    assert await callbacks.list_callbacks(db.conn, status="open") == []
