"""/api/recordings: search, audio with Range, path safety, one audit row per access, evidence."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ivr_agent.domain.recordings import recording_id_for
from ivr_agent.recordings import files
from ivr_agent.store import audit
from ivr_agent.store import recordings as rs
from tests.web.conftest import Site, login


async def audit_rows(site: Site, action: str | None = None) -> list[dict[str, Any]]:
    return await audit.entries(site.db.conn, action=action, limit=1000)


async def test_search_filters_pages_and_audits_each_list(
    site: Site, supervisor: httpx.AsyncClient
) -> None:
    ids = [await site.recording(n) for n in range(1, 8)]
    r = await supervisor.get("/api/recordings", params={"limit": 3})
    assert r.status_code == 200
    page = r.json()
    assert [i["call_id"] for i in page["items"]] == ids[::-1][:3]
    assert "path" not in page["items"][0]
    assert page["items"][0]["status"] == "complete"
    rest = (await supervisor.get("/api/recordings", params={"cursor": page["next"]})).json()
    assert [i["call_id"] for i in rest["items"]] == ids[::-1][3:]
    assert rest["next"] is None
    by_agent = (await supervisor.get("/api/recordings", params={"agent": "agent2"})).json()
    assert {i["agent"] for i in by_agent["items"]} == {"agent2"}
    assert len(by_agent["items"]) == 3
    by_caller = (await supervisor.get("/api/recordings", params={"caller": "13900000005"})).json()
    assert [i["call_id"] for i in by_caller["items"]] == [ids[4]]
    third = rest["items"][-3]["started_at"]  # call 3
    window = (await supervisor.get("/api/recordings", params={"from": third})).json()
    assert [i["call_id"] for i in window["items"]] == ids[::-1][:5]
    lists = await audit_rows(site, "list")
    assert len(lists) == 5  # one row per list request
    assert lists[-1]["actor"] == "李主管"
    assert lists[-1]["client"] == "127.0.0.1"
    assert lists[-1]["detail"]["ids"] == [i["recording_id"] for i in page["items"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"disposition": "happy"}, "disposition"),
        ({"status": "lost"}, "status"),
        ({"cursor": "../../x"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"evidence": "maybe"}, "evidence"),
    ],
)
async def test_bad_search_is_a_clear_400(
    supervisor: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    r = await supervisor.get("/api/recordings", params=params)
    assert r.status_code in (400, 422)
    assert r.json()["error"] == "bad_request"
    assert field in r.json()["message"]


async def play_url(client: httpx.AsyncClient, rid: str, action: str = "play") -> str:
    r = await client.post(f"/api/recordings/{rid}/access", json={"action": action})
    assert r.status_code == 201, r.text
    return str(r.json()["url"])


async def test_audio_range_requests(site: Site, supervisor: httpx.AsyncClient) -> None:
    call_id = await site.recording(1, seconds=3.0)
    rid = recording_id_for(call_id)
    data = (site.root / f"{call_id}.wav").read_bytes()
    url = await play_url(supervisor, rid)
    whole = await supervisor.get(url)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(len(data))
    row = await rs.get(site.db.conn, rid)
    assert row is not None
    assert whole.headers["etag"] == f'"{row.sha256}"'
    part = await supervisor.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert part.content == data[100:200]
    tail = await supervisor.get(url, headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, data[-10:])
    seek = await supervisor.get(url, headers={"Range": f"bytes={len(data) // 2}-"})
    assert seek.content == data[len(data) // 2 :]
    past = await supervisor.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(data)}"
    assert past.json()["error"] == "range_not_satisfiable"
    head = await supervisor.head(url)
    assert (head.status_code, head.content) == (200, b"")
    # The whole playback, all its Range requests included, is one audited access.
    plays = await audit_rows(site, "play")
    assert len(plays) == 1
    assert plays[0]["recording_id"] == rid


async def test_download_and_untickted_access_are_audited(
    site: Site, supervisor: httpx.AsyncClient
) -> None:
    rid = recording_id_for(await site.recording(2))
    url = await play_url(supervisor, rid, "download")
    r = await supervisor.get(url)
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="1795000000.2.wav"'
    assert len(await audit_rows(site, "download")) == 1
    # A script without a ticket: each request is an access of its own.
    for _ in range(2):
        assert (await supervisor.get(f"/api/recordings/{rid}/audio")).status_code == 200
    # A ticket is bound to its recording and kind of access: elsewhere it counts for nothing.
    other = recording_id_for(await site.recording(3))
    stolen = url.replace(rid, other)
    assert (await supervisor.get(stolen)).status_code == 200
    plays = await audit_rows(site, "play")
    downloads = await audit_rows(site, "download")
    assert len(plays) == 2
    assert len(downloads) == 2


async def test_ticket_of_another_user_is_not_reused(
    site: Site, supervisor: httpx.AsyncClient
) -> None:
    from ivr_agent.store import users
    from ivr_agent.web.passwords import hash_password

    rid = recording_id_for(await site.recording(4))
    url = await play_url(supervisor, rid)
    await users.add_user(
        site.db, "王主管", users.Role.SUPERVISOR, hash_password("x" * 10, n=2**10), 0
    )
    async with site.client() as other:
        assert (await login(other, "王主管", "x" * 10)).status_code == 200
        assert (await other.get(url)).status_code == 200
    plays = await audit_rows(site, "play")
    assert [p["actor"] for p in plays] == ["王主管", "李主管"]


ESCAPES = [
    "..%2F..%2Fsecret.wav",
    "..%2fsecret.wav",
    "%2e%2e%2fsecret.wav",
    "%252e%252e%252fsecret.wav",
    "..%5C..%5Csecret.wav",
    "%2Fetc%2Fpasswd",
    "....%2F%2Fsecret.wav",
    "%00",
    "0123456789ABCDEF",
    "0123456789abcdef",  # well-formed but unknown
]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path os.open is called with while the test runs (the recordings folder's only
    way to the disk is files.py's os.open)."""
    seen: list[str] = []
    real: Callable[..., int] = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        seen.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", spy)
    return seen


