"""Calls through the real lab Asterisk end up as correct, complete call records."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr_agent.lab import sipp
from ivr_agent.lab.pbx import Lab, LabInfo
from ivr_agent.lab.seed import seed_sync
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from tests.integration.service import (
    REPO,
    cdr_linkedids,
    cli,
    db_rows,
    lab_settings,
    running_service,
    wait_until,
)

pytestmark = pytest.mark.integration


def ended(db: Path, number: str) -> list[dict[str, object]]:
    return db_rows(db, "caller_number = ? AND ended_at IS NOT NULL", (number,))


async def test_talking_silent_and_sip_calls_are_recorded(lab: LabInfo, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    settings = lab_settings(lab, db)
    async with running_service(settings) as service:
        await place_local_calls(service.ami, LocalCall("talking", "13900139001", "李四", hold_s=3))
        await place_local_calls(service.ami, LocalCall("silent", "13900139002", "王五", hold_s=3))
        result = await sipp.place_sip_calls(
            lab.lab_dir, "talking", caller_number="13800138000", caller_name="张三丰", hold_s=3
        )
        assert result.ok, result.log_tail
        await wait_until(
            lambda: all(ended(db, n) for n in ("13900139001", "13900139002", "13800138000")),
            30,
            "three ended calls",
        )

    out = cli(
        "calls",
        "list",
        "--json",
        "--limit",
        "100000",
        "--config",
        str(lab.config_path),
        env={"IVR_AGENT_STORAGE_DATABASE": str(db)},
    )
    assert out.returncode == 0, out.stderr
    # The lab is shared: the service records other tests' calls too; ours are these three.
    ours = {"13900139001", "13900139002", "13800138000"}
    rows = {r["caller_number"]: r for r in json.loads(out.stdout) if r["caller_number"] in ours}
    assert set(rows) == ours
    for number, name in (
        ("13900139001", "李四"),
        ("13900139002", "王五"),
        ("13800138000", "张三丰"),
    ):
        r = rows[number]
        assert r["caller_name"] == name
        assert r["dialed_number"] == "95000"
        assert r["queue"] == "support"
        assert str(r["agent"]).startswith("agent")
        assert r["disposition"] == "answered"
        assert r["started_at"] <= r["answered_at"] <= r["ended_at"]
        assert isinstance(r["hangup_cause"], int)
        for key in (
            "call_id",
            "caller_number",
            "caller_name",
            "dialed_number",
            "queue",
            "agent",
            "started_at",
            "answered_at",
            "ended_at",
            "disposition",
            "hangup_cause",
        ):
            assert key in r

    shown = cli(
        "calls",
        "show",
        str(rows["13800138000"]["call_id"]),
        "--config",
        str(lab.config_path),
        env={"IVR_AGENT_STORAGE_DATABASE": str(db)},
    )
    assert shown.returncode == 0, shown.stderr
    call = json.loads(shown.stdout)
    kinds = [t["kind"] for t in call["timeline"]]
    assert kinds[0] == "Newchannel"
    assert {"QueueCallerJoin", "AgentConnect", "Hangup"} <= set(kinds)
    assert "张三丰" in shown.stdout


async def test_asterisk_restart_mid_stream_loses_no_call(
    lab: LabInfo, lab_control: Lab, tmp_path: Path
) -> None:
    db = tmp_path / "calls.db"
    since = time.time()
    async with running_service(lab_settings(lab, db)) as service:
        # Calls in progress when Asterisk goes down...
        await place_local_calls(
            service.ami, LocalCall("talking", "13700000001", "赵六", hold_s=30), count=3, rate=5
        )
        await wait_until(
            lambda: len(db_rows(db, "caller_number = '13700000001' AND agent != ''")) == 3,
            20,
            "three calls connected to agents",
        )
        connects = service.ami.stats.connects
        await asyncio.to_thread(lab_control.restart)
        await wait_until(
            lambda: service.ami.ready and service.ami.stats.connects > connects,
            30,
            "the service to reconnect by itself",
        )
        # ...and calls after it is back.
        await place_local_calls(
            service.ami, LocalCall("talking", "13700000002", "孙七", hold_s=2), count=3, rate=5
        )
        await wait_until(
            lambda: len(ended(db, "13700000002")) == 3, 30, "the calls after the restart"
        )
        await wait_until(
            lambda: len(ended(db, "13700000001")) == 3, 30, "the interrupted calls closed"
        )

    before = ended(db, "13700000001")
    after = ended(db, "13700000002")
    assert all(r["state"] == "ended" for r in before + after)
    assert all(r["disposition"] == "answered" for r in after)
    # Nothing of ours left "in progress" (other tests' calls may still be live in the shared lab).
    assert not db_rows(db, "ended_at IS NULL AND caller_number LIKE '13700000%'")
    # Every call Asterisk's own CDR file has for the window is in our DB (the lab is shared with
    # other tests: the service records their calls too, so compare against everything it has).
    cdr = cdr_linkedids(lab, since)
    assert {str(r["call_id"]) for r in after} <= cdr
    assert cdr <= {str(r["call_id"]) for r in db_rows(db)}


def _service(config: Path, db: Path, log: Path) -> subprocess.Popen[bytes]:
    seed_sync(db, if_needed=True)  # the lab agents and roster: see lab_settings
    with log.open("ab") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ivr_agent", "run", "--config", str(config)],
            cwd=REPO,
            env={
                **os.environ,
                "IVR_AGENT_STORAGE_DATABASE": str(db),
                "IVR_AGENT_LOG_FORMAT": "json",
            },
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


async def test_kill_9_mid_stream_then_restart(lab: LabInfo, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    log = tmp_path / "service.log"
    proc = _service(lab.config_path, db, log)
    try:
        await wait_until(lambda: "ami_connected" in log.read_text(), 20, "service connected")
        async with running_service(lab_settings(lab, tmp_path / "caller-side.db")) as caller:
            await place_local_calls(
                caller.ami, LocalCall("talking", "13600000001", "周八", hold_s=2), count=3, rate=5
            )
            await place_local_calls(
                caller.ami, LocalCall("talking", "13600000002", "吴九", hold_s=12), count=3, rate=5
            )
            await wait_until(lambda: len(ended(db, "13600000001")) == 3, 30, "short calls done")
            await wait_until(
                lambda: len(db_rows(db, "caller_number = '13600000002' AND agent != ''")) == 3,
                20,
                "long calls connected",
            )
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert db_rows(db, "caller_number = '13600000002' AND ended_at IS NULL")
            proc = _service(lab.config_path, db, log)
            await wait_until(lambda: len(ended(db, "13600000002")) == 3, 40, "long calls closed")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, log.read_text()[-2000:]
    short = ended(db, "13600000001")
    long = ended(db, "13600000002")
    assert [r["disposition"] for r in short] == ["answered"] * 3
    assert all(r["reconciled"] == 0 for r in short)
    # In flight at the kill: adopted after restart and finished normally, or reconciled.
    assert all(r["state"] == "ended" for r in long)
    assert all(r["disposition"] in ("answered", "unknown") for r in long)
    assert not db_rows(db, "ended_at IS NULL AND caller_number LIKE '13600000%'")
    text = log.read_text()
    assert "calls_adopted" in text
