"""Sign-in, sessions, tokens, roles, rate limit, CSRF posture, JSON errors."""

from __future__ import annotations

import time

import httpx

from ivr_agent.store import users
from tests.web.conftest import PASSWORD, Site, login


async def test_anonymous_gets_401_json(site: Site) -> None:
    async with site.client() as c:
        for path in ("/api/recordings", "/api/me", "/api/recordings/0123456789abcdef/audio"):
            r = await c.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"] == "unauthenticated"
            assert r.headers["www-authenticate"].startswith("Bearer")
        r = await c.post("/api/evidence", json={"kind": "threat", "reason": "x"})
        assert r.status_code == 401


async def test_login_sets_a_strict_httponly_session(site: Site) -> None:
    async with site.client() as c:
        r = await login(c, "李主管")
        assert r.status_code == 200
        assert r.json() == {"name": "李主管", "role": "supervisor", "agent": ""}
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/" in cookie
        assert "secure" not in cookie  # web.secure_cookies is off by default (loopback HTTP)
        assert (await c.get("/api/me")).json()["name"] == "李主管"
        assert (await c.post("/api/logout")).status_code == 204
        assert (await c.get("/api/me")).status_code == 401


async def test_wrong_password_and_unknown_user_look_the_same(site: Site) -> None:
    async with site.client() as c:
        a = await login(c, "李主管", "wrong password")
        b = await login(c, "nobody", "wrong password")
        assert a.status_code == b.status_code == 401
        assert (
            a.json()
            == b.json()
            == {
                "error": "login_failed",
                "message": "wrong user name or password",
            }
        )


async def test_login_needs_json(site: Site) -> None:
    async with site.client() as c:
        form = await c.post("/api/login", data={"name": "李主管", "password": PASSWORD})
        assert form.status_code == 415
        assert form.json()["error"] == "unsupported_media_type"
        bad = await c.post(
            "/api/login", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 422
        assert bad.json()["error"] == "bad_request"
        empty = await c.post("/api/login", json={"name": "", "password": ""})
        assert empty.status_code == 422
        assert "name" in empty.json()["message"]


async def test_login_rate_limit(site: Site) -> None:
    async with site.client() as c:
        for _ in range(5):
            assert (await login(c, "李主管", "guess")).status_code == 401
        blocked = await login(c, "李主管")  # even the right password, for a while
        assert blocked.status_code == 429
        assert blocked.json()["error"] == "too_many_requests"
        assert 0 < int(blocked.headers["retry-after"]) <= 300
    site.deps.limiter.reset("user:李主管")
    site.deps.limiter.reset("ip:127.0.0.1")
    async with site.client() as c:
        assert (await login(c, "李主管")).status_code == 200


async def test_roles(site: Site, agent: httpx.AsyncClient, supervisor: httpx.AsyncClient) -> None:
    rid = "0123456789abcdef"
    for path in ("/api/recordings", f"/api/recordings/{rid}", f"/api/recordings/{rid}/audio"):
        r = await agent.get(path)
        assert r.status_code == 403, path
        assert r.json()["error"] == "forbidden"
    async with site.client() as ops:
        assert (await login(ops, "ops")).status_code == 200
        assert (await ops.get("/api/recordings")).status_code == 403
    assert (await supervisor.get("/api/recordings")).status_code == 200


async def test_password_change_and_disable_end_sessions(
    site: Site, supervisor: httpx.AsyncClient
) -> None:
    assert (await supervisor.get("/api/me")).status_code == 200
    await users.set_password(site.db, "李主管", "x", time.time())
    assert (await supervisor.get("/api/me")).status_code == 401
    async with site.client() as c:
        assert (await login(c, "agent1")).status_code == 200
        await users.set_disabled(site.db, "agent1", True, time.time())
        assert (await c.get("/api/me")).status_code == 401
        assert (await login(c, "agent1")).status_code == 401


async def test_forged_session_cookie_is_anonymous(site: Site) -> None:
    async with site.client() as c:
        c.cookies.set("ivr_session", "eyJ1aWQiOiAxLCAiZ2VuIjogMH0=.forged.sig")
        assert (await c.get("/api/me")).status_code == 401


async def test_bearer_tokens(site: Site) -> None:
    found = await users.by_name(site.db.conn, "李主管")
    assert found is not None
    await users.add_token(site.db, found[0], "ivr_supervisor-token", "script", time.time())
    async with site.client() as c:
        ok = await c.get(
            "/api/recordings", headers={"Authorization": "Bearer ivr_supervisor-token"}
        )
        assert ok.status_code == 200
        assert "set-cookie" not in ok.headers
        for header in ("Bearer nope", "Basic abc", "Bearer "):
            r = await c.get("/api/recordings", headers={"Authorization": header})
            assert r.status_code == 401, header


async def test_unknown_route_and_method_are_json(site: Site) -> None:
    async with site.client() as c:
        r = await c.get("/api/nothing")
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
        r = await c.put("/api/login", json={})
        assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")
