"""The lab PBX for real: status, AMI login, a SIP call with a Chinese caller name, restart."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
import wave
from pathlib import Path

import pytest

from ivr_agent.config import load_settings
from ivr_agent.errors import LabError
from ivr_agent.lab import asterisk, host
from ivr_agent.lab import prompts as lab_prompts
from ivr_agent.lab.amiprobe import RawAmi
from ivr_agent.lab.asterisk import CONF
from ivr_agent.lab.pbx import Lab, LabInfo
from ivr_agent.lab.sipp import place_sip_calls

pytestmark = pytest.mark.integration


def _number() -> str:
    # A fresh caller number per test, so events of another call never match.
    return f"138{random.randrange(10**8):08d}"  # noqa: S311


async def _recording_seconds(path: Path, at_least: float, within: float) -> float:
    """Seconds of audio in a finished MixMonitor file (it is closed shortly after hangup)."""
    deadline = time.monotonic() + within
    seconds = 0.0
    while time.monotonic() < deadline:
        try:
            with wave.open(str(path)) as wav:
                seconds = wav.getnframes() / wav.getframerate()
        except (FileNotFoundError, EOFError, wave.Error):
            seconds = 0.0
        if seconds >= at_least:
            break
        await asyncio.sleep(0.2)
    return seconds


def test_lab_status_is_up(lab: LabInfo, lab_control: Lab) -> None:
    status = lab_control.status()
    assert status.up, status
    assert status.asterisk_running
    assert status.pid is not None
    assert "Asterisk 22." in lab_control.asterisk_cli("core show version")


def test_every_sound_the_lab_plays_is_rendered(lab: LabInfo) -> None:
    """Talking callers and agents play these: a missing one makes every call end at once."""
    for name in lab_prompts.PROMPTS:
        with wave.open(str(lab.sounds_dir / f"{name}.wav")) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() > 8000, name  # more than a second of speech


def test_generated_service_config_loads(lab: LabInfo) -> None:
    settings = load_settings(lab.config_path, env={})
    assert settings.ami.secret == lab.ami_secret
    assert (settings.ami.host, settings.ami.port) == (lab.ami_host, lab.ami_port)
    assert settings.ami.username == "ivr-agent"
    assert Path(settings.hotline.recordings_dir) == lab.recordings_dir
    assert (lab.lab_dir / "ami.secret").stat().st_mode & 0o777 == 0o600
    assert lab.ami_secret not in repr(lab)


async def test_ami_login_with_generated_secret(ami: RawAmi) -> None:
    reply = await ami.action({"Action": "Ping"})
    assert reply.get("Response") == "Success"


async def test_ami_refuses_a_wrong_secret(lab: LabInfo) -> None:
    with pytest.raises(LabError, match="login refused"):
        await RawAmi.login(lab.ami_host, lab.ami_port, lab.ami_username, "wrong")


async def test_ami_user_cannot_run_cli_commands(ami: RawAmi) -> None:
    reply = await ami.action({"Action": "Command", "Command": "core show uptime"})
    assert reply.get("Response") == "Error"


async def _hotline_open(ami: RawAmi) -> None:
    """No service runs here: the hotline must queue (as a PBX without ivr-agent does), whatever
    IVR_AGENT_OPEN_support a previous test's service left (unset counts as open). Without a
    service the queue may have no members: the caller waits, talking and recorded, until it
    hangs up."""
    reply = await ami.action(
        {"Action": "Setvar", "Variable": "IVR_AGENT_OPEN_support", "Value": ""}
    )
    assert reply.get("Response") == "Success"


async def test_sip_talking_call_with_chinese_name(lab: LabInfo, ami: RawAmi) -> None:
    await _hotline_open(ami)
    number = _number()
    call = asyncio.ensure_future(
        place_sip_calls(lab.lab_dir, "talking", number, "张三", "95000", hold_s=9)
    )
    try:
        new = await ami.wait_event("Newchannel", 10, CallerIDNum=number)
        assert new.get("CallerIDName") == "张三"
        assert new.get("Channel").startswith("PJSIP/")
        assert new.get("Exten") == "95000"
        assert float(new.get("Timestamp")) > 0  # timestampevents = yes
        talking = await ami.wait_event("ChannelTalkingStart", 10, Channel=new.get("Channel"))
        call_id = talking.chan_vars()["CALL_ID"]
        assert call_id == new.get("Uniqueid")
        # 7 s of speech then RTP silence: TALK_DETECT sees the caller stop talking.
        stop = await ami.wait_event("ChannelTalkingStop", 10, Channel=new.get("Channel"))
        assert int(stop.get("Duration")) > 3000
    finally:
        result = await call
    assert result.ok, result
    seconds = await _recording_seconds(lab.recordings_dir / f"{call_id}.wav", 8.0, within=5)
    assert seconds >= 8.0


async def test_sip_silent_call_never_talks(lab: LabInfo, ami: RawAmi) -> None:
    await _hotline_open(ami)
    number = _number()
    result = None
    call = asyncio.ensure_future(
        place_sip_calls(lab.lab_dir, "silent", number, "李四", "95000", hold_s=3)
    )
    try:
        new = await ami.wait_event("Newchannel", 10, CallerIDNum=number)
        channel = new.get("Channel")
        with pytest.raises(TimeoutError):
            await ami.wait_event("ChannelTalkingStart", 4, Channel=channel)
    finally:
        result = await call
    assert result.ok, result


async def test_restart_keeps_the_secret_and_ami_comes_back(lab: LabInfo, lab_control: Lab) -> None:
    pid_before = (await asyncio.to_thread(lab_control.status)).pid
    info = await asyncio.to_thread(lab_control.restart)
    assert info.ami_secret == lab.ami_secret
    status = await asyncio.to_thread(lab_control.status)
    assert status.up
    assert status.pid != pid_before
    async with await RawAmi.login(
        info.ami_host, info.ami_port, info.ami_username, info.ami_secret
    ) as session:
        reply = await session.action({"Action": "Ping"})
    assert reply.get("Response") == "Success"


def test_up_again_is_idempotent(lab: LabInfo, lab_control: Lab) -> None:
    pid = lab_control.status().pid
    assert lab_control.up() == lab
    assert lab_control.status().pid == pid


def test_a_lab_whose_folder_was_deleted_is_taken_over(tmp_path: Path) -> None:
    """CI deletes its checkout with the lab still up: the next `lab up` from any folder must not
    be locked out by that orphan. A scratch chroot gets a real bind mount of a since-deleted
    folder and an orphan "Asterisk" (python named asterisk with the lab's -C, rooted in that
    chroot); the shared lab is untouched."""
    cache = tmp_path / "cache"
    lines: list[str] = []
    lab = Lab(tmp_path / "new-lab", cache, echo=lines.append)
    lab.lab_dir.mkdir()
    root = lab.chroot
    for link in ("bin", "lib", "lib64"):
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(f"usr/{link}")
    (root / "usr").mkdir()
    (root / "tmp").mkdir()
    (root / "tmp" / "asterisk").symlink_to("/usr/bin/python3")
    gone = tmp_path / "checkout-removed"
    gone.mkdir()
    point = root / "lab"
    point.mkdir()
    mounts = [root / "usr", point]
    subprocess.run(["mount", "--bind", "-o", "ro", "/usr", str(root / "usr")], check=True)
    subprocess.run(["mount", "--bind", str(gone), str(point)], check=True)
    orphan = subprocess.Popen(
        ["chroot", str(root), "/tmp/asterisk", "-c", "import time; time.sleep(60)", "-C", CONF],
    )
    try:
        gone.rmdir()
        (seen,) = [m for m in host.mounts() if m.mount_point == str(point)]
        assert seen.fs_root == f"{gone}//deleted"  # the kernel's name for it
        deadline = time.monotonic() + 5
        while not asterisk.is_lab_asterisk(orphan.pid, root) and time.monotonic() < deadline:
            time.sleep(0.05)  # chroot(8) has to chroot and exec first
        assert asterisk.is_lab_asterisk(orphan.pid, root)
        lab._mount()
        assert orphan.wait(timeout=10) is not None  # stopped by its PID
        assert lab.status().mounted
        assert any("deleted lab folder" in line and str(orphan.pid) in line for line in lines)
        assert [m.fs_root for m in host.mounts() if m.mount_point == str(point)] == [
            str(lab.lab_dir)
        ]
    finally:
        orphan.kill()
        orphan.wait()
        for path in mounts:
            while any(m.mount_point == str(path) for m in host.mounts()):
                host.unmount(path)
