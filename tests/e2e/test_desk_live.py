"""The agent desk end to end: the real lab Asterisk, the service, headless Chromium.

Every member of the lab's small `leaders` queue gets a desk user and signs in, plus a bystander
agent; a call from 张伟 is sent to that queue (per-call IVR_AGENT_QUEUE: `support` may hold a
hundred extra agents of another engineer's load test) and rings one of them (the queue picks).
The pop must show the caller's name, history and the greeting before
the answer, then follow answer / hold / unhold / hangup. The agent files a 5-step complaint with
a callback; another agent cannot read it. A screenshot of the live pop is kept.

Hold/Unhold: the lab's agents are Local channels that cannot put a caller on hold (no phone to
press the button), so those two frames are fed to the service as Asterisk sends them (the shape
of tests/transcripts/pjsip_zhangsan.ami), on the live call's caller channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from ivr_agent.app import Service
from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.simulator import LocalCall
from ivr_agent.store import users
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db
from ivr_agent.web.passwords import hash_password
from tests.integration.conftest import lab, lab_control  # noqa: F401  # the real lab fixtures
from tests.integration.service import REPO, lab_settings, running_service

pytestmark = pytest.mark.integration

QUEUE = "leaders"
OWN_MEMBER = "agent71"  # our own member of QUEUE for the test (the lab's may be roster-driven)
BYSTANDER = "agent-bystander"  # an agent who is not in the queue: never gets this caller
PASSWORD = "desk-demo-password"
# A fresh number per run: a call of an earlier run may still be live in the lab.
CALLER, CALLER_NAME = f"139{random.randrange(10**8):08d}", "张伟"  # noqa: S311


async def _members(service: Service) -> list[str]:
    frames = await service.ami.send_list({"Action": "QueueStatus", "Queue": QUEUE}, timeout=5)
    names = {
        f.get("Name") or f.get("MemberName", "") for f in frames if f.get("Event") == "QueueMember"
    }
    return sorted(n for n in names if n)


async def _add_users(db_path: Path, names: list[str]) -> None:
    db = await Db.open(db_path)
    try:
        hashed = hash_password(PASSWORD, n=2**10)
        for name in names:
            await users.add_user(db, name, users.Role.AGENT, hashed, time.time(), agent=name)
    finally:
        await db.close()


async def _prepare(db_path: Path) -> None:
    db = await Db.open(db_path)
    try:
        now = time.time()
        async with db.write() as conn:  # a previous call of this caller, for the history
            await conn.execute(
                "INSERT INTO calls (call_id, state, caller_number, caller_name, agent, started_at,"
                " ended_at, talk_time, disposition, updated_at) VALUES "
                "('1700000000.1', 'ended', ?, ?, 'agent3', ?, ?, 42.0, 'answered', ?)",
                (CALLER, CALLER_NAME, utc_text(now - 86400), utc_text(now - 86358), utc_text(now)),
            )
    finally:
        await db.close()


async def _desk(browser: Browser, url: str, name: str) -> tuple[BrowserContext, Page, float]:
    """A signed-in desk; also how long a fresh load of /desk took until its socket was up."""
    ctx = await browser.new_context(locale="zh-CN")
    page = await ctx.new_page()
    await page.goto(f"{url}/login?next=/desk")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}/desk", timeout=10_000)
    await page.wait_for_selector("#link[data-state=up]", timeout=10_000)
    started = time.perf_counter()
    await page.goto(f"{url}/desk")
    await page.wait_for_selector("#link[data-state=up]", timeout=10_000)
    return ctx, page, time.perf_counter() - started


async def _frames(page: Page) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = await page.evaluate("window.deskFrames")
    return [f for f in frames if f["call"]["caller_number"] == CALLER]


def _inject(service: Service, event: str, call_id: str) -> None:
    call = service.book.get(call_id)
    assert call is not None
    service.handle({
        "Event": event, "Uniqueid": call_id, "Linkedid": call_id,
        "Channel": call.caller_channel, "ChannelState": "6", "CallerIDNum": CALLER,
        "Timestamp": f"{time.time():.6f}",
    })  # fmt: skip


@pytest.fixture
async def desk_service(lab: LabInfo, tmp_path: Path) -> AsyncIterator[Service]:  # noqa: F811
    db = tmp_path / "desk.db"
    await _prepare(db)
    settings = lab_settings(lab, db)
    # Leave the lab's queue members alone: this service's roster (an empty one in this tmp
    # database) would otherwise change the shared queues.
    settings = dataclasses.replace(
        settings, roster=dataclasses.replace(settings.roster, enabled=False)
    )
    async with running_service(settings) as service:
        yield service


async def test_desk_live_pop_complaint_and_privacy(
    desk_service: Service, browser: Browser, tmp_path: Path
) -> None:
    service = desk_service
    assert service.web is not None
    url = service.web.url
    iface = f"Local/{OWN_MEMBER}@lab-agents/n"
    added = await service.ami.send(
        {"Action": "QueueAdd", "Queue": QUEUE, "Interface": iface, "MemberName": OWN_MEMBER},
        timeout=5,
    )
    assert added.get("Response") == "Success" or "Already" in added.get("Message", ""), added
    try:
        await _call_and_check(service, browser, tmp_path, url)
    finally:
        await service.ami.send(
            {"Action": "QueueRemove", "Queue": QUEUE, "Interface": iface}, timeout=5
        )


async def _call_and_check(service: Service, browser: Browser, tmp_path: Path, url: str) -> None:
    members = await _members(service)
    assert OWN_MEMBER in members, members
    agents = [OWN_MEMBER, *[m for m in members if m != OWN_MEMBER][:5], BYSTANDER]
    await _add_users(Path(service.settings.storage.database), agents)
    opened = [await _desk(browser, url, name) for name in agents]
    desks = [(ctx, page) for ctx, page, _ in opened]
    # The median desk: the lab box is shared with other engineers' load tests (a 2-core box at
    # load 25 makes single loads noisy); every load is printed.
    loads = sorted(seconds for _, _, seconds in opened)
    print("desk load seconds:", [round(x, 3) for x in loads])
    load_s = loads[len(loads) // 2]
    assert load_s < 1.0, f"the desk took {load_s:.3f}s to load (median of {loads})"

    action = LocalCall("talking", CALLER, CALLER_NAME, hold_s=3).originate()
    # Channel variables shadow the globals: this call queues in QUEUE, open whatever the hour.
    action["Variable"] += f",IVR_AGENT_QUEUE={QUEUE},IVR_AGENT_OPEN_{QUEUE}=1"
    reply = await service.ami.send(action, timeout=5)
    assert reply.get("Response") == "Success", reply

    # Which desk rang? The queue picks the agent; exactly one desk gets this caller's pop.
    mine: Page | None = None
    deadline = time.monotonic() + 15
    while mine is None and time.monotonic() < deadline:
        for _, page in desks:
            if await _frames(page):
                mine = page
        await asyncio.sleep(0.05)
    assert mine is not None, "no desk got the pop"
    me = agents[[p for _, p in desks].index(mine)]
    frames = await _frames(mine)
    # At once, before the answer: the caller ID's name and the greeting.
    assert frames[0]["kind"] == "ringing"
    assert frames[0]["call"]["caller_name"] == CALLER_NAME
    assert frames[0]["phrases"]["phase"][0]["key"] == "greeting"
    # Then the file from the database, still before the answer (a ring with nothing queued
    # behind it waits up to 15 ms for it; the lab's agents answer within milliseconds).
    await mine.wait_for_selector("#history tr", timeout=5_000)
    first = next(f for f in await _frames(mine) if f["complete"])
    print("first complete pop:", first["kind"], "frames:", [f["kind"] for f in frames])
    assert first["kind"] == "ringing", [f["kind"] for f in frames]
    assert first["call"]["caller_name"] == CALLER_NAME
    assert first["customer"]["name"] == CALLER_NAME
    assert [h["agent"] for h in first["history"]] == ["agent3"]
    assert "文明用语" in first["phrases"]["abuse"][1]["text"]
    assert first["phrases"]["closing"][-1]["text"] == "感谢您的电话,再见!"
    call_id = first["call"]["call_id"]

    await mine.wait_for_selector("#pop[data-kind=answered]", timeout=10_000)
    assert await mine.text_content("#caller-name") == CALLER_NAME
    _inject(service, "Hold", call_id)
    await mine.wait_for_selector("#pop[data-kind=on_hold]", timeout=5_000)
    _inject(service, "Unhold", call_id)
    await mine.wait_for_selector("#pop[data-kind=unhold]", timeout=5_000)
    assert (await mine.text_content("#phrases li")) == "很抱歉让您久等了。"
    assert "agent3" in (await mine.text_content("#history") or "")
    shot = tmp_path / "desk.png"
    await mine.screenshot(path=str(shot), full_page=True)
    (REPO / "var" / "screenshots").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, REPO / "var" / "screenshots" / "desk.png")

    # The 5-step complaint with a callback, through the form.
    await mine.click("#complaint-box summary")
    await mine.fill("#complaint input[name=category]", "网络故障")
    notes = [
        "<script>alert(1)</script>宽带断线三天",
        "表示歉意",
        "光猫故障",
        "上门维修",
        "明天下午",
    ]
    for i, text in enumerate(notes):
        await mine.fill(f"#complaint textarea[name=step{i}]", text)
    await mine.fill("#complaint input[name=callback_due]", "2030-01-02T15:00")
    await mine.fill("#complaint input[name=callback_note]", "回访确认修复")
    await mine.click("#complaint button[type=submit]")
    await mine.wait_for_selector("#complaint[data-saved]", timeout=5_000)
    complaint_id = int(await mine.get_attribute("#complaint", "data-saved") or "0")
    got = await mine.request.get(f"{url}/api/desk/complaints/{complaint_id}")
    assert got.status == 200
    body = await got.json()
    assert body["steps"][0] == notes[0]
    assert body["status"] == "awaiting_callback"
    assert "caller_number" not in body

    # Another agent: no pop of this caller, and neither the complaint nor the call nor the file.
    other_ctx, other = next((c, p) for c, p in desks if p is not mine)
    assert await _frames(other) == []
    for path in (f"/api/desk/complaints/{complaint_id}", f"/api/desk/calls/{call_id}"):
        r = await other.request.get(url + path)
        assert r.status == 404, path
        assert CALLER not in await r.text()
    r = await other.request.put(
        f"{url}/api/desk/calls/{call_id}/customer", data={"version": 1, "name": "x"}
    )
    assert r.status == 404

    # The call ends (the caller hangs up after its speech): the desk shows it.
    await mine.wait_for_selector("#pop[data-kind=ended]", timeout=30_000)
    kinds = [f["kind"] for f in await _frames(mine)]
    assert kinds[0] == "ringing", kinds
    assert "answered" in kinds, kinds
    assert kinds[-1] == "ended", kinds
    assert [k for k in kinds if k in ("on_hold", "unhold")] == ["on_hold", "unhold"]
    with contextlib.closing(sqlite3.connect(service.settings.storage.database)) as conn:
        cb = conn.execute("SELECT reason, caller_number FROM callbacks").fetchall()
    assert cb == [("complaint", CALLER)]
    assert me in members
    for ctx, _ in desks:
        await ctx.close()
    del other_ctx
