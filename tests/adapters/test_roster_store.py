"""The roster tables: agents, atomic imports, change requests and their audit, on a real SQLite
file; and the `ivr-agent roster` commands end to end."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosqlite
import pytest

from ivr_agent import roster_cli
from ivr_agent.domain.roster import Agent, Role, RosterError, Shift
from ivr_agent.domain.roster_changes import ChangeError, ChangeStatus, Edit, Swap, new_request
from ivr_agent.domain.roster_table import ParsedRoster, make_table, parse_table
from ivr_agent.errors import StorageError
from ivr_agent.store import roster as store
from ivr_agent.store import roster_ops as ops
from ivr_agent.store.db import open_db
from ivr_agent.store.migrations import MIGRATIONS

SH = ZoneInfo("Asia/Shanghai")
LAB = Path(__file__).resolve().parents[2] / "dialplan" / "lab" / "roster.csv"
NOW = dt.datetime(2026, 6, 30, 12, tzinfo=SH).timestamp()


def at(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH).timestamp()


async def create_schema(conn: aiosqlite.Connection) -> None:
    """The roster tables on a bare connection (open_db creates them: migration 4)."""
    # Split as the migration runner does: a ';' inside a statement or comment would break it.
    for statement in store.SCHEMA.split(";"):
        if statement.strip():
            await conn.execute(statement)


@pytest.fixture
async def conn(db_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    c = await open_db(db_path)  # migration 4 creates the roster tables
    for i in range(1, 5):
        agent = Agent(f"agent{i}", f"Local/agent{i}@lab-agents/n", ("support",))
        await store.add_agent(c, agent, by="admin", at=NOW)
    yield c
    await c.close()


def table(*rows: str, name: str = "r.csv") -> ParsedRoster:
    lines = [tuple(r.split(",")) for r in ("date,start,end,agent,role,breaks", *rows)]
    return parse_table(make_table(name, lines), SH, source=f"import:{name}")


DAY1 = (
    "2026-07-01,00:00,24:00,agent4,leader,",
    "2026-07-01,08:00,17:00,agent1,agent,12:00-12:30",
    "2026-07-01,22:00,06:00,agent2,leader,",
)


async def count(conn: aiosqlite.Connection, sql: str) -> int:
    row = await (await conn.execute(sql)).fetchone()
    assert row is not None
    return int(row[0])


async def test_schema_and_its_guard(db_path: Path, tmp_path: Path) -> None:
    statements = [s for s in store.SCHEMA.split(";") if s.strip()]
    assert sum("CREATE TABLE" in s for s in statements) == 5
    # Migration 4 is the same schema (a copy: migrations.py cannot import store.roster).
    migration = dict(MIGRATIONS)[4]
    for statement in statements:
        assert " ".join(statement.split()) in " ".join(migration.split())
    migrated = await open_db(tmp_path / "migrated.db")
    try:
        await store.require_schema(migrated, "migrated.db")
    finally:
        await migrated.close()
    bare = await aiosqlite.connect(tmp_path / "bare.db", isolation_level=None)
    try:
        with pytest.raises(StorageError, match="no roster tables"):
            await store.require_schema(bare, "bare.db")
        await create_schema(bare)
        await store.require_schema(bare, "bare.db")
    finally:
        await bare.close()


async def test_agents_are_unique_by_name_and_interface(conn: aiosqlite.Connection) -> None:
    agents = await store.load_agents(conn)
    assert list(agents) == ["agent1", "agent2", "agent3", "agent4"]
    assert agents["agent1"].queues == ("support",)
    with pytest.raises(StorageError, match="agent 'agent1': an agent of that name exists"):
        await store.add_agent(conn, Agent("agent1", "PJSIP/1"), by="admin", at=NOW)
    with pytest.raises(StorageError, match="belongs to agent 'agent2'"):
        await store.add_agent(conn, Agent("agent9", "Local/agent2@lab-agents/n"), by="x", at=NOW)
    audit = await store.list_audit(conn)
    assert [e.action for e in audit] == ["agent_added"] * 4
    assert audit[0].detail == {
        "agent": "agent4",
        "interface": "Local/agent4@lab-agents/n",
        "queues": ["support"],
    }


async def test_import_stores_shifts_with_breaks_and_audits(conn: aiosqlite.Connection) -> None:
    result = await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="abc")
    assert (result.imported, result.replaced, result.warnings) == (3, 0, ())
    roster = await store.load_roster(conn, at("2026-07-01 00:00"), at("2026-07-02 12:00"))
    assert len(roster.shifts) == 3
    noon = roster.on_duty(at("2026-07-01 12:10"))
    assert [(d.agent.name, d.on_break) for d in noon] == [("agent1", True), ("agent4", False)]
    assert roster.leader_at(at("2026-07-01 23:00")).agent.name == "agent4"  # type: ignore[union-attr]
    (entry, *_) = await store.list_audit(conn)
    assert (entry.who, entry.action) == ("lead", "roster_imported")
    assert entry.detail["sha256"] == "abc"
    assert entry.detail["first_day"] == "2026-07-01"
    assert entry.detail["imported"] == 3


async def test_reimport_replaces_only_the_files_days(conn: aiosqlite.Connection) -> None:
    two_days = (
        *DAY1,
        "2026-07-02,06:00,24:00,agent4,leader,",
        "2026-07-02,08:00,17:00,agent3,agent,",
    )
    await ops.import_roster(conn, table(*two_days), SH, by="lead", at=NOW, sha256="1")
    # A new plan for July 2nd only: July 1st (and its night shift into the 2nd) stay.
    new = table("2026-07-02,06:00,24:00,agent4,leader,", "2026-07-02,09:00,18:00,agent1,agent,")
    result = await ops.import_roster(conn, new, SH, by="lead", at=NOW, sha256="2")
    assert (result.replaced, result.imported) == (2, 2)
    shifts = await store.load_shifts(conn, at("2026-07-01 00:00"), at("2026-07-03 00:00"))
    assert [
        (s.agent, dt.datetime.fromtimestamp(s.start, SH).strftime("%d %H:%M")) for s in shifts
    ] == [
        ("agent4", "01 00:00"),
        ("agent1", "01 08:00"),
        ("agent2", "01 22:00"),
        ("agent4", "02 06:00"),
        ("agent1", "02 09:00"),
    ]


async def test_a_bad_file_changes_nothing(conn: aiosqlite.Connection) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    bad = table(
        "2026-07-01,00:00,24:00,agent4,leader,",
        "2026-07-01,08:00,17:00,agent9,agent,",
        "2026-07-01,05:00,07:00,agent2,agent,",  # overlaps the kept night shift? no: same day
    )
    with pytest.raises(RosterError) as caught:
        await ops.import_roster(conn, bad, SH, by="lead", at=NOW, sha256="2")
    assert [str(i) for i in caught.value.issues] == [
        "r.csv, row 3, column agent (D3): unknown agent 'agent9' (add it first: ivr-agent roster "
        "agents add)"
    ]
    assert await count(conn, "SELECT count(*) FROM shifts") == 3
    assert (
        await count(conn, "SELECT count(*) FROM roster_audit WHERE action = 'roster_imported'") == 1
    )


async def test_an_overlap_with_a_kept_night_shift_is_refused(conn: aiosqlite.Connection) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    morning = table("2026-07-02,00:00,24:00,agent4,leader,", "2026-07-02,05:00,13:00,agent2,agent,")
    with pytest.raises(
        RosterError, match=r"row 3, column start \(B3\): agent2's shift .* overlaps stored shift #3"
    ):
        await ops.import_roster(conn, morning, SH, by="lead", at=NOW, sha256="2")


async def test_a_failure_mid_import_rolls_everything_back(
    conn: aiosqlite.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")

    async def boom(*args: object, **kwargs: object) -> list[int]:
        raise StorageError("disk full")

    monkeypatch.setattr(ops, "insert_shifts", boom)
    with pytest.raises(StorageError, match="disk full"):
        await ops.import_roster(conn, table(DAY1[0]), SH, by="lead", at=NOW, sha256="2")
    assert await count(conn, "SELECT count(*) FROM shifts") == 3
    assert await count(conn, "SELECT count(*) FROM shift_breaks") == 1


async def test_dry_run_checks_and_writes_nothing(conn: aiosqlite.Connection) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    result = await ops.import_roster(
        conn, table(DAY1[0]), SH, by="lead", at=NOW, sha256="2", dry_run=True
    )
    assert (result.dry_run, result.replaced, result.imported) == (True, 3, 1)
    assert await count(conn, "SELECT count(*) FROM shifts") == 3
    with pytest.raises(RosterError, match="no shift leader"):
        await ops.import_roster(conn, table(DAY1[1]), SH, by="l", at=NOW, sha256="3", dry_run=True)


async def test_leader_gap_as_a_warning_imports(conn: aiosqlite.Connection) -> None:
    result = await ops.import_roster(
        conn, table(DAY1[1]), SH, by="lead", at=NOW, sha256="1", leader_gap="warning"
    )
    assert result.imported == 1
    assert ["no shift leader" in str(w) for w in result.warnings] == [True]
    (entry, *_) = await store.list_audit(conn)
    assert "no shift leader" in str(entry.detail["warnings"])


async def test_an_empty_file_is_an_error(conn: aiosqlite.Connection) -> None:
    with pytest.raises(RosterError, match="no rows under the header"):
        await ops.import_roster(conn, table(), SH, by="lead", at=NOW, sha256="1")


async def test_swap_requested_then_approved_is_applied_and_audited(
    conn: aiosqlite.Connection,
) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    req = new_request("agent1", Swap(2, 3), "夜班换早班", NOW)
    stored, warnings = await ops.request_change(conn, req, SH)
    assert (stored.id, warnings) == (1, ())
    assert [c.id for c in await ops.list_changes(conn, status=ChangeStatus.PENDING)] == [1]
    # Nothing changes before the approval.
    shifts = await store.get_shifts(conn, [2, 3])
    assert (shifts[2].agent, shifts[3].agent) == ("agent1", "agent2")
    with pytest.raises(ChangeError, match="someone else decides"):
        await ops.decide_change(conn, 1, SH, approve=True, by="agent1", at=NOW + 60)
    decided, _ = await ops.decide_change(conn, 1, SH, approve=True, by="班长", at=NOW + 60)
    assert (decided.status, decided.decided_by) == (ChangeStatus.APPROVED, "班长")
    shifts = await store.get_shifts(conn, [2, 3])
    assert (shifts[2].agent, shifts[3].agent) == ("agent2", "agent1")
    assert shifts[2].source == "change:1"
    assert len(shifts[2].breaks) == 1  # the break stays with the shift
    got = await ops.get_change(conn, 1)
    assert got is not None
    assert (got.status, got.decided_by, got.reason) == (ChangeStatus.APPROVED, "班长", "夜班换早班")
    approved, requested = await store.list_audit(conn, limit=2)
    assert (requested.who, requested.action) == ("agent1", "change_requested")
    assert requested.detail["reason"] == "夜班换早班"
    assert (approved.who, approved.action) == ("班长", "change_approved")
    assert [s["agent"] for s in approved.detail["before"]] == ["agent1", "agent2"]  # type: ignore[index, union-attr]
    assert [s["agent"] for s in approved.detail["after"]] == ["agent2", "agent1"]  # type: ignore[index, union-attr]
    with pytest.raises(ChangeError, match="already approved"):
        await ops.decide_change(conn, 1, SH, approve=False, by="班长", at=NOW + 90)


async def test_rejected_change_touches_no_shift(conn: aiosqlite.Connection) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    req = new_request("agent2", Edit(shift=3, remove=True), "sick", NOW)
    await ops.request_change(conn, req, SH, leader_gap="warning")
    decided, _ = await ops.decide_change(
        conn, 1, SH, approve=False, by="lead", at=NOW, note="find cover"
    )
    assert decided.status is ChangeStatus.REJECTED
    assert await count(conn, "SELECT count(*) FROM shifts") == 3
    (entry, *_) = await store.list_audit(conn)
    assert (entry.action, entry.detail) == ("change_rejected", {"id": 1, "note": "find cover"})
    with pytest.raises(ChangeError, match="no change #9"):
        await ops.decide_change(conn, 9, SH, approve=True, by="lead", at=NOW)


async def test_a_change_that_no_longer_fits_stays_pending(conn: aiosqlite.Connection) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    req = new_request("agent3", Edit(shift=2, agent="agent3"), "cover", NOW)
    await ops.request_change(conn, req, SH)
    # Meanwhile a supervisor gives agent3 a clashing shift.
    extra = Edit(agent="agent3", start=at("2026-07-01 10:00"), end=at("2026-07-01 14:00"))
    await ops.edit_roster(conn, extra, SH, by="lead", reason="busy day", at=NOW)
    with pytest.raises(ChangeError, match=r"change #1: agent3's shift .* overlaps") as caught:
        await ops.decide_change(conn, 1, SH, approve=True, by="lead", at=NOW)
    assert caught.value.issues[0].file == "change #1"
    got = await ops.get_change(conn, 1)
    assert got is not None
    assert got.status is ChangeStatus.PENDING


async def test_a_request_that_cannot_apply_is_not_stored(conn: aiosqlite.Connection) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    with pytest.raises(ChangeError, match="no shift #99"):
        await ops.request_change(conn, new_request("agent1", Swap(2, 99), "x", NOW), SH)
    with pytest.raises(ChangeError, match="no shift leader"):
        await ops.request_change(
            conn, new_request("agent4", Edit(shift=1, remove=True), "x", NOW), SH
        )
    assert await ops.list_changes(conn) == []


async def test_supervisor_edit_is_applied_and_audited_with_its_reason(
    conn: aiosqlite.Connection,
) -> None:
    await ops.import_roster(conn, table(*DAY1), SH, by="lead", at=NOW, sha256="1")
    with pytest.raises(ChangeError, match="needs a reason"):
        await ops.edit_roster(conn, Edit(shift=2, agent="agent3"), SH, by="lead", reason="", at=NOW)
    diff, _ = await ops.edit_roster(
        conn,
        Edit(shift=2, end=at("2026-07-01 15:00"), breaks=()),
        SH,
        by="lead",
        reason="early",
        at=NOW,
    )
    assert diff.after[0].end == at("2026-07-01 15:00")
    (entry, *_) = await store.list_audit(conn)
    assert (entry.who, entry.action, entry.detail["reason"]) == ("lead", "shift_edited", "early")
    assert await count(conn, "SELECT count(*) FROM shift_breaks") == 0
    await ops.edit_roster(
        conn,
        Edit(
            agent="agent3",
            start=at("2026-07-01 09:00"),
            end=at("2026-07-01 12:00"),
            role=Role.AGENT,
        ),
        SH,
        by="lead",
        reason="extra hands",
        at=NOW,
    )
    (entry, *_) = await store.list_audit(conn)
    assert entry.detail["new_ids"] == [4]
    await ops.edit_roster(
        conn, Edit(shift=4, remove=True), SH, by="lead", reason="not needed", at=NOW
    )
    assert await count(conn, "SELECT count(*) FROM shifts") == 3


async def test_sqlite_errors_in_a_transaction_roll_back_as_storage_errors(
    conn: aiosqlite.Connection,
) -> None:
    backwards = Shift("agent1", at("2026-07-01 17:00"), at("2026-07-01 08:00"))

    async def two_inserts() -> None:
        async with store.transaction(conn):
            await store.insert_shifts(conn, [Shift("agent1", 0, 60)], by="x", at=NOW)
            await store.insert_shifts(conn, [backwards], by="x", at=NOW)

    with pytest.raises(StorageError, match="roster write failed: CHECK constraint failed"):
        await two_inserts()
    assert await count(conn, "SELECT count(*) FROM shifts") == 0


async def test_a_corrupt_stored_payload_is_a_storage_error(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "INSERT INTO roster_changes (requested_by, requested_at, kind, payload, reason) "
        "VALUES ('a', '2026-07-01T00:00:00.000000Z', 'swap', '{}', 'r')"
    )
    with pytest.raises(StorageError, match="change #1: stored payload is not valid"):
        await ops.get_change(conn, 1)


# -- the commands --------------------------------------------------------------------------------


def roster_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ivr-agent")
    roster_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc: int = args.handler(args)
    return rc


@pytest.fixture
def config(tmp_path: Path) -> str:
    db = tmp_path / "cli.db"

    async def setup() -> None:
        c = await open_db(db)
        await c.close()

    import asyncio

    asyncio.run(setup())
    cfg = tmp_path / "ivr-agent.toml"
    cfg.write_text(f'[storage]\ndatabase = "{db}"\n[hotline]\nqueues = ["support", "leaders"]\n')
    return str(cfg)


def test_cli_lab_roster_end_to_end(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Days ahead of the real clock: the commands take `now` from it, and history is read-only.
    first = dt.datetime.now(SH).date() + dt.timedelta(days=1)
    day = [(first + dt.timedelta(days=n)).isoformat() for n in range(8)]
    for i in range(1, 5):
        queues = "support,leaders" if i == 4 else "support"
        iface = f"Local/agent{i}@lab-agents/n"
        add = ("agents", "add", f"agent{i}", "--interface", iface, "--queues", queues)
        assert roster_command("roster", *add, "--config", config) == 0
    capsys.readouterr()
    assert roster_command("roster", "agents", "list", "--json", "--config", config) == 0
    agents = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in agents] == ["agent1", "agent2", "agent3", "agent4"]

    week = ("--from", day[0], "--until", day[6], "--config", config)
    assert roster_command("roster", "import", str(LAB), "--dry-run", *week) == 0
    assert f"28 shifts for {day[0]}..{day[6]} (would replace 0)" in capsys.readouterr().out
    assert roster_command("roster", "import", str(LAB), "--by", "ops", *week) == 0
    digest = hashlib.sha256(LAB.read_bytes()).hexdigest()
    expected = f"28 shifts for {day[0]}..{day[6]} (replaced 0); sha256 {digest[:12]}"
    assert expected in capsys.readouterr().out

    show = ("roster", "show", "--date", day[2])
    assert roster_command(*show, "--at", "03:00", "--json", "--config", config) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["leader"] == "agent4"
    assert [d["agent"] for d in shown["on_duty"]] == ["agent1", "agent2", "agent3", "agent4"]
    assert shown["next_change"] == f"{day[7]} 00:00"  # midnight seams are not changes
    assert roster_command(*show, "--config", config) == 0
    assert f"agent4       leader  {day[2]} 00:00-24:00" in capsys.readouterr().out

    csv_out, ics_out = tmp_path / "out.csv", tmp_path / "agent4.ics"
    one_day = ("--from", day[1], "--until", day[1], "--output", str(csv_out))
    assert roster_command("roster", "export", "--format", "csv", *one_day, "--config", config) == 0
    assert csv_out.read_bytes().startswith(b"\xef\xbb\xbfdate,start,end,agent,role,breaks,note\r\n")
    assert csv_out.read_text(encoding="utf-8-sig").count(f"{day[1]},00:00,24:00") == 4
    ics = ("--agent", "agent4", "--from", day[0], "--output", str(ics_out))
    assert roster_command("roster", "export", "--format", "ics", *ics, "--config", config) == 0
    assert ics_out.read_text().count("BEGIN:VEVENT") == 7
    assert "wrote 7 shifts" in capsys.readouterr().out

    # The exported day re-imports as it was.
    assert roster_command("roster", "import", str(csv_out), "--config", config) == 0
    assert f"4 shifts for {day[1]}..{day[1]} (replaced 4)" in capsys.readouterr().out

    # A change request, approved by someone else.
    assert roster_command("roster", "show", "--date", day[4], "--json", "--config", config) == 0
    shifts = json.loads(capsys.readouterr().out)["shifts"]
    ids = {s["agent"]: s["id"] for s in shifts if s["shift"].startswith(day[4])}
    ask = ("--shift", str(ids["agent1"]), "--end", f"{day[4]} 12:00")
    assert (
        roster_command(
            "roster", "request", "--by", "agent1", "--reason", "看病", *ask, "--config", config
        )
        == 0
    )
    assert "change #1 requested" in capsys.readouterr().out
    assert roster_command("roster", "changes", "--json", "--config", config) == 0
    (pending,) = json.loads(capsys.readouterr().out)
    assert (pending["requested_by"], pending["reason"], pending["status"]) == (
        "agent1",
        "看病",
        "pending",
    )
    assert roster_command("roster", "approve", "1", "--by", "agent4", "--config", config) == 0
    assert "change #1 approved by agent4" in capsys.readouterr().out
    assert (
        roster_command(
            "roster", "show", "--date", day[4], "--at", "13:00", "--json", "--config", config
        )
        == 0
    )
    assert [d["agent"] for d in json.loads(capsys.readouterr().out)["on_duty"]] == [
        "agent2",
        "agent3",
        "agent4",
    ]
    assert roster_command("roster", "audit", "--limit", "1", "--config", config) == 0
    assert "agent4     change_approved" in capsys.readouterr().out


def test_cli_bad_import_lists_every_issue_and_imports_nothing(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "日期,开始,结束,坐席,角色\n2026-07-01,08:00,17:00,nobody,agent\n2026-07-01,25:00,17:00,agent1,x\n",
        encoding="utf-8",
    )
    with pytest.raises(RosterError):
        roster_command("roster", "import", str(bad), "--config", config)
    err = capsys.readouterr().err
    assert f"{bad}, row 3, column 开始 (B3): '25:00' is not a time" in err
    assert f"{bad}, row 3, column 角色 (E3): 'x' is not a role" in err
    assert f"{bad}, row 2, column 坐席 (D2): unknown agent 'nobody'" in err
    with pytest.raises(ChangeError, match="no change #4"):
        roster_command("roster", "reject", "4", "--config", config)
