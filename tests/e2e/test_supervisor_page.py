"""A supervisor signs in, finds a recording, plays a 10-minute one and seeks to its end, plays the
compact Ogg one, downloads one, switches to English; every access is one audit row."""

from __future__ import annotations

import hashlib
from pathlib import Path

from playwright.async_api import Browser, Page, Request, Response

from ivr_agent.domain.recordings import recording_id_for
from ivr_agent.store import audit
from ivr_agent.store import recordings as rs
from tests.e2e.conftest import PASSWORD, SUPERVISOR, TEN_MINUTES, Site

AUDIO = "document.getElementById('audio')"


async def sign_in(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}/recordings")
    assert page.url.endswith("/login?next=/recordings")
    assert await page.title() == "登录 · 客服热线"  # zh-CN unless asked otherwise
    await page.fill("#name", SUPERVISOR)
    await page.fill("#password", "wrong password")
    await page.click("#sign-in")
    await page.wait_for_selector("#message:has-text('用户名或密码错误')")
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_url(f"{site.url}/recordings")
    await page.wait_for_selector("#results tbody tr")


def row(page: Page, call_id: str) -> str:
    return f"#results tbody tr[data-recording-id='{recording_id_for(call_id)}']"


async def test_search_play_seek_download(browser: Browser, site: Site, tmp_path: Path) -> None:
    # bypass_csp lets the test's own probes (wait_for_function) evaluate in the page; the
    # page's scripts are the same either way (tests/web checks the CSP header itself).
    context = await browser.new_context(accept_downloads=True, bypass_csp=True)
    page = await context.new_page()
    ranges: list[str] = []
    statuses: list[int] = []

    def on_request(request: Request) -> None:
        if "/audio" in request.url:
            ranges.append(request.headers.get("range", ""))

    def on_response(response: Response) -> None:
        if "/audio" in response.url:
            statuses.append(response.status)

    page.on("request", on_request)
    page.on("response", on_response)
    await sign_in(page, site)
    assert await page.locator("#results tbody tr").count() == 2

    # Search by caller number.
    await page.fill("input[name=caller]", "13800138000")
    await page.click("#search-button")
    await page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 1")
    long_row = row(page, site.ten_minutes)
    assert "600.0 秒" in await page.inner_text(long_row)

    # Play the 10-minute recording, then seek near its end: the browser fetches that part
    # with a Range request and goes on playing from there.
    await page.click(f"{long_row} button:has-text('播放')")
    await page.wait_for_function(f"{AUDIO}.currentTime > 0.5", timeout=10_000)
    assert await page.evaluate(f"{AUDIO}.duration") == TEN_MINUTES
    await page.evaluate(f"{AUDIO}.currentTime = 570")
    await page.wait_for_function(
        f"!{AUDIO}.seeking && {AUDIO}.currentTime > 570.5 && !{AUDIO}.paused", timeout=10_000
    )
    assert 206 in statuses
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges if r.startswith("bytes=")]
    assert max(starts) >= 560 * 16000  # a Range request for the part near the end

    # The compact format plays too.
    await page.fill("input[name=caller]", "")
    await page.click("#search-button")
    await page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 2")
    await page.click(f"{row(page, site.ogg)} button:has-text('播放')")
    await page.wait_for_function(
        f"{AUDIO}.src.includes('{recording_id_for(site.ogg)}') && {AUDIO}.currentTime > 1",
        timeout=10_000,
    )

    # Download: the file arrives whole, as recorded.
    async with page.expect_download() as info:
        await page.click(f"{row(page, site.ogg)} button:has-text('下载')")
    download = await info.value
    saved = tmp_path / "saved.ogg"
    await download.save_as(saved)
    stored = await rs.get_by_call(site.db.conn, site.ogg)
    assert stored is not None
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == stored.sha256
    assert download.suggested_filename == f"{site.ogg}.ogg"

    # English on request.
    await page.click("#lang-switch")
    await page.wait_for_selector("h1:has-text('Call recordings')")
    await page.wait_for_selector(f"{row(page, site.ogg)} button:has-text('Play')")
    await context.close()

    # One audit row per access: two playbacks (however many Range requests), one download.
    plays = await audit.entries(site.db.conn, action="play")
    assert [p["recording_id"] for p in plays] == [
        recording_id_for(site.ogg),
        recording_id_for(site.ten_minutes),
    ]
    assert len(ranges) > 2  # ...although the browser made several audio requests
    assert len(await audit.entries(site.db.conn, action="download")) == 1
    lists = await audit.entries(site.db.conn, action="list")
    assert len(lists) == 4  # page load, two searches, the English page's load
    assert {e["actor"] for e in plays + lists} == {SUPERVISOR}
