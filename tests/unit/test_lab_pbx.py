"""The Lab API refuses to run without root, before it touches anything."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ivr_agent.cli import main
from ivr_agent.errors import LabError
from ivr_agent.lab.pbx import Lab, LabInfo, LabStatus, default_lab_dir


@pytest.fixture
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)


@pytest.mark.usefixtures("not_root")
@pytest.mark.parametrize("method", ["up", "down", "restart"])
def test_not_root_is_refused_first(tmp_path: Path, method: str) -> None:
    lab = Lab(tmp_path / "lab", cache_dir=tmp_path / "cache")
    with pytest.raises(LabError, match="needs root"):
        getattr(lab, method)()
    assert not (tmp_path / "lab").exists()
    assert not (tmp_path / "cache").exists()


@pytest.mark.usefixtures("not_root")
def test_cli_lab_up_not_root_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "up", "--dir", str(tmp_path / "lab")]) == 2
    assert capsys.readouterr().err.startswith("ivr-agent: error: lab up needs root")


def test_cli_call_needs_a_running_lab(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["lab", "call", "--via", "local", "--dir", str(tmp_path / "nolab")]) == 2
    assert "is not up" in capsys.readouterr().err


def test_default_lab_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IVR_AGENT_LAB_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_lab_dir() == tmp_path / "var/lab"
    monkeypatch.setenv("IVR_AGENT_LAB_DIR", "rel/lab")
    assert default_lab_dir() == tmp_path / "rel/lab"


def test_cache_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IVR_AGENT_LAB_CACHE", str(tmp_path / "c"))
    assert Lab(tmp_path / "lab").chroot == tmp_path / "c" / "chroot-sid"
    monkeypatch.delenv("IVR_AGENT_LAB_CACHE")
    assert Lab(tmp_path / "lab").chroot == Path("/var/cache/ivr-agent/chroot-sid")


def test_lab_info_hides_the_secret(tmp_path: Path) -> None:
    info = LabInfo(tmp_path, tmp_path / "c.toml", "127.0.0.1", 5038, "ivr-agent", "hush", tmp_path,
                   tmp_path, 5060)  # fmt: skip
    assert "hush" not in repr(info)


def test_status_as_json(tmp_path: Path) -> None:
    status = LabStatus(tmp_path, tmp_path / "chroot", True, False, None, False, False,
                       "127.0.0.1:5038/tcp", "127.0.0.1:5060/udp", "20000-20200/udp")  # fmt: skip
    data = json.loads(json.dumps(status.as_dict()))
    assert data["up"] is False
    assert data["lab_dir"] == str(tmp_path)


async def test_sync_api_refuses_a_running_loop(tmp_path: Path) -> None:
    from ivr_agent.lab import asterisk

    async def never() -> None:  # pragma: no cover - must not even be created
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="to_thread"):
        asterisk._run_sync(never)
