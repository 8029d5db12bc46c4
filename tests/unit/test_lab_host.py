"""Pure host checks of the lab: mirror parsing, root, tools, free space."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from ivr_agent.errors import LabError
from ivr_agent.lab import host

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_deb822() -> None:
    assert host.parse_mirror(DEB822, None) == "http://deb.debian.org/debian"


def test_mirror_skips_security_disabled_and_src_stanzas() -> None:
    text = (
        "Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: x-security\n\n"
        "Types: deb\nEnabled: no\nURIs: http://disabled.example/debian\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\n\n"
        "Types: deb deb-src\nURIs: https://mirror.example/debian\n"
    )
    assert host.parse_mirror(text, None) == "https://mirror.example/debian"


def test_mirror_falls_back_to_sources_list() -> None:
    legacy = (
        "# comment\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb http://security.debian.org/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian bookworm main\n"
    )
    assert host.parse_mirror(None, legacy) == "http://ftp.example/debian"
    assert host.parse_mirror("", legacy) == "http://ftp.example/debian"


def test_no_mirror_is_an_error() -> None:
    with pytest.raises(LabError, match="IVR_AGENT_LAB_MIRROR"):
        host.parse_mirror(None, None)


def test_mirror_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_AGENT_LAB_MIRROR", "http://local.example/debian")
    assert host.host_mirror() == "http://local.example/debian"


def test_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        host.require_root("lab up")


def test_missing_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda tool: None if tool != "sox" else "/usr/bin/sox")
    with pytest.raises(LabError) as err:
        host.require_tools("debootstrap", "espeak-ng", "sox")
    message = str(err.value)
    assert "debootstrap, espeak-ng" in message
    assert "make bootstrap" in message
    assert "apt-get install -y debootstrap espeak-ng" in message


def test_too_little_free_space(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("shutil.disk_usage", lambda _p: usage(10 << 30, 10 << 30, 5 << 20))
    with pytest.raises(LabError, match="5 MiB free, need 1024 MiB"):
        host.require_free_space(tmp_path, 1 << 30, "the chroot")


def test_mountinfo_unescape() -> None:
    assert host._unescape(r"/var/cache/my\040lab") == "/var/cache/my lab"
    assert host._unescape("/tmp/实验") == "/tmp/实验"


def test_same_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert host.same_folder(tmp_path / "a", tmp_path / "a")
    assert not host.same_folder(tmp_path / "a", tmp_path / "b")
    assert not host.same_folder(tmp_path / "missing", tmp_path / "a")


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "messages.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)), encoding="utf-8")
    assert host.tail(log, 2) == "line 28\nline 29"
    assert "not readable" in host.tail(tmp_path / "missing.log")
