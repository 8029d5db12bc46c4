"""The recordings folder: safe opening, the finaliser's wait and verdicts, the start-up
reconcile, the retention job. A tmp folder with WAV files written like MixMonitor writes them."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr_agent.domain.calls import Call, CallState, Disposition
from ivr_agent.domain.recordings import EvidenceKind, recording_id_for
from ivr_agent.errors import RecordingNotFound
from ivr_agent.recordings import retention
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.recordings.keeper import RecordingKeeper, facts_of
from ivr_agent.recordings.reconcile import STALE_AFTER, reconcile
from ivr_agent.store import audit
from ivr_agent.store import recordings as rs
from ivr_agent.store.txn import Db
from tests.adapters.recfiles import wav_bytes, write_wav

NOW = time.time()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rec"
    r.mkdir()
    return r


@pytest.fixture
async def keeper(db_path: Path, root: Path) -> AsyncIterator[RecordingKeeper]:
    db = await Db.open(db_path)
    yield RecordingKeeper(db, RecordingsRoot(root), finalise_timeout=1.0, tolerance=0.5)
    await db.close()


def call(n: int, seconds: float = 3.0, **kw: object) -> Call:
    start = NOW - 60 + n
    base: dict[str, object] = {
        "call_id": f"1795000000.{n}",
        "state": CallState.ENDED,
        "started_at": start,
        "updated_at": start + seconds,
        "answered_at": start,
        "recording_started_at": start,
        "ended_at": start + seconds,
        "caller_number": "13900139000",
        "agent": "agent1",
        "disposition": Disposition.ANSWERED,
    }
    base.update(kw)
    return Call(**base)  # type: ignore[arg-type]


async def row(k: RecordingKeeper, call_id: str) -> rs.RecordingRow | None:
    return await rs.get_by_call(k.db.conn, call_id)


# -- the folder ---------------------------------------------------------------------------------


def test_open_refuses_paths_symlinks_and_folders(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(wav_bytes(1.0))
    (root / "1795000000.1.wav").symlink_to(secret)
    (root / "1795000000.2.wav").mkdir()
    write_wav(root, "1795000000.3", 1.0)
    rr = RecordingsRoot(root)
    for name in ("../secret.wav", str(secret), "1795000000.1.wav", "1795000000.2.wav", "x.wav"):
        with pytest.raises(RecordingNotFound):
            rr.open(name)
    os.close(rr.open("1795000000.3.wav"))
    assert set(rr.scan()) == {"1795000000.3.wav"}  # no symlink, folder or stray names
    assert not rr.unlink("../secret.wav")
    assert secret.exists()


def test_measure(root: Path) -> None:
    write_wav(root, "1795000000.4", 2.5)
    (root / "1795000000.5.wav").write_bytes(b"garbage!" * 10)
    (root / "1795000000.6.wav").write_bytes(b"")
    rr = RecordingsRoot(root)
    good = rr.measure("1795000000.4.wav")
    assert good is not None
    assert (good.duration, good.finalised, good.size) == (2.5, True, 40044)
    assert good.sha256 == rr.sha256("1795000000.4.wav")
    bad = rr.measure("1795000000.5.wav")
    assert bad is not None
    assert bad.duration is None
    assert "RIFF" in bad.error
    empty = rr.measure("1795000000.6.wav")
    assert empty is not None
    assert (empty.size, empty.duration) == (0, 0.0)
    assert rr.measure("1795000000.7.wav") is None
    assert rr.locate("1795000000.4") == ("1795000000.4.wav", "wav")
    assert rr.locate("../etc") is None


async def test_a_file_the_service_cannot_read_is_flagged_not_missing(
    keeper: RecordingKeeper, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root the tests cannot lose read permission for real: make os.open refuse it.
    c = call(8)
    write_wav(root, c.call_id, 3.0)
    name = f"{c.call_id}.wav"
    real = os.open

    def refuse(path: object, *args: object, **kwargs: object) -> int:
        if path == name:
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    assert keeper.root.locate(c.call_id) == (name, "wav")
    await keeper.finalise(facts_of(c), 0.1)
    r = await row(keeper, c.call_id)
    assert r is not None
    assert r.status == "failed"
    assert r.problem == f"unreadable: {name}: Permission denied"
    assert r.size == 48044


# -- the finaliser ------------------------------------------------------------------------------


async def test_waits_for_asterisk_to_close_the_file(keeper: RecordingKeeper, root: Path) -> None:
    c = call(1, 3.0)
    path = write_wav(root, c.call_id, 2.0, closed=False)  # still being written at hangup

    async def close_later() -> None:
        await asyncio.sleep(0.3)
        path.write_bytes(wav_bytes(3.0))  # MixMonitor's last block and the header update

    started = time.monotonic()
    closer = asyncio.create_task(close_later())
    assert await keeper.finalise(facts_of(c), 5.0)
    await closer
    assert 0.25 < time.monotonic() - started < 2.0
    r = await row(keeper, c.call_id)
    assert r is not None
    assert (r.status, r.duration, r.problem) == ("complete", 3.0, "")


async def test_verdicts(keeper: RecordingKeeper, root: Path) -> None:
    short = call(2, 10.0)
    write_wav(root, short.call_id, 4.0)
    empty = call(3)
    (root / f"{empty.call_id}.wav").write_bytes(wav_bytes(0.0))
    gone = call(4)
    unanswered = call(5, answered_at=None, recording_started_at=None)
    never_closed = call(6, 2.0)
    write_wav(root, never_closed.call_id, 2.0, closed=False)
    for c in (short, empty, gone, unanswered, never_closed):
        await keeper.finalise(facts_of(c), 0.2)
    got = {
        c.call_id: (r.status, r.problem) if (r := await row(keeper, c.call_id)) else None
        for c in (short, empty, gone, unanswered, never_closed)
    }
    assert got[short.call_id] == (
        "complete",
        "duration_mismatch: 4.00 s of audio, call 10.00 s",
    )
    assert got[empty.call_id] == ("failed", "file_empty")
    assert got[gone.call_id] == ("missing", "file_missing")
    assert got[unanswered.call_id] is None  # never answered, nothing recorded: no row
    assert got[never_closed.call_id] == ("complete", "not_finalised")
    assert keeper.flagged == 4


async def test_queue_path_started_then_ended(keeper: RecordingKeeper, root: Path) -> None:
    c = call(7, 1.0)
    live = Call(**{**{f: getattr(c, f) for f in c.__slots__}, "state": CallState.CONNECTED,
                   "ended_at": None})  # fmt: skip
    write_wav(root, c.call_id, 0.5, closed=False)
    task = asyncio.create_task(keeper.run())
    keeper.call_started(live)
    await asyncio.sleep(0.2)
    r = await row(keeper, c.call_id)
    assert r is not None
    assert r.status == "recording"
    write_wav(root, c.call_id, 1.0)
    keeper.call_ended(c)
    keeper.stop()
    await asyncio.wait_for(task, 5)
    r = await row(keeper, c.call_id)
    assert r is not None
    assert (r.status, r.duration) == ("complete", 1.0)


# -- reconcile ----------------------------------------------------------------------------------


async def test_reconcile(keeper: RecordingKeeper, root: Path) -> None:
    orphan = write_wav(root, "1795000000.10", 2.0)
    live = write_wav(root, "1795000000.11", 1.0, closed=False)
    fresh_open = write_wav(root, "1795000000.12", 1.0, closed=False)
    stale_open = write_wav(root, "1795000000.13", 1.5, closed=False, age=STALE_AFTER + 5)
    # A row left 'recording' by a killed run; its call ended meanwhile and the file is closed.
    killed = call(14, 2.0)
    await rs.record_started(keeper.db, facts_of(killed), f"{killed.call_id}.wav", "wav", NOW)
    write_wav(root, killed.call_id, 2.0)
    # A complete row whose file has since disappeared, and a tombstone whose unlink never ran.
    vanished = call(15)
    write_wav(root, vanished.call_id, 3.0)
    await keeper.finalise(facts_of(vanished), 0)
    os.unlink(root / f"{vanished.call_id}.wav")
    doomed = call(16)
    write_wav(root, doomed.call_id, 3.0)
    await keeper.finalise(facts_of(doomed), 0)
    assert await rs.tombstone(keeper.db, recording_id_for(doomed.call_id), "retention", "r", NOW)

    result = await reconcile(keeper, lambda cid: cid == "1795000000.11")

    assert (result.adopted, result.settled, result.missing, result.purged) == (2, 1, 1, 1)
    assert result.skipped_live == 2  # the live call's file, and the one written just now
    adopted = await rs.get(keeper.db.conn, recording_id_for("1795000000.10"))
    assert adopted is not None
    assert (adopted.status, adopted.duration) == ("complete", 2.0)
    # With no call record, the file's last write is taken as the end of the recording.
    assert adopted.ended_at is not None
    assert adopted.started_at < adopted.ended_at
    stale = await row(keeper, "1795000000.13")
    assert stale is not None
    assert (stale.status, stale.problem) == ("complete", "not_finalised")
    settled = await row(keeper, killed.call_id)
    assert settled is not None
    assert settled.status == "complete"
    gone = await row(keeper, vanished.call_id)
    assert gone is not None
    assert gone.status == "missing"
    assert not (root / f"{doomed.call_id}.wav").exists()
    assert await row(keeper, "1795000000.11") is None
    assert live.exists()
    assert await row(keeper, "1795000000.12") is None
    assert fresh_open.exists()
    assert orphan.exists()
    assert stale_open.exists()
    # The call of .11 is over but its file is still open and fresh: left for a later pass.
    again = await reconcile(keeper, lambda cid: False)
    assert (again.adopted, again.missing, again.purged, again.skipped_live) == (0, 0, 0, 2)


async def test_reconcile_without_the_folder(keeper: RecordingKeeper, root: Path) -> None:
    absent = RecordingKeeper(
        keeper.db, RecordingsRoot(root / "absent"), finalise_timeout=1.0, tolerance=0.5
    )
    result = await reconcile(absent, lambda cid: False)
    assert result.errors
    assert "not a folder" in result.errors[0]


# -- retention ----------------------------------------------------------------------------------


async def test_retention_deletes_old_keeps_evidence_and_recent(
    keeper: RecordingKeeper, root: Path
) -> None:
    day = 86_400.0
    old, evidence, recent = call(20), call(21), call(22)
    for c in (old, evidence, recent):
        write_wav(root, c.call_id, 3.0)
        await keeper.finalise(facts_of(c), 0)
    await rs.add_evidence(
        keeper.db, evidence.call_id, EvidenceKind.EXTORTION, "勒索", "agent1", NOW
    )
    later = NOW + 10 * day  # old and evidence are 10 days old then; recent too, but...
    assert await retention.expire(keeper.db, keeper.root, 0, later) == 0  # 0: keep forever
    assert await retention.expire(keeper.db, keeper.root, 30, later) == 0
    n = await retention.expire(keeper.db, keeper.root, 9, later)
    assert n == 2  # old and recent are both > 9 days old at `later`; evidence is kept
    assert not (root / f"{old.call_id}.wav").exists()
    assert (root / f"{evidence.call_id}.wav").exists()
    tomb = await row(keeper, old.call_id)
    assert tomb is not None
    assert (tomb.status, tomb.deleted_by, tomb.delete_reason) == (
        "deleted",
        "retention",
        "retention 9 days",
    )
    kept = await row(keeper, evidence.call_id)
    assert kept is not None
    assert kept.status == "complete"
    assert kept.evidence
    rows = await audit.entries(keeper.db.conn, action="delete")
    assert {r["call_id"] for r in rows} == {old.call_id, recent.call_id}
    assert all(r["actor"] == "retention" and r["detail"]["file_removed"] for r in rows)
