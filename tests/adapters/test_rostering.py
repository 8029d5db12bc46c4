"""The roster feature against a fake PBX: reconcile, boundaries, deferred removal, callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.events import DialBegin, UserEvent
from ivr_agent.domain.roster import Agent, Role, Shift
from ivr_agent.errors import AmiActionFailed
from ivr_agent.rostering import Rostering
from ivr_agent.store import alerts, callbacks
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
        await _until(lambda: feature.callbacks.pending == [])
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
        await _until(lambda: feature.alerts.raised == 1)
    (alert,) = await alerts.list_alerts(db.conn)
    assert (alert.kind, alert.call_id, alert.agent) == ("long_call", "9.8", "agent1")
    async with db.write() as conn:
        await callbacks.close(conn, rows[0]["id"], "done", by="李主管", at=now, note="ok")  # type: ignore[arg-type]
    assert await callbacks.list_callbacks(db.conn, status="open") == []


def _outbound(call_id: str, number: str, at: float) -> CallChange:
    """agent1's line dials `number` (the DialBegin of the call it placed)."""
    channel = "Local/agent1@lab-agents-0000001f;1"
    call = Call(
        call_id=call_id,
        state=CallState.IVR,
        started_at=at,
        updated_at=at,
        caller_number="agent1",
        caller_channel=channel,
    )
    ev = DialBegin(
        at=at,
        uniqueid=call_id,
        linkedid=call_id,
        channel=channel,
        caller_number="agent1",
        exten=number,
        dest_uniqueid=call_id + "1",
        dest_linkedid=call_id,
        dial_string=f"{number}@lab-pstn/n",
    )
    return CallChange(call, CallState.IVR, CallState.IVR, False, ev)


async def test_an_agent_line_calling_a_stranger_alerts_a_call_back_does_not(db: Db) -> None:
    now = time.time()
    await _shifts(db, Shift("agent1", now - HOUR, now + HOUR))
    async with db.write() as conn:
        await conn.execute(
            "INSERT INTO calls (call_id, state, caller_number, updated_at) VALUES (?, ?, ?, ?)",
            ("1.0", "ended", "13800138000", "x"),
        )
    feature = Rostering(FakePbx(), db, queues=("support",))
    with capture_logs() as logs:
        async with running(feature):
            feature.on_resync()
            await _until(lambda: feature.reconciles >= 1)
            feature.observe(_outbound("2.1", "+8613800138000", now))  # calls a caller back
            feature.observe(_outbound("2.2", "13912345678", now))  # a private call
            feature.observe(_outbound("2.2", "13912345678", now))  # its DialBegin, seen again
            await _until(lambda: feature.alerts.raised == 1)
            await asyncio.sleep(0.1)
    (alert,) = await alerts.list_alerts(db.conn)
    assert (alert.kind, alert.call_id, alert.agent) == ("private_call", "2.2", "agent1")
    assert alert.detail == "agent1 called 139****5678, not a hotline caller"
    private = [e for e in logs if e["event"] == "private_call_alert"]
    assert [(e["call_id"], e["dialed_number"], e["log_level"]) for e in private] == [
        ("2.2", "13912345678", "info")  # masked by the log setup's processor at INFO
    ]
    back = [e for e in logs if e["event"] == "agent_outbound_call"]
    assert [(e["call_id"], e["hotline_caller"]) for e in back] == [("2.1", True)]


async def test_a_long_call_alerts_once_even_across_a_restart(db: Db) -> None:
    now = time.time()
    talking = Call(
        call_id="9.7",
        state=CallState.CONNECTED,
        started_at=now - 10,
        updated_at=now,
        agent="agent2",
        agent_connected_at=now - 10,
    )
    change = CallChange(talking, CallState.QUEUED, CallState.CONNECTED, False, None)
    raised = []
    for _ in range(2):  # the service, then the service restarted: a new feature, same database
        feature = Rostering(FakePbx(), db, queues=("support",), long_call_alert=1.0)
        async with running(feature):
            feature.observe(change)
            await _until(lambda f=feature: f.alerts.next_due() is None)  # type: ignore[misc]
        raised.append(feature.alerts.raised)
    assert raised == [1, 0]  # the restarted one found it stored already
    (alert,) = await alerts.list_alerts(db.conn)
    assert (alert.kind, alert.call_id, alert.agent) == ("long_call", "9.7", "agent2")