@pytest.mark.parametrize("rid", ESCAPES)
async def test_ids_that_escape_are_404_and_touch_nothing(
    site: Site, supervisor: httpx.AsyncClient, opened: list[str], rid: str
) -> None:
    (site.root.parent / "secret.wav").write_bytes(b"RIFF secret")
    for suffix in ("", "/audio"):
        r = await supervisor.get(f"/api/recordings/{rid}{suffix}")
        assert r.status_code == 404, (rid, suffix, r.text)
        assert r.json()["error"] == "not_found"
    r = await supervisor.post(f"/api/recordings/{rid}/access", json={"action": "play"})
    assert r.status_code in (404, 405)
    assert opened == []


async def test_a_tampered_row_path_never_leaves_the_root(
    site: Site, supervisor: httpx.AsyncClient, opened: list[str]
) -> None:
    rid = recording_id_for(await site.recording(5))
    (site.root.parent / "secret.wav").write_bytes(b"RIFF secret")
    async with site.db.write() as conn:
        await conn.execute(
            "UPDATE recordings SET path = '../secret.wav' WHERE recording_id = ?", (rid,)
        )
    r = await supervisor.get(f"/api/recordings/{rid}/audio")
    assert r.status_code == 404
    assert not any("secret" in p for p in opened)


async def test_status_of_unplayable_recordings(site: Site, supervisor: httpx.AsyncClient) -> None:
    deleted = recording_id_for(await site.recording(6))
    assert await rs.tombstone(site.db, deleted, "retention", "retention 180 days", 0)
    missing = recording_id_for(await site.recording(7))
    os.unlink(site.root / "1795000000.7.wav")
    assert await rs.mark_missing(site.db, missing, 0)
    await site.recording(8)
    busy = recording_id_for("1795000000.8")
    async with site.db.write() as conn:
        await conn.execute(
            "UPDATE recordings SET status = 'recording' WHERE recording_id = ?", (busy,)
        )
    gone = await supervisor.get(f"/api/recordings/{deleted}/audio")
    assert gone.status_code == 410
    assert "retention 180 days" in gone.json()["message"]
    assert (await supervisor.get(f"/api/recordings/{missing}/audio")).status_code == 404
    assert (await supervisor.get(f"/api/recordings/{busy}/audio")).status_code == 409
    r = await supervisor.post(f"/api/recordings/{busy}/access", json={"action": "play"})
    assert r.status_code == 409
    meta = await supervisor.get(f"/api/recordings/{deleted}")
    assert meta.status_code == 200
    assert meta.json()["deleted_by"] == "retention"


