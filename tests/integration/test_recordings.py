"""Recordings against the real lab Asterisk: every call recorded and measured, the service
killed mid-call loses nothing, supervisors pull recordings through the service (audited), the
operator CLI checks hashes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.seed import seed_sync
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from tests.integration.service import REPO, cli, lab_settings, running_service, wait_until

pytestmark = pytest.mark.integration

SUPERVISOR_PASSWORD = "listen-carefully-42"


def rec_rows(db: Path, where: str = "1=1", params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        conn.row_factory = sqlite3.Row
        try:
            sql = f"SELECT * FROM recordings WHERE {where}"  # noqa: S608  # test-only literals
            return [dict(r) for r in conn.execute(sql, params)]
        except sqlite3.OperationalError:
            return []


def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def recorded_span(db: Path, call_id: str) -> float | None:
    """From the call's own timeline: MixMonitorStart of the caller leg to its Hangup."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT kind, at FROM call_events WHERE call_id = ? AND uniqueid = ? "
            "AND kind IN ('MixMonitorStart', 'Hangup') ORDER BY id",
            (call_id, call_id),
        ).fetchall()
    times = dict(rows)
    if "MixMonitorStart" not in times or "Hangup" not in times:
        return None
    return epoch(times["Hangup"]) - epoch(times["MixMonitorStart"])


def _timeline_has(db: Path, call_id: str, kind: str) -> bool:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        row = conn.execute(
            "SELECT 1 FROM call_events WHERE call_id = ? AND uniqueid = ? AND kind = ?",
            (call_id, call_id, kind),
        ).fetchone()
    return row is not None


