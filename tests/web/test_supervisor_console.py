"""The supervisor console page: supervisors only (agents get the forbidden page, anonymous users
the sign-in), zh-CN by default and English on request, strict CSP, nav to and from recordings."""

from __future__ import annotations

import re

import httpx

from ivr_agent.domain.complaints import ALLOWED, Status
from ivr_agent.web.i18n import MESSAGES
from tests.web.conftest import Site
from tests.web.test_pages import data_block

ZH, EN = MESSAGES["zh-CN"], MESSAGES["en"]


async def test_console_needs_a_signed_in_supervisor(site: Site, agent: httpx.AsyncClient) -> None:
    async with site.client() as anon:
        r = await anon.get("/supervisor")
        assert (r.status_code, r.headers["location"]) == (303, "/login?next=/supervisor")
    r = await agent.get("/supervisor")
    assert r.status_code == 403
    assert ZH["sv_forbidden"] in r.text
    assert f"<title>{ZH['title_supervisor']} · 客服热线</title>" in r.text
    assert "supervisor.js" not in r.text
    en = await agent.get("/supervisor", params={"lang": "en"})
    assert en.status_code == 403
    assert EN["sv_forbidden"] in en.text


async def test_console_for_a_supervisor_in_chinese_and_english(
    site: Site, supervisor: httpx.AsyncClient
) -> None:
    page = await supervisor.get("/supervisor")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert f"<title>{ZH['title_supervisor']} · 客服热线</title>" in page.text
    assert '<b id="me">李主管</b>' in page.text
    for key in ("sv_blacklist", "sv_callbacks", "sv_search", "sv_roster", "sv_alerts"):
        assert ZH[key] in page.text
    assert data_block(page.text, "i18n") == ZH
    assert data_block(page.text, "config") == {"lang": "zh-CN", "timezone": "Asia/Shanghai"}
    assert '<script src="/static/supervisor.js"></script>' in page.text
    assert '<a id="nav-recordings" href="/recordings">' in page.text
    en = await supervisor.get("/supervisor", params={"lang": "en"})
    assert '<html lang="en">' in en.text
    assert "<h1>Supervisor console" in en.text
    assert data_block(en.text, "i18n") == EN
    again = await supervisor.get("/supervisor")  # the choice is remembered
    assert '<html lang="en">' in again.text


async def test_console_sends_the_strict_csp_and_no_inline_script(
    supervisor: httpx.AsyncClient,
) -> None:
    r = await supervisor.get("/supervisor")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
    for attrs, body in scripts:  # data blocks or files, never code inline
        assert 'type="application/json"' in attrs or (" src=" in attrs and not body)
    assert not re.search(r"\son[a-z]+=", r.text)  # no onclick=... handlers either


async def test_recordings_page_links_to_the_console(supervisor: httpx.AsyncClient) -> None:
    r = await supervisor.get("/recordings")
    assert '<a id="nav-supervisor" href="/supervisor">' in r.text
    assert ZH["title_supervisor"] in r.text


async def test_console_assets_are_served(site: Site) -> None:
    async with site.client() as c:
        for name in ("supervisor.js", "supervisor.css"):
            r = await c.get(f"/static/{name}")
            assert r.status_code == 200, name
        js = (await c.get("/static/supervisor.js")).text
        assert "innerHTML" not in js
        assert "insertAdjacentHTML" not in js


async def test_desk_page_carries_the_complaint_rules(site: Site, agent: httpx.AsyncClient) -> None:
    """The desk's follow-up offers the moves domain/complaints.py allows, from one source."""
    page = await agent.get("/desk")
    assert page.status_code == 200
    moves = data_block(page.text, "complaint-rules")
    assert moves == {s.value: [t.value for t in Status if t in ALLOWED[s]] for s in Status}
    assert moves["closed"] == []
    assert 'id="follow-up" hidden' in page.text
