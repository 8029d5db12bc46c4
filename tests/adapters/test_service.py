"""The service glue end to end against the fake AMI server: transcripts in, call records out."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr_agent.app import Service
from ivr_agent.config import Settings, load_settings
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.store import calls as call_store
from ivr_agent.store.db import open_db
from ivr_agent.store.snapshot import call_to_json
from tests.adapters.fakeami import SECRET, FakeAmi, FakeConn
from tests.unit.transcript import TRANSCRIPTS


def wire(name: str) -> bytes:
    """A transcript as Asterisk would send it: notes dropped, CRLF line ends."""
    lines = [
        ln
        for ln in (TRANSCRIPTS / name).read_text(encoding="utf-8").splitlines()
        if not ln.startswith("#")
    ]
    text = "\r\n".join(lines).strip("\r\n") + "\r\n\r\n"
    return text.encode()


def settings_for(fake: FakeAmi, db: Path) -> Settings:
    base = load_settings(None, env={"IVR_AGENT_AMI_SECRET": SECRET})
    return dataclasses.replace(
        base,
        ami=dataclasses.replace(
            base.ami, port=fake.port, ping_interval=5, reconnect_min=0.05, reconnect_max=0.2
        ),
        storage=dataclasses.replace(base.storage, database=str(db), flush_interval=0.01),
    )


class Channels:
    """CoreShowChannels handler: answers with whatever `live` holds (list of frames)."""

    def __init__(self) -> None:
        self.live: list[dict[str, str]] = []

    async def __call__(self, conn: FakeConn, action: dict[str, str]) -> None:
        aid = action["ActionID"]
        await conn.reply(action, {"EventList": "start", "Message": "Channels will follow"})
        for ch in self.live:
            await conn.frame({"Event": "CoreShowChannel", "ActionID": aid, **ch})
        await conn.frame(
            {
                "Event": "CoreShowChannelsComplete",
                "ActionID": aid,
                "EventList": "Complete",
                "ListItems": str(len(self.live)),
            }
        )


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


async def start_service(settings: Settings) -> tuple[Service, asyncio.Event, asyncio.Task[None]]:
    service = Service(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    async with asyncio.timeout(5):
        await service.started.wait()
        await service.ami.wait_ready(5)
    return service, stop, task


async def test_transcripts_become_call_records(fake: FakeAmi, db_path: Path) -> None:
    channels = Channels()
    fake.on("CoreShowChannels", channels)
    service, stop, task = await start_service(settings_for(fake, db_path))
    await fake.wait_for(lambda: bool(fake.actions("CoreShowChannels")))
    for name in ("answered_talking.ami", "abandoned_in_queue.ami", "pjsip_zhangsan.ami"):
        # Split at odd offsets so frames (and 张三's UTF-8) straddle TCP reads.
        await fake.broadcast(wire(name), split=range(997, 60_000, 997))
    async with asyncio.timeout(5):
        while len(service.book):
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)

    conn = await open_db(db_path)
    rows = {r["call_id"]: r for r in await call_store.list_calls(conn)}
    assert len(rows) == 3
    by_disp = {r["disposition"]: r for r in rows.values()}
    assert set(by_disp) == {"answered", "abandoned"} or len(by_disp) >= 2
    names = {r["caller_name"] for r in rows.values()}
    assert "张三" in names
    for r in rows.values():
        assert r["state"] == "ended"
        assert r["ended_at"] is not None
        assert r["reconciled"] is False
    answered = next(r for r in rows.values() if r["disposition"] == "answered")
    assert answered["agent"]
    detail = await call_store.get_call(conn, str(answered["call_id"]))
    assert detail is not None
    kinds = [t["kind"] for t in detail["timeline"]]  # type: ignore[union-attr]
    assert kinds[0] == "Newchannel"
    assert "AgentConnect" in kinds
    assert "Hangup" in kinds
    await conn.close()


async def test_restart_closes_calls_that_ended_while_away(fake: FakeAmi, db_path: Path) -> None:
    """As after a kill -9: the DB holds two open calls; Asterisk still has only one of them."""
    conn = await open_db(db_path)
    store = call_store.CallStore(conn, flush_interval=0.01, flush_max_rows=100)
    gone = Call(
        call_id="1795000000.1",
        state=CallState.CONNECTED,
        started_at=1795000000.0,
        updated_at=1795000010.0,
        answered_at=1795000000.5,
        agent_connected_at=1795000003.0,
        agent="agent1",
        caller_number="13800138000",
        channels=frozenset({"1795000000.1"}),
        live_channels=frozenset({"1795000000.1"}),
    )
    live = dataclasses.replace(
        gone,
        call_id="1795000100.5",
        channels=frozenset({"1795000100.5"}),
        live_channels=frozenset({"1795000100.5"}),
    )
    store.put_call(gone)
    store.put_call(live)
    await store.flush()
    await conn.close()
    assert call_to_json(gone)  # the snapshot the service adopts from

    channels = Channels()
    channels.live = [
        {
            "Channel": "PJSIP/trunk-00000001",
            "ChannelState": "6",
            "ChannelStateDesc": "Up",
            "CallerIDNum": "13800138000",
            "CallerIDName": "",
            "Context": "ivr-agent-hotline",
            "Exten": "s",
            "Priority": "9",
            "Uniqueid": "1795000100.5",
            "Linkedid": "1795000100.5",
            "Application": "Queue",
            "ApplicationData": "support,r,,,300",
            "Duration": "00:00:30",
            "BridgeId": "",
        }
    ]
    fake.on("CoreShowChannels", channels)
    service, stop, task = await start_service(settings_for(fake, db_path))
    async with asyncio.timeout(5):
        while service.book.get(gone.call_id) is not None:
            await asyncio.sleep(0.01)
    assert service.book.get(live.call_id) is not None
    stop.set()
    await asyncio.wait_for(task, 5)

    conn = await open_db(db_path)
    closed = await call_store.get_call(conn, gone.call_id)
    still = await call_store.get_call(conn, live.call_id)
    await conn.close()
    assert closed is not None
    assert still is not None
    assert closed["state"] == "ended"
    assert closed["reconciled"] is True
    assert closed["ended_at"] is not None
    assert closed["agent"] == "agent1"  # what was known before the restart is kept
    assert still["ended_at"] is None
    assert [t["kind"] for t in closed["timeline"]] == ["Reconciled"]  # type: ignore[union-attr]


async def test_malformed_frames_do_not_stop_the_service(fake: FakeAmi, db_path: Path) -> None:
    fake.on("CoreShowChannels", Channels())
    service, stop, task = await start_service(settings_for(fake, db_path))
    await fake.broadcast(b"Event: Hangup\r\nUniqueid: x\r\n\r\n")  # no Linkedid: malformed
    await fake.broadcast(b"\x00\xffgarbage\r\n\r\n")
    await fake.broadcast(wire("abandoned_in_queue.ami"))
    async with asyncio.timeout(5):
        while service.events_applied == 0 or len(service.book):
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    conn = await open_db(db_path)
    rows = await call_store.list_calls(conn)
    await conn.close()
    assert [r["disposition"] for r in rows] == ["abandoned"]
