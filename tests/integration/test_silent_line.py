"""The silent line in the real lab: silent callers hear the prompt and are hung up; talking
callers never are; the recording holds the prompt (measured with sox, not assumed)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path

import pytest

from ivr_agent.config import Settings
from ivr_agent.lab import sipp
from ivr_agent.lab.pbx import LabInfo
from ivr_agent.lab.simulator import LocalCall, place_local_calls
from tests.integration.service import db_rows, lab_settings, running_service, wait_until

pytestmark = pytest.mark.integration

WINDOW = 3.0  # a short window keeps the test fast; the rule is the same at the default 8 s


def settings(lab: LabInfo, db: Path) -> Settings:
    s = lab_settings(lab, db)
    return dataclasses.replace(
        s, silent_line=dataclasses.replace(s.silent_line, agent_window=WINDOW)
    )


def ended(db: Path, number: str) -> list[dict[str, object]]:
    return db_rows(db, "caller_number = ? AND ended_at IS NOT NULL", (number,))


def rms_db(path: Path, start: float, length: float) -> float:
    out = subprocess.run(
        ["sox", str(path), "-n", "trim", str(start), str(length), "stats"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stderr  # fmt: skip
    line = next(ln for ln in out.splitlines() if ln.startswith("RMS lev dB"))
    value = line.split()[-1]
    return float("-inf") if value == "-inf" else float(value)


def duration(path: Path) -> float:
    out = subprocess.run(
        ["soxi", "-D", str(path)], capture_output=True, text=True, timeout=30, check=True
    )
    return float(out.stdout)


async def test_silent_and_talking_callers_local_and_sip(lab: LabInfo, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    async with running_service(settings(lab, db)) as service:
        assert service.silent_line is not None
        await place_local_calls(service.ami, LocalCall("silent", "13811110001", "静默", hold_s=40))
        await place_local_calls(
            service.ami, LocalCall("talking", "13811110002", "说话", hold_s=WINDOW + 6)
        )
        silent_sip, talking_sip = await asyncio.gather(
            sipp.place_sip_calls(
                lab.lab_dir, "silent", caller_number="13811110003", caller_name="无声", hold_s=40
            ),
            sipp.place_sip_calls(
                lab.lab_dir, "talking", caller_number="13811110004", caller_name="有声",
                hold_s=WINDOW + 6,
            ),
        )  # fmt: skip
        await wait_until(
            lambda: all(ended(db, f"1381111000{i}") for i in range(1, 5)), 60, "four calls ended"
        )
        history = list(service.silent_line.history)

    rows = {str(r["caller_number"]): r for r in db_rows(db, "caller_number LIKE '1381111000%'")}
    assert rows["13811110001"]["disposition"] == "silent_line"
    assert rows["13811110003"]["disposition"] == "silent_line"
    assert rows["13811110002"]["disposition"] == "answered"
    assert rows["13811110004"]["disposition"] == "answered"
    fired = {t.call_id for t in history if t.ok}
    assert fired == {str(rows["13811110001"]["call_id"]), str(rows["13811110003"]["call_id"])}
    # The silent callers did not wait for their own 40 s: the line hung up after the prompt.
    for number in ("13811110001", "13811110003"):
        r = rows[number]
        assert isinstance(r["talk_time"], float)
        assert r["talk_time"] < WINDOW + 1.0 + 12.0
    # (SIPp counts the silent call as failed: the line, not SIPp, hung up. That is the point.)
    assert silent_sip.calls_total == 1
    assert talking_sip.successful == 1

    # The recording of a silent call ends with the prompt: loud where the prompt plays.
    prompt = lab.sounds_dir / "silent-line.wav"
    rec = lab.recordings_dir / f"{rows['13811110001']['call_id']}.wav"
    await wait_until(lambda: rec.exists() and duration(rec) > 5, 20, "the recording closed")
    length, prompt_len = duration(rec), duration(prompt)
    tail = rms_db(rec, length - prompt_len + 0.5, prompt_len - 1.0)
    source = rms_db(prompt, 0.5, prompt_len - 1.0)
    assert abs(tail - source) < 3.0, (tail, source)


async def test_caller_hanging_up_inside_the_window_gets_nothing(
    lab: LabInfo, tmp_path: Path
) -> None:
    db = tmp_path / "calls.db"
    async with running_service(settings(lab, db)) as service:
        assert service.silent_line is not None
        await place_local_calls(service.ami, LocalCall("silent", "13811110005", "挂断", hold_s=1.0))
        await wait_until(lambda: bool(ended(db, "13811110005")), 30, "the call ended")
        await asyncio.sleep(WINDOW)
        history = list(service.silent_line.history)
    (row,) = ended(db, "13811110005")
    assert row["disposition"] in ("answered", "abandoned")
    assert all(t.call_id != row["call_id"] for t in history)
