"""The agent desk end to end: the real lab Asterisk, the service, headless Chromium.

The lab's SIP desk phone (PJSIP/agent-sip, played by SIPp: ivr_agent/lab/sipp_agent.py) is the
only member of the lab's `desk-test` queue, as agent72, who signs in to the desk with two other
agents. A call from 张伟 queues there and rings the phone: the pop must show the caller's name,
history and the greeting before the answer, then follow answer / hold / unhold / hangup as the
phone does them (real re-INVITEs: Asterisk's own Hold and Unhold events). The agent files a
5-step complaint with a callback; the other agents cannot read it. A screenshot of the live pop
is kept.
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
from ivr_agent.lab.sipp_agent import AGENT_INTERFACE, AgentScript, SipAgent
from ivr_agent.store import users
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db
from ivr_agent.web.passwords import hash_password
from tests.integration.conftest import lab, lab_control  # noqa: F401  # the real lab fixtures
from tests.integration.service import REPO, lab_settings, running_service

pytestmark = pytest.mark.integration

QUEUE = "desk-test"  # dialplan/lab/queues.conf: no member but the one this test adds
OWN_MEMBER = "agent72"  # the SIP desk phone's agent
OTHERS = ["agent73", "agent-bystander"]  # signed-in agents who are not in the queue
# The phone: rings 1.5 s, answers, talks 2 s, holds 3 s, talks 8 s more (the complaint is
# filed during the call), hangs up. The caller would stay 60 s.
PHONE = AgentScript(ring_s=1.5, talk_s=2.0, hold_s=3.0, after_s=8.0)
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
    desk_service: Service,
    lab: LabInfo,  # noqa: F811
    browser: Browser,
    tmp_path: Path,
) -> None:
    service = desk_service
    assert service.web is not None
    async with SipAgent(lab.lab_dir, PHONE) as phone:
        added = await service.ami.send(
            {"Action": "QueueAdd", "Queue": QUEUE, "Interface": AGENT_INTERFACE,
             "MemberName": OWN_MEMBER},
            timeout=5,
        )  # fmt: skip
        assert added.get("Response") == "Success" or "Already" in added.get("Message", ""), added
        try:
            await _call_and_check(service, browser, tmp_path, service.web.url)
            result = await phone.finished(within=30)
            assert result.ok, result.log_tail  # the phone ran its whole script
        finally:
            await service.ami.send(
                {"Action": "QueueRemove", "Queue": QUEUE, "Interface": AGENT_INTERFACE}, timeout=5
            )


async def _call_and_check(service: Service, browser: Browser, tmp_path: Path, url: str) -> None:
    assert await _members(service) == [OWN_MEMBER]
    agents = [OWN_MEMBER, *OTHERS]
    await _add_users(Path(service.settings.storage.database), agents)
    opened = [await _desk(browser, url, name) for name in agents]
    desks = [(ctx, page) for ctx, page, _ in opened]
    # The median desk: the lab box is shared with other engineers' load tests (a 2-core box at
    # load 25 makes single loads noisy); every load is printed.
    loads = sorted(seconds for _, _, seconds in opened)
    print("desk load seconds:", [round(x, 3) for x in loads])
    load_s = loads[len(loads) // 2]
    assert load_s < 1.0, f"the desk took {load_s:.3f}s to load (median of {loads})"

    action = LocalCall("talking", CALLER, CALLER_NAME, hold_s=60).originate()
    # Channel variables shadow the globals: this call queues in QUEUE, open whatever the hour.
    action["Variable"] += f",IVR_AGENT_QUEUE={QUEUE},IVR_AGENT_OPEN_{QUEUE}=1"
    reply = await service.ami.send(action, timeout=5)
    assert reply.get("Response") == "Success", reply

    mine = desks[0][1]  # the phone's agent
    deadline = time.monotonic() + 15
    while not await _frames(mine) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    frames = await _frames(mine)
    assert frames, "the ringing desk got no pop"
    # At once, before the answer: the caller ID's name and the greeting.
    assert frames[0]["kind"] == "ringing"
    assert frames[0]["call"]["caller_name"] == CALLER_NAME
    assert frames[0]["phrases"]["phase"][0]["key"] == "greeting"
    # Then the file from the database, still before the answer (the phone rings 1.5 s).
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
    # The agent presses HOLD on the phone, then takes the caller back.
    await mine.wait_for_selector("#pop[data-kind=on_hold]", timeout=10_000)
    await mine.wait_for_selector("#pop[data-kind=unhold]", timeout=10_000)
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
    other_ctx, other = desks[1]
    for _, page in desks[1:]:
        assert await _frames(page) == []
    for path in (f"/api/desk/complaints/{complaint_id}", f"/api/desk/calls/{call_id}"):
        r = await other.request.get(url + path)
        assert r.status == 404, path
        assert CALLER not in await r.text()
    r = await other.request.put(
        f"{url}/api/desk/calls/{call_id}/customer", data={"version": 1, "name": "x"}
    )
    assert r.status == 404

    # The agent hangs up: the desk shows it.
    await mine.wait_for_selector("#pop[data-kind=ended]", timeout=30_000)
    kinds = [f["kind"] for f in await _frames(mine)]
    assert kinds[0] == "ringing", kinds
    assert "answered" in kinds, kinds
    assert kinds[-1] == "ended", kinds
    assert [k for k in kinds if k in ("on_hold", "unhold")] == ["on_hold", "unhold"]
    with contextlib.closing(sqlite3.connect(service.settings.storage.database)) as conn:
        cb = conn.execute("SELECT reason, caller_number FROM callbacks").fetchall()
    assert cb == [("complaint", CALLER)]
    for ctx, _ in desks:
        await ctx.close()
    del other_ctx
