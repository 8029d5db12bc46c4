"""Callbacks are worked, not only listed: an agent on duty claims one and only then sees its
number; a second claimer gets 409; the claimer or a supervisor closes or releases it; every
change is audited; no refusal carries the caller's number."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from ivr_agent.domain.complaints import Status
from ivr_agent.domain.roster import Agent, Shift
from ivr_agent.rostering import Rostering
from ivr_agent.store import complaints, users
from ivr_agent.store import roster as roster_store
from ivr_agent.store.callbacks import add_callback
from ivr_agent.web import i18n
from ivr_agent.web.passwords import hash_password
from tests.web.conftest import PASSWORD, Site, login

HOUR = 3600.0
CALLER, OTHER = "13912345678", "13787654321"


@dataclass
class Work:
    site: Site
    late: int  # callback ids: overdue, from a complaint
    later: int  # due tomorrow, after hours
    complaint: int
    agent1: httpx.AsyncClient
    agent2: httpx.AsyncClient
    boss: httpx.AsyncClient

    async def audit(self) -> list[tuple[str, str, dict[str, object]]]:
        async with self.site.db.conn.execute(
            "SELECT action, actor, detail FROM audit_log WHERE action LIKE 'callback%' ORDER BY id"
        ) as cur:
            return [(str(a), str(b), json.loads(str(d))) for a, b, d in await cur.fetchall()]


@pytest.fixture
async def work(site: Site) -> AsyncIterator[Work]:
    now = time.time()
    await users.add_user(site.db, "agent2", users.Role.AGENT, hash_password(PASSWORD, n=2**10), now)
    late = await add_callback(
        site.db, call_id="1795000000.5", caller_number=CALLER, reason="complaint",
        due_at=now - HOUR, note="回访<b>投诉</b>", created_by="agent2", at=now - 2 * HOUR,
    )  # fmt: skip
    later = await add_callback(
        site.db, call_id="", caller_number=OTHER, reason="after_hours",
        due_at=now + 20 * HOUR, note="", created_by="ivr-agent", at=now,
    )  # fmt: skip
    complaint = await complaints.add(
        site.db, call_id="1795000000.5", caller_number=CALLER, agent="agent2", category="网络",
        steps=("a", "", "", "", ""), promised_at=None, status=Status.AWAITING_CALLBACK,
        callback_id=late, by="agent2", at=now - 2 * HOUR,
    )  # fmt: skip
    async with site.client() as a1, site.client() as a2, site.client() as boss:
        for client, name in ((a1, "agent1"), (a2, "agent2"), (boss, "李主管")):
            assert (await login(client, name)).status_code == 200
        yield Work(site, late, later, complaint, a1, a2, boss)


def _numbers_in(r: httpx.Response) -> bool:
    return CALLER in r.text or OTHER in r.text


async def test_claim_reveals_the_number_only_to_the_claimer(work: Work) -> None:
    before = await work.agent1.get("/api/desk/callbacks")
    assert before.status_code == 200
    assert not _numbers_in(before)
    assert [c["id"] for c in before.json()["callbacks"]] == [work.late, work.later]
    assert {c["assigned_to"] for c in before.json()["callbacks"]} == {""}

    r = await work.agent1.post(f"/api/desk/callbacks/{work.late}/claim", json={})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["caller_number"], got["note"], got["reason"]) == (
        CALLER,
        "回访<b>投诉</b>",
        "complaint",
    )
    assert (got["complaint_id"], got["assigned_to"], got["mine"]) == (
        work.complaint,
        "agent1",
        True,
    )

    mine = {c["id"]: c for c in (await work.agent1.get("/api/desk/callbacks")).json()["callbacks"]}
    assert mine[work.late]["caller_number"] == CALLER
    assert "caller_number" not in mine[work.later]  # not claimed: still no number
    overdue = await work.agent1.get("/api/desk/callbacks?overdue=true")
    assert [c["caller_number"] for c in overdue.json()["callbacks"]] == [CALLER]

    theirs = await work.agent2.get("/api/desk/callbacks")
    assert not _numbers_in(theirs)
    shown = {c["id"]: c for c in theirs.json()["callbacks"]}
    assert (shown[work.late]["assigned_to"], shown[work.late]["mine"]) == ("agent1", False)
    assert "note" not in shown[work.late]
    assert (await work.agent2.get("/api/desk/callbacks?status=closed")).status_code == 403

    assert await work.audit() == [
        ("callback_claim", "agent1", {"id": work.late, "agent": "agent1"})
    ]
    async with work.site.db.conn.execute(
        "SELECT call_id FROM audit_log WHERE action = 'callback_claim'"
    ) as cur:
        assert await cur.fetchall() == [("1795000000.5",)]


async def test_a_second_claimer_gets_409(work: Work) -> None:
    first, second = await asyncio.gather(
        work.agent1.post(f"/api/desk/callbacks/{work.later}/claim", json={}),
        work.agent2.post(f"/api/desk/callbacks/{work.later}/claim", json={}),
    )
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], (first.text, second.text)
    loser, winner = (first, "agent2") if first.status_code == 409 else (second, "agent1")
    assert loser.json()["error"] == "callback_taken"
    assert f"already claimed by {winner}" in loser.json()["message"]
    assert not _numbers_in(loser)
    # The winner again: the same callback back (a double click), claimed once.
    again = work.agent1 if winner == "agent1" else work.agent2
    r = await again.post(f"/api/desk/callbacks/{work.later}/claim", json={})
    assert (r.status_code, r.json()["caller_number"]) == (200, OTHER)
    assert [a for a, _, _ in await work.audit()] == ["callback_claim", "callback_claim"]
    missing = await work.agent1.post("/api/desk/callbacks/999/claim", json={})
    assert (missing.status_code, missing.json()["error"]) == (404, "callback_not_found")
    assert (
        await work.boss.post(f"/api/desk/callbacks/{work.late}/claim", json={})
    ).status_code == 403


async def test_an_agent_off_duty_cannot_claim(work: Work) -> None:
    site, now = work.site, time.time()
    for n in (1, 2):
        agent = Agent(f"agent{n}", f"Local/agent{n}@lab-agents/n", ("support",))
        await roster_store.add_agent(site.db.conn, agent, by="test", at=now)
    async with roster_store.transaction(site.db.conn):
        await roster_store.insert_shifts(
            site.db.conn,
            [
                Shift("agent1", now - HOUR, now + HOUR),
                Shift("agent2", now + 5 * HOUR, now + 6 * HOUR),
            ],
            by="test",
            at=now,
        )
    site.deps.roster = Rostering(object(), site.db, queues=("support",))  # type: ignore[arg-type]
    off = await work.agent2.post(f"/api/desk/callbacks/{work.late}/claim", json={})
    assert off.status_code == 403
    assert off.json()["error"] == "not_on_duty"
    assert not _numbers_in(off)
    on = await work.agent1.post(f"/api/desk/callbacks/{work.late}/claim", json={})
    assert on.status_code == 200, on.text
    assert [a for a, _, _ in await work.audit()] == ["callback_claim"]


async def test_only_the_claimer_closes_and_the_note_is_appended(work: Work) -> None:
    url = f"/api/desk/callbacks/{work.late}"
    assert (await work.agent1.post(f"{url}/claim", json={})).status_code == 200
    refused = [
        await work.agent2.post(f"{url}/close", json={"status": "done", "note": "x"}),
        await work.agent2.post(f"{url}/release", json={}),
    ]
    assert [r.status_code for r in refused] == [403, 403]
    assert {r.json()["error"] for r in refused} == {"callback_not_yours"}
    assert not any(_numbers_in(r) for r in refused)
    unclaimed = await work.agent2.post(
        f"/api/desk/callbacks/{work.later}/close", json={"status": "done"}
    )
    assert unclaimed.status_code == 403
    assert not _numbers_in(unclaimed)
    nowhere = await work.agent2.post("/api/desk/callbacks/999/close", json={"status": "done"})
    assert nowhere.status_code == 404
    no_reason = await work.agent1.post(f"{url}/close", json={"status": "cancelled", "note": " "})
    assert no_reason.status_code == 422
    bad = await work.agent1.post(f"{url}/close", json={"status": "open"})
    assert bad.status_code == 422

    done = await work.agent1.post(f"{url}/close", json={"status": "done", "note": "已回电,已解决"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    assert done.json()["note"] == "回访<b>投诉</b>\n已回电,已解决"
    again = await work.agent1.post(f"{url}/close", json={"status": "cancelled", "note": "x"})
    assert (again.status_code, again.json()["error"]) == (409, "callback_closed")
    listed = await work.agent1.get("/api/desk/callbacks")
    assert [c["id"] for c in listed.json()["callbacks"]] == [work.later]
    assert await work.audit() == [
        ("callback_claim", "agent1", {"id": work.late, "agent": "agent1"}),
        ("callback_done", "agent1", {"id": work.late, "note": "已回电,已解决"}),
    ]


async def test_the_claimer_releases_it_back(work: Work) -> None:
    url = f"/api/desk/callbacks/{work.late}"
    assert (await work.agent1.post(f"{url}/claim", json={})).status_code == 200
    r = await work.agent1.post(f"{url}/release", json={})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": work.late, "status": "open", "assigned_to": ""}
    twice = await work.agent1.post(f"{url}/release", json={})
    assert (twice.status_code, twice.json()["error"]) == (409, "callback_closed")
    listed = await work.agent1.get("/api/desk/callbacks")
    assert not _numbers_in(listed)
    assert (await work.agent2.post(f"{url}/claim", json={})).status_code == 200


async def test_a_supervisor_releases_and_closes_any(work: Work) -> None:
    url = f"/api/desk/callbacks/{work.late}"
    assert (await work.agent1.post(f"{url}/claim", json={})).status_code == 200
    listed = (await work.boss.get("/api/desk/callbacks")).json()["callbacks"]
    assert [(c["caller_number"], c["assigned_to"]) for c in listed] == [
        (CALLER, "agent1"), (OTHER, ""),
    ]  # fmt: skip
    assert listed[0]["claimed_at"]
    released = await work.boss.post(f"{url}/release", json={})
    assert released.status_code == 200, released.text
    late = await work.agent1.post(f"{url}/close", json={"status": "done"})
    assert (late.status_code, late.json()["error"]) == (403, "callback_not_yours")
    assert (await work.agent2.post(f"{url}/claim", json={})).status_code == 200
    closed = await work.boss.post(
        f"{url}/close", json={"status": "cancelled", "note": "用户已销户"}
    )
    assert closed.status_code == 200, closed.text
    row = closed.json()
    assert (row["status"], row["closed_by"], row["assigned_to"]) == (
        "cancelled",
        "李主管",
        "agent2",
    )
    unclaimed = await work.boss.post(
        f"/api/desk/callbacks/{work.later}/close", json={"status": "done"}
    )
    assert unclaimed.status_code == 200
    history = (await work.boss.get("/api/desk/callbacks?status=closed")).json()["callbacks"]
    assert [(c["id"], c["status"], c["closed_by"]) for c in history] == [
        (work.later, "done", "李主管"), (work.late, "cancelled", "李主管"),
    ]  # fmt: skip
    assert (await work.boss.get("/api/desk/callbacks")).json()["callbacks"] == []
    actions = [(a, who, d.get("from")) for a, who, d in await work.audit()]
    assert actions[:5] == [
        ("callback_claim", "agent1", None),
        ("callbacks_view", "李主管", None),
        ("callback_release", "李主管", "agent1"),
        ("callback_claim", "agent2", None),
        ("callback_cancelled", "李主管", None),
    ]
    assert actions[5:] == [
        ("callback_done", "李主管", None),
        ("callbacks_view", "李主管", None),
        ("callbacks_view", "李主管", None),
    ]
    assert (await work.boss.post(f"{url}/release", json={})).status_code == 409


def test_callback_strings_replace_no_earlier_string() -> None:
    for lang in i18n.LANGUAGES:
        ours = set(i18n._CALLBACKS[lang])
        assert not ours & (set(i18n._DESK[lang]) | set(i18n._CONSOLE[lang])), lang
        assert ours <= set(i18n.MESSAGES[lang])
    assert set(i18n._CALLBACKS["zh-CN"]) == set(i18n._CALLBACKS["en"])


async def test_the_claimer_reads_the_linked_complaint_until_the_callback_is_closed(
    work: Work,
) -> None:
    """agent2 filed the complaint; agent1 claims its callback and may read and move it on (the
    caller is assigned to them now), and no longer once the callback is done."""
    path = f"/api/desk/complaints/{work.complaint}"
    assert (await work.agent1.get(path)).status_code == 404
    assert (await work.agent1.post(f"/api/desk/callbacks/{work.late}/claim", json={})).is_success
    shown = await work.agent1.get(path)
    assert shown.status_code == 200, shown.text
    assert shown.json()["category"] == "网络"
    assert not _numbers_in(shown)
    moved = await work.agent1.post(f"{path}/status", json={"status": "resolved", "note": "已回访"})
    assert moved.status_code == 200, moved.text
    done = await work.agent1.post(
        f"/api/desk/callbacks/{work.late}/close", json={"status": "done", "note": "已解决"}
    )
    assert done.status_code == 200, done.text
    assert (await work.agent1.get(path)).status_code == 404
    # The complaint's own history says the promised callback was made, by whom, with the note.
    last = (await complaints.history(work.site.db.conn, work.complaint))[-1]
    assert (last["actor"], last["action"]) == ("agent1", "callback_done")
    assert last["detail"] == {"callback": work.late, "note": "已解决"}
