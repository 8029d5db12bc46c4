"""The desk's complaint follow-up in headless Chromium, against the real web server and desk over
a tmp database (no PBX: the call reaches the desk as the call book would hand it over). The agent
on the call opens the caller's open complaints, sees their history, moves them on, including one
filed days ago and one another agent filed: the caller is on this agent's line now."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage

from ivr_agent.config import load_settings
from ivr_agent.desk import Desk
from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.complaints import Status
from ivr_agent.domain.events import AgentConnect
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store import complaints, users
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.passwords import hash_password
from ivr_agent.web.server import WebServer

PASSWORD = "agent-one-password"
CALLER, CID = "13912345678", "1795000000.77"
STEPS = ("来电人说宽带三天没有网", "", "线路故障", "已派单维修", "")


@dataclass
class DeskSite:
    url: str
    db: Db
    mine: int  # complaint ids, same caller: filed by agent1 two hours ago,
    old: int  # by agent1 two days ago (past the window in which agents see a call),
    theirs: int  # by agent2


@pytest.fixture
async def desk_site(tmp_path: Path) -> AsyncIterator[DeskSite]:
    base = load_settings(None, env={"IVR_AGENT_WEB_SESSION_KEY": "e2e" * 16})
    settings = dataclasses.replace(
        base, storage=dataclasses.replace(base.storage, database=str(tmp_path / "desk.db"))
    )
    db = await Db.open(tmp_path / "desk.db")
    now = time.time()
    hashed = hash_password(PASSWORD, n=2**10)
    for name in ("agent1", "agent2"):
        await users.add_user(db, name, users.Role.AGENT, hashed, now)
    ids = []
    for call_id, agent, category, ago in (
        ("1795000000.70", "agent1", "宽带故障", 2 * 3600),
        ("1795000000.69", "agent1", "话费争议", 2 * 86400),
        ("1795000000.71", "agent2", "<b>账单</b>", 3600),
    ):
        async with db.write() as conn:  # the call the complaint was filed on
            await conn.execute(
                "INSERT INTO calls (call_id, state, caller_number, agent, started_at, ended_at, "
                "updated_at) VALUES (?, 'ended', ?, ?, ?, ?, ?)",
                (call_id, CALLER, agent, utc_text(now - ago - 300), utc_text(now - ago),
                 utc_text(now - ago)),
            )  # fmt: skip
        complaint = await complaints.add(
            db, call_id=call_id, caller_number=CALLER, agent=agent, category=category,
            steps=STEPS, promised_at=now + 86400, status=Status.OPEN, callback_id=None,
            by=agent, at=now - ago,
        )  # fmt: skip
        ids.append(complaint)
    desk = Desk()
    desk.db = db
    desk_task = asyncio.create_task(desk.run())
    # agent1 answers the caller: the pop (with the caller's open complaints) goes to agent1.
    call = Call(
        call_id=CID, state=CallState.CONNECTED, started_at=now, updated_at=now,
        caller_number=CALLER, caller_name="张伟", agent="agent1",
    )  # fmt: skip
    event = AgentConnect(
        at=now, uniqueid=CID, linkedid=CID, dest_uniqueid="d", dest_linkedid=CID,
        queue="support", member_name="agent1",
    )  # fmt: skip
    desk.observe(CallChange(call, CallState.AGENT_RINGING, CallState.CONNECTED, False, event))
    deps = WebDeps(db=db, root=RecordingsRoot(tmp_path), settings=settings, desk=desk)
    server = WebServer(create_app(deps), "127.0.0.1", 0)
    server.bind()
    task = asyncio.create_task(server.serve())
    try:
        yield DeskSite(server.url, db, *ids)
    finally:
        server.stop()
        await asyncio.wait_for(task, 10)
        desk_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await desk_task
        await db.close()


async def test_agent_follows_up_a_complaint(
    browser: Browser, desk_site: DeskSite, tmp_path: Path
) -> None:
    context = await browser.new_context(bypass_csp=True, viewport={"width": 1300, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{desk_site.url}/login?next=/desk")
    await page.fill("#name", "agent1")
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_url(f"{desk_site.url}/desk")
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.reload()
    mine = f"#open-items li[data-complaint-id='{desk_site.mine}']"
    theirs = f"#open-items li[data-complaint-id='{desk_site.theirs}']"
    await page.wait_for_selector(mine)
    assert "宽带故障" in await page.inner_text(mine)
    assert await page.inner_text(f"{mine} .status") == "待处理"
    assert "<b>账单</b>" in await page.inner_text(theirs)  # as text, not markup
    assert await page.locator("#open-items b").count() == 0

    # Open mine: its steps and its history (filed), and only the moves the rules allow.
    await page.click(f"{mine} button.follow-up")
    await page.wait_for_selector("#follow-up:not([hidden]) #fu-history li")
    assert "登记" in await page.inner_text("#fu-history")
    assert "线路故障" in str(await page.text_content("#fu-steps"))  # in a closed <details>
    options = await page.eval_on_selector_all("#fu-status option", "os => os.map(o => o.value)")
    assert options == ["in_progress", "awaiting_callback", "resolved", "closed"]

    await page.select_option("#fu-status", "resolved")
    await page.fill("#fu-form textarea[name=note]", "已修复,用户确认可以上网")
    await page.click("#fu-submit")
    await page.wait_for_selector("#fu-history li:nth-child(2)")
    assert "已解决" in await page.inner_text("#fu-history li:nth-child(2)")
    assert "用户确认可以上网" in await page.inner_text("#fu-history li:nth-child(2)")
    assert "投诉状态已更新" in await page.inner_text("#fu-message")
    assert await page.inner_text(f"{mine} .status") == "已解决"
    options = await page.eval_on_selector_all("#fu-status option", "os => os.map(o => o.value)")
    assert options == ["in_progress", "closed"]
    stored = await complaints.get(desk_site.db.conn, desk_site.mine)
    assert stored is not None
    assert stored["status"] == "resolved"
    history = await complaints.history(desk_site.db.conn, desk_site.mine)
    assert [(h["action"], h["actor"], h["detail"].get("status")) for h in history] == [
        ("created", "agent1", "open"),
        ("status", "agent1", "resolved"),
    ]
    await page.screenshot(path=str(tmp_path / "desk-complaint.png"), full_page=True)
    assert errors == []

    # Filed by agent1 two days ago: the caller is on agent1's line now, so its history shows.
    old = f"#open-items li[data-complaint-id='{desk_site.old}']"
    await page.click(f"{old} button.follow-up")
    await page.wait_for_selector(f"#follow-up[data-complaint-id='{desk_site.old}']")
    await page.wait_for_selector("#fu-history li:has-text('话费争议')")
    assert await page.locator("#fu-history li.unavailable").count() == 0
    await page.select_option("#fu-status", "in_progress")
    await page.click("#fu-submit")
    await page.wait_for_selector(f"{old} .status:has-text('处理中')")
    await page.wait_for_selector("#fu-message:has-text('投诉状态已更新')")
    moved = await complaints.get(desk_site.db.conn, desk_site.old)
    assert moved is not None
    assert moved["status"] == "in_progress"

    # The same caller's complaint filed by agent2: the caller rang back and reached agent1, who
    # follows it up (the handbook's promise to the caller does not depend on who filed it).
    await page.click(f"{theirs} button.follow-up")
    await page.wait_for_selector(f"#follow-up[data-complaint-id='{desk_site.theirs}']")
    await page.wait_for_selector("#fu-history li")
    await page.select_option("#fu-status", "closed")
    await page.click("#fu-submit")
    await page.wait_for_selector(f"{theirs} .status:has-text('已关闭')")
    assert errors == []
    closed = await complaints.get(desk_site.db.conn, desk_site.theirs)
    assert closed is not None
    assert closed["status"] == "closed"
    last = (await complaints.history(desk_site.db.conn, desk_site.theirs))[-1]
    assert (last["actor"], last["detail"].get("status")) == ("agent1", "closed")
    await context.close()
