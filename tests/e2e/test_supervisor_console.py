"""The supervisor console in headless Chromium against the real web server over a tmp database (no
PBX): a supervisor approves and rejects blacklist proposals, sees the overdue callback
highlighted, searches a subscriber (audited), acknowledges an alert, approves a roster swap (on
duty follows), switches to English; a decision someone else already took gets a clear message."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page

from ivr_agent.config import load_settings
from ivr_agent.domain.roster import Agent, Role, Shift
from ivr_agent.domain.roster_changes import Swap, new_request
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store import blacklist, customers, users
from ivr_agent.store import roster as roster_store
from ivr_agent.store import roster_ops as ops
from ivr_agent.store.alerts import Alert, raise_alert
from ivr_agent.store.callbacks import add_callback
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.passwords import hash_password
from ivr_agent.web.server import WebServer
from tests.e2e.conftest import PASSWORD, SUPERVISOR

HOUR = 3600.0
ABUSER, PRANKSTER = "13700000001", "13700000002"
LATE, LATER = "13600000001", "13600000002"
SUBSCRIBER = "13800138000"
EVIL = "<img src=x onerror=alert(1)>辱骂坐席"  # typed by an agent: must show as text


@dataclass
class Console:
    url: str
    db: Db
    abuser: int  # blacklist entry ids
    prankster: int
    change: int  # the pending roster swap


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    base = load_settings(None, env={"IVR_AGENT_WEB_SESSION_KEY": "e2e" * 16})
    settings = dataclasses.replace(
        base,
        storage=dataclasses.replace(base.storage, database=str(tmp_path / "console.db")),
        roster=dataclasses.replace(base.roster, leader_gap="warning"),
    )
    db = await Db.open(tmp_path / "console.db")
    now = time.time()
    hashed = hash_password(PASSWORD, n=2**10)
    await users.add_user(db, SUPERVISOR, users.Role.SUPERVISOR, hashed, now)
    abuser = await blacklist.propose(db, ABUSER, EVIL, by="agent1", role="agent", at=now - 600)
    prankster = await blacklist.propose(db, PRANKSTER, "恶作剧", by="agent2", role="agent", at=now)
    for number, due in ((LATE, now - HOUR), (LATER, now + 20 * HOUR)):
        await add_callback(
            db, call_id=f"1795000000.{number[-1]}", caller_number=number, reason="complaint",
            due_at=due, note="回访投诉处理结果", created_by="agent1", at=now - 2 * HOUR,
        )  # fmt: skip
    await customers.ensure(db, SUBSCRIBER, "张三", now)

    conn = db.conn
    for n, queues in ((1, ("support",)), (2, ("support",)), (4, ("support", "leaders"))):
        agent = Agent(f"agent{n}", f"Local/agent{n}@lab-agents/n", queues)
        await roster_store.add_agent(conn, agent, by="test", at=now)
    async with roster_store.transaction(conn):
        mine, other, _ = await roster_store.insert_shifts(
            conn,
            [
                Shift("agent1", now - HOUR, now + HOUR),
                Shift("agent2", now + 20 * HOUR, now + 21 * HOUR),
                Shift("agent4", now - HOUR, now + HOUR, Role.LEADER),
            ],
            by="test",
            at=now,
        )
    req = new_request("agent1", Swap(mine, other), "家里有事,想和 agent2 换班", now)
    stored, _ = await ops.request_change(conn, req, ZoneInfo("Asia/Shanghai"), leader_gap="warning")
    assert stored.id is not None

    for kind, call_id, detail in (
        ("long_call", "1795000000.9", "1900 s"),
        ("private_call", "1795000000.8", "agent2 -> 139****0000"),
    ):
        assert await raise_alert(db, Alert(kind, call_id, "agent1", now - 60, detail))
    deps = WebDeps(db=db, root=RecordingsRoot(tmp_path), settings=settings)
    server = WebServer(create_app(deps), "127.0.0.1", 0)
    server.bind()
    task = asyncio.create_task(server.serve())
    try:
        yield Console(server.url, db, abuser, prankster, stored.id)
    finally:
        server.stop()
        await asyncio.wait_for(task, 10)
        await db.close()


async def rows(db: Db, sql: str) -> list[tuple[object, ...]]:
    async with db.conn.execute(sql) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def sign_in(page: Page, url: str) -> None:
    await page.goto(f"{url}/supervisor")
    assert page.url.endswith("/login?next=/supervisor")
    await page.fill("#name", SUPERVISOR)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_url(f"{url}/supervisor")
    await page.wait_for_selector("body[data-loaded=true]")


async def test_supervisor_console(browser: Browser, console: Console, tmp_path: Path) -> None:
    context = await browser.new_context(bypass_csp=True, viewport={"width": 1400, "height": 1100})
    page = await context.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    await sign_in(page, console.url)
    # Watched from a fresh load of the console (the sign-in page is not the subject here).
    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.reload()
    await page.wait_for_selector("body[data-loaded=true]")
    assert await page.title() == "主管控制台 · 客服热线"
    await page.screenshot(path=str(tmp_path / "supervisor-console-before.png"), full_page=True)

    # Blacklist: two proposals, the agent-typed reason shown as text (not as an <img>).
    pending = "#bl-pending tbody"
    abuser = f"{pending} tr[data-entry-id='{console.abuser}']"
    assert await page.locator(f"{pending} tr").count() == 2
    assert await page.inner_text(f"{abuser} td:nth-child(2)") == EVIL
    assert await page.locator("#blacklist img").count() == 0
    assert "agent1" in await page.inner_text(abuser)
    await page.fill(f"{abuser} input.note", "录音已核实")
    await page.click(f"{abuser} button.approve")
    await page.wait_for_selector(f"#bl-active tbody tr[data-entry-id='{console.abuser}']")
    assert await page.locator(abuser).count() == 0  # moved from proposals to the active list
    assert "录音已核实" in await page.inner_text("#bl-active tbody")
    assert "已批准加入黑名单" in await page.inner_text("#blacklist .msg")
    prankster = f"{pending} tr[data-entry-id='{console.prankster}']"
    await page.fill(f"{prankster} input.note", "证据不足")
    await page.click(f"{prankster} button.reject")
    await page.wait_for_selector(f"{pending} td.empty")
    assert await page.locator("#bl-active tbody tr").count() == 1
    assert await rows(console.db, "SELECT number, status, decided_by, decision_note FROM blacklist "
                      "ORDER BY id") == [
        (ABUSER, "approved", SUPERVISOR, "录音已核实"),
        (PRANKSTER, "rejected", SUPERVISOR, "证据不足"),
    ]  # fmt: skip

    # Callbacks: both open ones listed, the overdue one highlighted and badged.
    assert await page.locator("#cb-table tbody tr").count() == 2
    late = page.locator("#cb-table tbody tr", has_text=LATE)
    assert await late.get_attribute("class") == "overdue"
    assert await late.locator(".badge").inner_text() == "已逾期"
    assert await page.locator("#cb-table tbody tr.overdue").count() == 1
    assert "投诉" in await late.inner_text()

    # Subscriber search: found and audited.
    await page.fill("#q", "1380013")
    await page.click("#search-button")
    await page.wait_for_selector(f"#customers tbody tr[data-number='{SUBSCRIBER}']")
    assert "张三" in await page.inner_text("#customers tbody")
    searches = await rows(console.db, "SELECT actor, detail FROM audit_log "
                          "WHERE action = 'customer_search'")  # fmt: skip
    assert [(a, json.loads(str(d))["q"]) for a, d in searches] == [(SUPERVISOR, "1380013")]
    await page.fill("#q", "没有这个人")
    await page.click("#search-button")
    await page.wait_for_selector("#customers tbody td.empty")
    assert "没有找到客户档案" in await page.inner_text("#search-box .msg")

    # Alerts: the long call acknowledged with a note (who and when shown after).
    long_call = page.locator("#alert-table tbody tr", has_text="1795000000.9")
    assert "通话时间过长" in await long_call.inner_text()
    assert "1900 s" in await long_call.inner_text()
    assert "占用热线打私人电话" in await page.inner_text("#alert-table tbody")
    await long_call.locator("input.note").fill("已提醒坐席")
    await long_call.locator("button.ack").click()
    await page.wait_for_selector("#alert-table tbody tr.acknowledged:has-text('1795000000.9')")
    assert SUPERVISOR in await long_call.inner_text()
    assert await long_call.locator("button.ack").count() == 0
    assert await page.locator("#alert-table tbody button.ack").count() == 1  # the other one
    assert "告警已标记为已处理" in await page.inner_text("#alerts .msg")
    assert await rows(console.db, "SELECT kind, acknowledged_by FROM alerts ORDER BY id") == [
        ("long_call", SUPERVISOR),
        ("private_call", None),
    ]

    # On duty.
    assert "agent4" in await page.inner_text("#leader")
    assert await page.locator("#onduty tbody tr[data-agent='agent1']").count() == 1

    # The roster swap: approved with a note, then on duty follows at once.
    change = f"#rc-table tbody tr[data-change-id='{console.change}']"
    assert "换班" in await page.inner_text(change)
    what = (await page.locator(f"{change} td").all_inner_texts())[2]  # whose shifts, not ids
    assert "agent1" in what
    assert "agent2" in what
    assert "⇄" in what
    assert "家里有事" in await page.inner_text(change)
    await page.fill(f"{change} input.note", "同意")
    await page.click(f"{change} button.approve")
    await page.wait_for_selector("#rc-table tbody td.empty")
    assert "已批准排班变更" in await page.inner_text("#roster .msg")
    await page.wait_for_selector("#onduty tbody tr[data-agent='agent2']")
    assert await page.locator("#onduty tbody tr[data-agent='agent1']").count() == 0
    assert await rows(
        console.db, "SELECT status, decided_by, decision_note FROM roster_changes"
    ) == [("approved", SUPERVISOR, "同意")]
    await page.screenshot(path=str(tmp_path / "supervisor-console.png"), full_page=True)
    assert errors == []

    # Someone else decides a proposal while the page shows it: the click gets a clear message.
    await blacklist.propose(console.db, "13700000003", "骚扰", by="agent1", role="agent", at=0)
    await page.click("#blacklist button.refresh")
    row = f"{pending} tr:has-text('13700000003')"
    await page.wait_for_selector(row)
    entry = await page.get_attribute(row, "data-entry-id")
    await blacklist.decide(console.db, int(str(entry)), "rejected", "", by="x", role="supervisor",
                           at=time.time())  # fmt: skip
    await page.click(f"{row} button.approve")
    await page.wait_for_selector("#blacklist .msg[data-kind=error]:has-text('无法执行')")
    message = await page.inner_text("#blacklist .msg")
    assert "无法执行" in message
    assert "409" in message
    assert await page.locator(f"{row} button.approve").is_enabled()  # can be tried again
    assert all("409" in e for e in errors)  # only the browser's note of the refused request

    # The nav leads to the recordings and back; English on request.
    await page.click("#nav-recordings")
    await page.wait_for_url(f"{console.url}/recordings")
    await page.click("#nav-supervisor")
    await page.wait_for_url(f"{console.url}/supervisor")
    await page.click("#lang-switch")
    await page.wait_for_selector("h1:has-text('Supervisor console')")
    await page.wait_for_selector("body[data-loaded=true]")
    assert "Overdue" in await page.inner_text("#cb-table tbody tr.overdue")
    await context.close()
