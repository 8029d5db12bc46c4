"""Working callbacks in headless Chromium, against the real web server and desk over a tmp
database (no PBX). An agent sees the open callbacks without numbers, claims the overdue one, sees
its number, marks it done with a note; another agent's claim shows as taken, never its number; a
claim someone else made first gets a clear message. The supervisor console shows it closed by
that agent, releases another agent's claim and cancels one (a cancel needs a note)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page

from ivr_agent.config import load_settings
from ivr_agent.desk import Desk
from ivr_agent.domain.complaints import Status
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store import callbacks, complaints, users
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.passwords import hash_password
from ivr_agent.web.server import WebServer

HOUR = 3600.0
PASSWORD = "call-them-back-42"
BOSS = "值班主管"
LATE, THEIRS, LATER, FRESH = "13912345678", "13700000002", "13600000003", "13500000004"


@dataclass
class CallbackSite:
    url: str
    db: Db
    late: int  # callback ids: overdue, from a complaint
    theirs: int  # claimed by agent2
    later: int  # due tomorrow
    complaint: int


@pytest.fixture
async def cb_site(tmp_path: Path) -> AsyncIterator[CallbackSite]:
    base = load_settings(None, env={"IVR_AGENT_WEB_SESSION_KEY": "e2e" * 16})
    settings = dataclasses.replace(
        base, storage=dataclasses.replace(base.storage, database=str(tmp_path / "cb.db"))
    )
    db = await Db.open(tmp_path / "cb.db")
    now = time.time()
    hashed = hash_password(PASSWORD, n=2**10)
    for name, role in (("agent1", "agent"), ("agent2", "agent"), (BOSS, "supervisor")):
        await users.add_user(db, name, users.Role(role), hashed, now)
    ids = []
    for number, reason, due, note in (
        (LATE, "complaint", now - HOUR, "宽带故障,<b>回访</b>维修结果"),
        (THEIRS, "after_hours", now - 2 * HOUR, ""),
        (LATER, "after_hours", now + 20 * HOUR, ""),
    ):
        added = await callbacks.add_callback(
            db, call_id="1795000000.5", caller_number=number, reason=reason, due_at=due,
            note=note, created_by="agent2", at=now - 3 * HOUR,
        )  # fmt: skip
        ids.append(added)
    complaint = await complaints.add(
        db, call_id="1795000000.5", caller_number=LATE, agent="agent2", category="宽带故障",
        steps=("没有网", "", "", "", ""), promised_at=now, status=Status.AWAITING_CALLBACK,
        callback_id=ids[0], by="agent2", at=now - 3 * HOUR,
    )  # fmt: skip
    async with db.write() as conn:
        await callbacks.claim(conn, ids[1], agent="agent2", at=now - HOUR)
    desk = Desk()
    desk.db = db
    desk_task = asyncio.create_task(desk.run())
    deps = WebDeps(db=db, root=RecordingsRoot(tmp_path), settings=settings, desk=desk)
    server = WebServer(create_app(deps), "127.0.0.1", 0)
    server.bind()
    task = asyncio.create_task(server.serve())
    try:
        yield CallbackSite(server.url, db, *ids, complaint)
    finally:
        server.stop()
        await asyncio.wait_for(task, 10)
        desk_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await desk_task
        await db.close()


async def rows(db: Db, sql: str) -> list[tuple[object, ...]]:
    async with db.conn.execute(sql) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def signed_in(
    browser: Browser, url: str, name: str, path: str, errors: list[str]
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(bypass_csp=True, viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/login?next={path}")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_url(f"{url}{path}")

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.reload()  # watched from a fresh load (the sign-in page is not the subject)
    return context, page


async def test_agent_claims_and_closes_a_callback(
    browser: Browser, cb_site: CallbackSite, tmp_path: Path
) -> None:
    errors: list[str] = []
    context, page = await signed_in(browser, cb_site.url, "agent1", "/desk", errors)
    late = f"#callbacks li[data-callback-id='{cb_site.late}']"
    theirs = f"#callbacks li[data-callback-id='{cb_site.theirs}']"
    later = f"#callbacks li[data-callback-id='{cb_site.later}']"
    await page.wait_for_selector(f"{late} button.claim")
    listing = await page.inner_text("#callbacks")
    for number in (LATE, THEIRS, LATER):
        assert number not in listing  # nobody's number before a claim
    assert "已逾期" in await page.inner_text(late)
    assert await page.inner_text(f"{late} .reason") == f"#{cb_site.late} 投诉"
    assert await page.get_attribute(late, "class") == "callback overdue"
    assert "已被认领: agent2" in await page.inner_text(theirs)
    assert await page.locator(f"{theirs} button").count() == 0

    # Claim the overdue one: its number, note (as text) and complaint show, with the actions.
    await page.click(f"{late} button.claim")
    await page.wait_for_selector(f"{late}.mine .number")
    assert await page.inner_text(f"{late} .number") == LATE
    assert await page.inner_text(f"{late} .note") == "宽带故障,<b>回访</b>维修结果"
    assert await page.locator("#callbacks b").count() == 0
    assert await page.inner_text(f"{late} .complaint") == f"关联投诉 #{cb_site.complaint}"
    assert "已认领回访" in await page.inner_text("#cb-message")
    assert await page.locator("#callbacks li.callback").first.get_attribute(
        "data-callback-id"
    ) == str(cb_site.late)  # mine first  # fmt: skip
    assert THEIRS not in await page.inner_text("#callbacks")

    # Cancel needs a note; done with one.
    await page.click(f"{late} button.cancel")
    await page.wait_for_selector("#cb-message[data-kind=error]:has-text('取消回访请填写原因')")
    await page.fill(f"{late} textarea.cb-note", "已回电,用户确认网络恢复")
    await page.click(f"{late} button.done")
    await page.wait_for_selector("#cb-message[data-kind=ok]:has-text('回访已完成')")
    await page.wait_for_selector(late, state="detached")
    await page.screenshot(path=str(tmp_path / "desk-callbacks.png"), full_page=True)
    assert errors == []
    done = await callbacks.get_callback(cb_site.db.conn, cb_site.late)
    assert done is not None
    assert (done["status"], done["closed_by"], done["assigned_to"]) == ("done", "agent1", "agent1")
    assert done["note"] == "宽带故障,<b>回访</b>维修结果\n已回电,用户确认网络恢复"
    audited = await rows(
        cb_site.db, "SELECT action, actor, detail FROM audit_log WHERE action LIKE 'callback_%'"
    )
    assert [(a, b, json.loads(str(d))["id"]) for a, b, d in audited] == [
        ("callback_claim", "agent1", cb_site.late),
        ("callback_done", "agent1", cb_site.late),
    ]

    # Someone else claims the later one while this page shows it: a clear message, then taken.
    async with cb_site.db.write() as conn:
        await callbacks.claim(conn, cb_site.later, agent="agent2", at=time.time())
    await page.click(f"{later} button.claim")
    await page.wait_for_selector("#cb-message[data-kind=error]:has-text('已被其他坐席认领')")
    assert "409" in await page.inner_text("#cb-message")
    await page.wait_for_selector(f"{later}.taken")
    assert LATER not in await page.inner_text("#callbacks")
    assert all("409" in e for e in errors)  # only the browser's note of the refused request
    await context.close()

    # The supervisor console: closed by agent1, with the note; agent2's claims shown.
    errors.clear()
    context, page = await signed_in(browser, cb_site.url, BOSS, "/supervisor", errors)
    await page.wait_for_selector("body[data-loaded=true]")
    closed = f"#cb-closed tbody tr[data-callback-id='{cb_site.late}']"
    await page.wait_for_selector(closed)
    text = await page.inner_text(closed)
    for part in (LATE, "已完成", "agent1", "已回电,用户确认网络恢复"):
        assert part in text, part
    assert await page.inner_text(f"{closed} td:nth-child(3)") == "投诉"
    assert await page.inner_text(f"{closed} td:nth-child(5)") == "agent1"  # closed by
    theirs_row = f"#cb-table tbody tr[data-callback-id='{cb_site.theirs}']"
    assert "agent2" in await page.inner_text(f"{theirs_row} td:nth-child(6)")
    assert await page.get_attribute(theirs_row, "class") == "overdue claimed"

    # Release agent2's claim; cancel the other (a note is required).
    await page.click(f"{theirs_row} button.release")
    await page.wait_for_selector("#callbacks .msg[data-kind=ok]:has-text('回访已释放')")
    await page.wait_for_selector(f"{theirs_row}:not(.claimed)")
    assert await page.locator(f"{theirs_row} button.release").count() == 0
    later_row = f"#cb-table tbody tr[data-callback-id='{cb_site.later}']"
    await page.click(f"{later_row} button.cancel")
    await page.wait_for_selector("#callbacks .msg[data-kind=error]:has-text('取消回访请填写原因')")
    await page.fill(f"{later_row} input.note", "用户来电说不用回访了")
    await page.click(f"{later_row} button.cancel")
    await page.wait_for_selector(f"#cb-closed tbody tr[data-callback-id='{cb_site.later}']")
    assert await page.locator(later_row).count() == 0
    cancelled = await page.inner_text(f"#cb-closed tbody tr[data-callback-id='{cb_site.later}']")
    assert "已取消" in cancelled
    assert BOSS in cancelled
    await page.screenshot(path=str(tmp_path / "supervisor-callbacks.png"), full_page=True)
    assert errors == []
    assert await rows(cb_site.db, "SELECT id, status, closed_by, assigned_to FROM callbacks") == [
        (cb_site.late, "done", "agent1", "agent1"),
        (cb_site.theirs, "open", "", ""),
        (cb_site.later, "cancelled", BOSS, "agent2"),
    ]
    await context.close()
