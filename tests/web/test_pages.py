"""The sign-in and recordings pages: zh-CN by default, English on request, safe headers."""

from __future__ import annotations

import dataclasses
import json
import re

import httpx

from ivr_agent.web.i18n import MESSAGES
from tests.web.conftest import Site


def data_block(html: str, block: str) -> dict[str, str]:
    m = re.search(rf'<script id="{block}" type="application/json">(.*?)</script>', html, re.S)
    assert m is not None
    loaded: dict[str, str] = json.loads(m.group(1))
    return loaded


async def test_login_page_is_chinese_by_default_and_english_on_request(site: Site) -> None:
    async with site.client() as c:
        zh = await c.get("/login")
        assert zh.status_code == 200
        assert '<html lang="zh-CN">' in zh.text
        assert "<title>登录 · 客服热线</title>" in zh.text
        assert data_block(zh.text, "i18n") == MESSAGES["zh-CN"]
        en = await c.get("/login", params={"lang": "en"})
        assert '<html lang="en">' in en.text
        assert ">Sign in</button>" in en.text
        assert "lang=en" in en.headers["set-cookie"]
        again = await c.get("/login")  # the choice is remembered
        assert '<html lang="en">' in again.text


async def test_pages_send_a_strict_csp(site: Site) -> None:
    async with site.client() as c:
        r = await c.get("/login")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert "<script>" not in r.text  # no inline script: data blocks and files only


async def test_recordings_page_needs_a_supervisor(
    site: Site, supervisor: httpx.AsyncClient
) -> None:
    async with site.client() as anon:
        r = await anon.get("/recordings")
        assert (r.status_code, r.headers["location"]) == (303, "/login?next=/recordings")
        assert (await anon.get("/")).headers["location"] == "/recordings"
    async with site.client() as agent:
        await agent.post("/api/login", json={"name": "agent1", "password": "correct horse battery"})
        r = await agent.get("/recordings")
        assert r.status_code == 403
        assert MESSAGES["zh-CN"]["err_forbidden"] in r.text
    page = await supervisor.get("/recordings")
    assert page.status_code == 200
    assert "通话录音" in page.text
    assert '<b id="me">李主管</b>' in page.text
    assert data_block(page.text, "config") == {"lang": "zh-CN", "timezone": "Asia/Shanghai"}
    assert '<option value="silent_line">无声电话</option>' in page.text


async def test_values_are_escaped(site: Site, supervisor: httpx.AsyncClient) -> None:
    settings = site.deps.settings
    site.deps.settings = dataclasses.replace(
        settings, site=dataclasses.replace(settings.site, name="<script>alert(1)</script>热线")
    )
    page = await supervisor.get("/recordings")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;热线" in page.text
    assert "<script>alert" not in page.text


async def test_static_assets(site: Site) -> None:
    async with site.client() as c:
        js = await c.get("/static/recordings.js")
        assert js.status_code == 200
        assert "javascript" in js.headers["content-type"]
        assert "textContent" in js.text
        assert "innerHTML" not in js.text.replace("never innerHTML", "")
        assert (await c.get("/static/../app.py")).status_code == 404
        assert (await c.get("/static/%2e%2e/app.py")).status_code == 404