def wav_seconds(path: Path) -> float:
    """Independent of the service's parser: the stdlib wave module."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_200_calls_at_20_per_second_all_recorded_and_measured(
    lab: LabInfo, tmp_path: Path
) -> None:
    db = tmp_path / "calls.db"
    talking = LocalCall("talking", "13510000001", "陈一", hold_s=0)  # ~9.2 s of speech
    silent = LocalCall("silent", "13510000002", "陈二", hold_s=2)
    numbers = ("13510000001", "13510000002")
    mine = "caller_number IN (?, ?)"
    async with running_service(lab_settings(lab, db)) as service:
        # 10 calls/s of each kind at once: 20 calls/s, 200 calls in 10 s.
        placed = await asyncio.gather(
            place_local_calls(service.ami, talking, count=100, rate=10),
            place_local_calls(service.ami, silent, count=100, rate=10),
        )
        assert [p.queued for p in placed] == [100, 100], [p.errors for p in placed]
        await wait_until(
            lambda: len(rec_rows(db, f"{mine} AND status != 'recording'", numbers)) == 200,
            45,
            "200 finalised recordings",
        )
    rows = rec_rows(db, mine, numbers)
    assert len(rows) == 200
    assert {r["status"] for r in rows} == {"complete"}
    assert [r["problem"] for r in rows if r["problem"]] == []
    worst = 0.0
    for r in rows:
        path = lab.recordings_dir / r["path"]
        assert r["path"] == f"{r['call_id']}.wav"  # the UNIQUEID, nothing caller-controlled
        assert r["duration"] == pytest.approx(wav_seconds(path), abs=0.001)
        assert r["size"] == path.stat().st_size
        assert r["sha256"] == sha256(path)
        span = recorded_span(db, r["call_id"])
        assert span is not None
        worst = max(worst, abs(r["duration"] - span))
    assert worst <= 0.5, f"a recording is {worst:.3f} s off its call's recorded span"
    print(f"200 complete recordings; worst |duration - recorded span| = {worst:.3f} s")
    talk = [r["duration"] for r in rows if r["caller_number"] == "13510000001"]
    assert min(talk) > 8.0  # the whole call, not a fragment


def _service(config: Path, db: Path, log: Path) -> subprocess.Popen[bytes]:
    seed_sync(db, if_needed=True)  # the lab agents and roster: see lab_settings
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "ivr_agent", "run", "--config", str(config)],
            cwd=REPO,
            env={
                **os.environ,
                "IVR_AGENT_STORAGE_DATABASE": str(db),
                "IVR_AGENT_LOG_FORMAT": "json",
                "IVR_AGENT_WEB_PORT": "0",
            },
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


@contextlib.contextmanager
def stopped_at_exit(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()


def cdr_billsec(lab: LabInfo, call_id: str) -> int:
    path = lab.lab_dir / "var/log/cdr-custom/Master.csv"
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = [c.strip('"') for c in line.split(",")]
        if cols[0] == call_id:
            return int(cols[8])
    raise AssertionError(f"no CDR for {call_id}")


async def test_kill_9_while_recording_then_restart_loses_nothing(
    lab: LabInfo, tmp_path: Path
) -> None:
    db = tmp_path / "calls.db"
    log = tmp_path / "service.log"
    procs = [_service(lab.config_path, db, log)]
    ended_while_down = "13520000001"  # ~9 s calls: they end while the service is dead
    outlived = "13520000002"  # ~15 s calls: still live at the restart
    with stopped_at_exit(procs):
        await wait_until(lambda: "ami_connected" in log.read_text(), 20, "service connected")
        async with running_service(lab_settings(lab, tmp_path / "caller-side.db")) as caller:
            await place_local_calls(
                caller.ami,
                LocalCall("talking", ended_while_down, "周一", hold_s=0),
                count=3,
                rate=10,
            )
            await place_local_calls(
                caller.ami, LocalCall("talking", outlived, "周二", hold_s=6), count=3, rate=10
            )
            await wait_until(
                lambda: (
                    len(rec_rows(db, "status = 'recording' AND caller_number LIKE '1352%'")) == 6
                ),
                15,
                "six recordings in progress",
            )
            # The recordings rows are written on another connection than the call timeline:
            # wait until the outliving calls' MixMonitorStart is committed too, or a kill in
            # the 50 ms before the timeline's next flush loses it (unacknowledged, by design).
            await wait_until(
                lambda: all(
                    _timeline_has(db, str(r["call_id"]), "MixMonitorStart")
                    for r in rec_rows(db, "caller_number = ?", (outlived,))
                ),
                15,
                "the outliving calls' MixMonitorStart committed",
            )
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            killed_at = time.monotonic()
            await asyncio.sleep(10)  # the short calls end while nobody watches
            procs.append(_service(lab.config_path, db, log))
            await wait_until(
                lambda: (
                    len(rec_rows(db, "status = 'complete' AND caller_number LIKE '1352%'")) == 6
                ),
                40,
                "all six recordings complete after the restart",
            )
            assert time.monotonic() - killed_at < 60
            # The start-up reconcile walks the whole (shared, growing) lab folder: let it finish.
            await wait_until(
                lambda: "recordings_reconciled" in log.read_text(), 90, "the start-up reconcile"
            )
    assert procs[-1].returncode == 0, log.read_text()[-2000:]
    rows = rec_rows(db, "caller_number LIKE '1352%'")
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"complete"}
    for r in rows:
        path = lab.recordings_dir / r["path"]
        assert r["duration"] == pytest.approx(wav_seconds(path), abs=0.001)
        assert r["sha256"] == sha256(path)
        if r["caller_number"] == outlived:
            # Started before the kill, ended after the restart: the service saw both ends.
            span = recorded_span(db, r["call_id"])
            assert span is not None
            assert abs(r["duration"] - span) <= 0.5
        else:
            # Ended while the service was dead: Asterisk's own CDR is the ground truth.
            assert abs(r["duration"] - cdr_billsec(lab, r["call_id"])) < 1.0
    assert not rec_rows(db, "status = 'recording'" + " AND caller_number LIKE '1352%'")
    assert "recordings_reconciled" in log.read_text()


def add_supervisor(lab: LabInfo, db: Path, name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ivr_agent", "users", "add", name, "--role", "supervisor",
         "--password-stdin", "--config", str(lab.config_path)],
        input=SUPERVISOR_PASSWORD + "\n", capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "IVR_AGENT_STORAGE_DATABASE": str(db)}, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


def audit_rows(db: Path, action: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        conn.row_factory = sqlite3.Row
        return [
            dict(r)
            for r in conn.execute("SELECT * FROM audit_log WHERE action = ? ORDER BY id", (action,))
        ]


async def test_supervisor_pulls_wav_and_ogg_through_the_service(
    lab: LabInfo, tmp_path: Path
) -> None:
    db = tmp_path / "calls.db"
    add_supervisor(lab, db, "质检组长")
    number = "13530000001"
    async with running_service(lab_settings(lab, db)) as service:
        await place_local_calls(service.ami, LocalCall("talking", number, "刘一", hold_s=0))
        ogg = LocalCall("talking", number, "刘一", hold_s=0).originate()
        ogg["Variable"] += ",IVR_AGENT_REC_FORMAT=ogg"  # the dialplan's compact format
        await service.ami.send(ogg, timeout=5)
        await wait_until(
            lambda: len(rec_rows(db, "caller_number = ? AND status = 'complete'", (number,))) == 2,
            30,
            "two complete recordings",
        )
        assert service.web is not None
        async with httpx.AsyncClient(base_url=service.web.url) as web:
            assert (await web.get("/api/recordings")).status_code == 401
            r = await web.post(
                "/api/login", json={"name": "质检组长", "password": SUPERVISOR_PASSWORD}
            )
            assert r.status_code == 200, r.text
            found = (await web.get("/api/recordings", params={"caller": number})).json()["items"]
            assert {i["format"] for i in found} == {"wav", "ogg"}
            for item in found:
                path = lab.recordings_dir / f"{item['call_id']}.{item['format']}"
                data = path.read_bytes()
                access = await web.post(
                    f"/api/recordings/{item['recording_id']}/access", json={"action": "play"}
                )
                url = access.json()["url"]
                first = await web.get(url, headers={"Range": "bytes=0-"})
                assert first.status_code == 206
                assert first.headers["content-type"] == (
                    "audio/ogg" if item["format"] == "ogg" else "audio/wav"
                )
                assert first.content == data
                middle = await web.get(url, headers={"Range": f"bytes={len(data) // 2}-"})
                assert middle.content == data[len(data) // 2 :]
                assert abs(item["duration"] - recorded_span(db, item["call_id"])) <= 0.5  # type: ignore[operator]
            wav_item = next(i for i in found if i["format"] == "wav")
            ogg_item = next(i for i in found if i["format"] == "ogg")
            # The compact format: bytes per minute of audio, measured on these two calls.
            wav_rate = wav_item["size"] / wav_item["duration"] * 60
            ogg_rate = ogg_item["size"] / ogg_item["duration"] * 60
            assert 950_000 < wav_rate < 970_000  # 8 kHz x 16 bit = 960,000 B/min + header
            assert ogg_rate < wav_rate / 3  # Vorbis q0.4: ~4.7x smaller on continuous speech
    assert len(audit_rows(db, "list")) == 1
    plays = audit_rows(db, "play")
    assert len(plays) == 2  # four Range requests, two accesses
    assert {p["actor"] for p in plays} == {"质检组长"}
    assert plays[0]["client"] == "127.0.0.1"


def run_cli(lab: LabInfo, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--config", str(lab.config_path), env={"IVR_AGENT_STORAGE_DATABASE": str(db)})


async def test_operator_cli_list_get_verify_flag(lab: LabInfo, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    number = "13540000001"
    add_supervisor(lab, db, "组长")
    async with running_service(lab_settings(lab, db)) as service:
        await place_local_calls(service.ami, LocalCall("silent", number, "吴一", hold_s=2))
        await wait_until(
            lambda: bool(rec_rows(db, "caller_number = ? AND status = 'complete'", (number,))),
            20,
            "the recording",
        )
    listed = run_cli(lab, db, "recordings", "list", "--json", "--caller", number)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    out = tmp_path / "call.wav"
    got = run_cli(lab, db, "recordings", "get", row["recording_id"], "--output", str(out))
    assert got.returncode == 0, got.stderr
    assert sha256(out) == row["sha256"]
    assert "verified" in got.stdout
    # The record says one thing, the bytes another: refused, and nothing is written.
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "UPDATE recordings SET sha256 = ? WHERE recording_id = ?",
            ("0" * 64, row["recording_id"]),
        )
    bad = run_cli(
        lab, db, "recordings", "get", row["recording_id"], "--output", str(tmp_path / "x")
    )
    assert bad.returncode != 0
    assert "sha256 mismatch" in bad.stderr
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "x.partial").exists()
    verify = run_cli(lab, db, "recordings", "verify", "--json")
    assert verify.returncode == 1
    report = json.loads(verify.stdout)
    assert [m["recording_id"] for m in report["mismatched"]] == [row["recording_id"]]
    assert report["checked"] == report["ok"] + 1 + len(report["missing"])
    flag = run_cli(
        lab, db, "recordings", "flag", row["call_id"], "--kind", "threat",
        "--reason", "扬言伤人", "--by", "组长",
    )  # fmt: skip
    assert flag.returncode == 0, flag.stderr
    assert rec_rows(db, "recording_id = ?", (row["recording_id"],))[0]["evidence"] == 1
    assert [r["actor"] for r in audit_rows(db, "flag_evidence")] == ["组长"]
    assert len(audit_rows(db, "download")) == 1  # the refused copy is not an access
    assert len(audit_rows(db, "list")) == 1
