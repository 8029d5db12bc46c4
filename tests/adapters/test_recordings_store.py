"""Recording rows, evidence, users and the audit log on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr_agent.domain.recordings import (
    CallFacts,
    EvidenceKind,
    Measured,
    RecordingStatus,
    Verdict,
    recording_id_for,
)
from ivr_agent.errors import StorageError
from ivr_agent.store import audit, users
from ivr_agent.store import recordings as rs
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db
from ivr_agent.web.passwords import hash_password

T0 = 1_795_000_000.0
OK = Verdict(RecordingStatus.COMPLETE, "")


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Db]:
    d = await Db.open(db_path)
    yield d
    await d.close()


def facts(n: int, **kw: object) -> CallFacts:
    base: dict[str, object] = {
        "call_id": f"{int(T0)}.{n}",
        "started_at": T0 + n,
        "answered_at": T0 + n + 0.1,
        "recording_started_at": T0 + n + 0.2,
        "ended_at": T0 + n + 10.2,
        "caller_number": f"1380000{n:04d}",
        "caller_name": "张三",
        "agent": f"agent{n % 3 + 1}",
        "disposition": "answered" if n % 2 else "abandoned",
        "queue": "support",
    }
    base.update(kw)
    return CallFacts(**base)  # type: ignore[arg-type]


def measured(seconds: float = 10.0) -> Measured:
    return Measured(int(seconds * 16000) + 44, "a" * 64, seconds, True)


async def final(db: Db, f: CallFacts, verdict: Verdict = OK) -> None:
    await rs.save_final(db, f, f"{f.call_id}.wav", "wav", measured(), verdict, T0 + 100)


async def test_started_then_final(db: Db) -> None:
    f = facts(1)
    await rs.record_started(db, f, f"{f.call_id}.wav", "wav", T0)
    row = await rs.get_by_call(db.conn, f.call_id)
    assert row is not None
    assert (row.status, row.duration, row.started_at) == ("recording", None, utc_text(T0 + 1.2))
    assert row.recording_id == recording_id_for(f.call_id)
    await final(db, f)
    row = await rs.get(db.conn, recording_id_for(f.call_id))
    assert row is not None
    assert (row.status, row.duration, row.size, row.sha256) == ("complete", 10.0, 160044, "a" * 64)
    assert row.call_span == pytest.approx(10.0)
    assert (row.caller_number, row.agent, row.disposition) == ("13800000001", "agent2", "answered")


async def test_started_twice_keeps_one_row_and_final_never_blanks_call_fields(db: Db) -> None:
    f = facts(2)
    await rs.record_started(db, f, f"{f.call_id}.wav", "wav", T0)
    await rs.record_started(db, f, f"{f.call_id}.wav", "wav", T0 + 5)
    bare = CallFacts(call_id=f.call_id, started_at=f.started_at, reconciled=True)
    await final(db, bare, Verdict(RecordingStatus.MISSING, "file_missing"))
    rows = await rs.search(db.conn, rs.RecordingQuery(call_id=f.call_id))
    assert len(rows) == 1
    assert (rows[0].status, rows[0].problem) == ("missing", "file_missing")
    assert rows[0].caller_number == f.caller_number  # kept from the first write


async def test_search_filters_and_pages(db: Db) -> None:
    for n in range(30):
        await final(db, facts(n))
    all_rows = await rs.search(db.conn, rs.RecordingQuery(limit=100))
    assert [r.started_at for r in all_rows] == sorted(
        (r.started_at for r in all_rows), reverse=True
    )
    assert len(all_rows) == 30
    by_agent = await rs.search(db.conn, rs.RecordingQuery(agent="agent1", limit=100))
    assert {r.agent for r in by_agent} == {"agent1"}
    assert len(by_agent) == 10
    caller = await rs.search(db.conn, rs.RecordingQuery(caller="13800000007"))
    assert [r.caller_number for r in caller] == ["13800000007"]
    window = await rs.search(db.conn, rs.RecordingQuery(since=T0 + 10, until=T0 + 20, limit=100))
    assert len(window) == 10
    disp = await rs.search(db.conn, rs.RecordingQuery(disposition="answered", limit=100))
    assert len(disp) == 15
    assert {r.disposition for r in disp} == {"answered"}
    assert await rs.search(db.conn, rs.RecordingQuery(status="missing")) == []
    # Keyset pages: every row exactly once, in order.
    seen, before = [], None
    while True:
        page = await rs.search(db.conn, rs.RecordingQuery(limit=7, before=before))
        seen += [r.recording_id for r in page]
        if len(page) < 7:
            break
        before = (page[-1].started_at, page[-1].recording_id)
    assert seen == [r.recording_id for r in all_rows]


async def test_evidence_before_the_row_exists_protects_it(db: Db) -> None:
    f = facts(3)
    flag = await rs.add_evidence(db, f.call_id, EvidenceKind.THREAT, "扬言报复", "agent1", T0)
    assert flag is not None
    assert flag.kind == "threat"
    await final(db, f)  # the row is written after the flag
    row = await rs.get_by_call(db.conn, f.call_id)
    assert row is not None
    assert row.evidence
    assert await rs.search(db.conn, rs.RecordingQuery(evidence=True)) == [row]
    assert await rs.search(db.conn, rs.RecordingQuery(evidence=False)) == []
    assert not await rs.tombstone(db, row.recording_id, "retention", "old", T0 + 1e9)
    assert await rs.expired(db.conn, T0 + 1e9, 10) == []
    flags = await rs.evidence_of(db.conn, f.call_id)
    assert [(e.flagged_by, e.reason) for e in flags] == [("agent1", "扬言报复")]


async def test_tombstone_is_final(db: Db) -> None:
    f = facts(4)
    await final(db, f)
    rid = recording_id_for(f.call_id)
    assert await rs.tombstone(db, rid, "retention", "retention 180 days", T0 + 500)
    assert not await rs.tombstone(db, rid, "retention", "again", T0 + 600)
    assert await rs.add_evidence(db, f.call_id, EvidenceKind.ABUSE, "too late", "x", T0) is None
    await final(db, f)  # a late finalisation must not bring the file's row back
    row = await rs.get(db.conn, rid)
    assert row is not None
    assert (row.status, row.deleted_by, row.delete_reason) == (
        "deleted",
        "retention",
        "retention 180 days",
    )
    assert row.deleted_at == utc_text(T0 + 500)
    assert [r.recording_id for r in await rs.deleted(db.conn)] == [rid]


async def test_mark_missing_only_settled_rows(db: Db) -> None:
    f, g = facts(5), facts(6)
    await final(db, f)
    await rs.record_started(db, g, f"{g.call_id}.wav", "wav", T0)
    assert await rs.mark_missing(db, recording_id_for(f.call_id), T0)
    assert not await rs.mark_missing(db, recording_id_for(g.call_id), T0)
    assert [r.call_id for r in await rs.unsettled(db.conn)] == [g.call_id]
    inv = await rs.inventory(db.conn)
    assert inv[f"{f.call_id}.wav"] == (recording_id_for(f.call_id), "missing")


async def test_write_rolls_back_on_error_and_serialises(db: Db) -> None:
    async def half_done() -> None:
        async with db.write() as conn:
            await conn.execute(
                "INSERT INTO evidence (call_id, kind, reason, flagged_by, flagged_at) "
                "VALUES ('x', 'threat', 'r', 'u', 't')"
            )
            await conn.execute("INSERT INTO nowhere VALUES (1)")

    with pytest.raises(StorageError):
        await half_done()
    async with db.conn.execute("SELECT count(*) FROM evidence") as cur:
        assert (await cur.fetchone()) == (0,)
    # Two writers at once on one connection: neither joins the other's transaction.
    await asyncio.gather(*(final(db, facts(n)) for n in range(100, 120)))
    assert len(await rs.search(db.conn, rs.RecordingQuery(limit=100))) == 20


async def test_users_roles_passwords_tokens(db: Db, db_path: Path) -> None:
    h = hash_password("secret-one", n=2**10)
    sup = await users.add_user(db, "李主管", users.Role.SUPERVISOR, h, T0)
    agent = await users.add_user(db, "agent1", users.Role.AGENT, h, T0)
    assert agent.agent == "agent1"  # an agent answers as their own name by default
    with pytest.raises(users.UserError, match="exists already"):
        await users.add_user(db, "agent1", users.Role.AGENT, h, T0)
    with pytest.raises(users.UserError, match="1-64"):
        users.check_name("bad name/")
    with pytest.raises(users.UserError, match="unknown role"):
        users.parse_role("admin")
    found = await users.by_name(db.conn, "李主管")
    assert found is not None
    assert found[0] == sup
    assert found[1] == h
    assert await users.set_password(db, "李主管", "new", T0)
    again = await users.by_id(db.conn, sup.id)
    assert again is not None
    assert again.session_gen == 1
    await users.add_token(db, agent, "ivr_tok", "script", T0)
    assert await users.by_token(db.conn, "ivr_tok") == agent
    assert await users.by_token(db.conn, "ivr_other") is None
    assert await users.set_disabled(db, "agent1", True, T0)
    disabled = await users.by_token(db.conn, "ivr_tok")
    assert disabled is not None
    assert disabled.disabled
    assert not await users.set_disabled(db, "nobody", True, T0)
    assert [u.name for u in await users.list_users(db.conn)] == ["agent1", "李主管"]
    with sqlite3.connect(db_path) as raw:
        stored = raw.execute("SELECT token_sha256 FROM api_tokens").fetchone()[0]
    assert stored != "ivr_tok"
    assert len(stored) == 64


async def test_audit_append_and_query(db: Db) -> None:
    for action in (audit.AuditAction.LIST, audit.AuditAction.PLAY, audit.AuditAction.PLAY):
        await audit.append(
            db,
            audit.AuditEntry(
                actor="李主管", role="supervisor", action=action, at=T0, recording_id="r1",
                client="127.0.0.1", detail={"n": 1},
            ),
        )  # fmt: skip
    plays = await audit.entries(db.conn, recording_id="r1", action="play")
    assert len(plays) == 2
    assert plays[0]["id"] > plays[1]["id"]  # newest first
    assert plays[0]["actor"] == "李主管"
    assert plays[0]["detail"] == {"n": 1}
    assert len(await audit.entries(db.conn)) == 3