async def test_access_needs_json_and_a_known_action(
    site: Site, supervisor: httpx.AsyncClient
) -> None:
    rid = recording_id_for(await site.recording(9))
    form = await supervisor.post(f"/api/recordings/{rid}/access", data={"action": "play"})
    assert form.status_code == 415
    odd = await supervisor.post(f"/api/recordings/{rid}/access", json={"action": "delete"})
    assert odd.status_code == 422
    assert odd.json()["error"] == "bad_request"
    assert await audit_rows(site, "play") == []


async def test_a_crash_is_a_json_500(
    site: Site, supervisor: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*_a: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rs, "search", boom)
    r = await supervisor.get("/api/recordings")
    assert r.status_code == 500
    assert r.json() == {"error": "server_error", "message": "internal error"}


# -- evidence -----------------------------------------------------------------------------------


async def test_agent_flags_the_call_they_are_on(site: Site, agent: httpx.AsyncClient) -> None:
    call_id = await site.recording(11)
    no_call = await agent.post("/api/evidence", json={"kind": "threat", "reason": "x"})
    assert no_call.status_code == 404
    site.live["agent1"] = call_id
    r = await agent.post(
        "/api/evidence", json={"kind": "extortion", "reason": "来电者索要十万元，否则报复"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["call_id"], body["kind"], body["flagged_by"]) == (call_id, "extortion", "agent1")
    assert body["recording_id"] == recording_id_for(call_id)
    row = await rs.get_by_call(site.db.conn, call_id)
    assert row is not None
    assert row.evidence
    flags = await audit_rows(site, "flag_evidence")
    assert len(flags) == 1
    assert flags[0]["detail"]["reason"].startswith("来电者")


async def test_agent_may_flag_only_their_calls(site: Site, agent: httpx.AsyncClient) -> None:
    mine, theirs = await site.recording(12), await site.recording(13)
    await site.calls_row(mine, "agent1")
    await site.calls_row(theirs, "agent2")
    ok = await agent.post(
        "/api/evidence", json={"call_id": mine, "kind": "abuse", "reason": "辱骂"}
    )
    assert ok.status_code == 201
    no = await agent.post("/api/evidence", json={"call_id": theirs, "kind": "abuse", "reason": "x"})
    assert no.status_code == 403


async def test_evidence_errors(site: Site, supervisor: httpx.AsyncClient) -> None:
    call_id = await site.recording(14)
    cases = [
        ({"kind": "threat", "reason": "x"}, 400),  # a supervisor must name the call
        ({"call_id": "1.999", "kind": "threat", "reason": "x"}, 404),
        ({"call_id": call_id, "kind": "rude", "reason": "x"}, 400),
        ({"call_id": call_id, "kind": "threat", "reason": "  "}, 400),
    ]
    for body, status in cases:
        r = await supervisor.post("/api/evidence", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["message"]
    assert await audit_rows(site, "flag_evidence") == []
    await rs.tombstone(site.db, recording_id_for(call_id), "retention", "r", 0)
    late = await supervisor.post(
        "/api/evidence", json={"call_id": call_id, "kind": "threat", "reason": "x"}
    )
    assert late.status_code == 409
    form = await supervisor.post("/api/evidence", data={"call_id": call_id})
    assert form.status_code == 415
    async with site.client() as ops:
        await login(ops, "ops")
        r = await ops.post(
            "/api/evidence", json={"call_id": call_id, "kind": "threat", "reason": "x"}
        )
        assert r.status_code == 403
