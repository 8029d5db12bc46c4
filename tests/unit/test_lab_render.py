"""Lab rendering: the service config round-trips through load_settings; secrets stay private."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr_agent.config import load_settings
from ivr_agent.lab import render


def test_service_config_round_trip(tmp_path: Path) -> None:
    secret = render.ensure_secret(tmp_path)
    path = render.write_service_config(tmp_path)
    assert path == tmp_path / "ivr-agent.toml"
    assert secret not in path.read_text(encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.ami.host == "127.0.0.1"
    assert settings.ami.port == 5038
    assert settings.ami.username == "ivr-agent"
    assert settings.ami.secret == secret
    assert settings.ami.secret_file == str(tmp_path / "ami.secret")
    assert settings.storage.database == str(tmp_path / "ivr-agent.db")
    assert settings.hotline.queues == ("support",)
    assert settings.hotline.recordings_dir == str(tmp_path / "rec")
    assert settings.log.level == "info"


def test_secret_is_private_and_kept(tmp_path: Path) -> None:
    first = render.ensure_secret(tmp_path)
    assert len(first) >= 32
    assert (tmp_path / "ami.secret").stat().st_mode & 0o777 == 0o600
    assert render.ensure_secret(tmp_path) == first


def test_empty_secret_is_regenerated(tmp_path: Path) -> None:
    (tmp_path / "ami.secret").write_text("\n", encoding="utf-8")
    assert render.ensure_secret(tmp_path).strip()


def test_manager_secret_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    render.write_manager_secret(tmp_path, "s3cret")
    conf = tmp_path / "etc" / "manager_ivr_agent_secret.conf"
    assert conf.read_text(encoding="utf-8") == "secret = s3cret\n"
    assert conf.stat().st_mode & 0o777 == 0o600


def test_install_configs(tmp_path: Path) -> None:
    lab, fake_chroot = tmp_path / "lab", tmp_path / "chroot"
    (fake_chroot / "etc/asterisk").mkdir(parents=True)
    (fake_chroot / "etc/asterisk/indications.conf").write_text("[us]\n", encoding="utf-8")
    render.make_state_dirs(lab)
    render.install_configs(lab, fake_chroot)
    etc = {p.name for p in (lab / "etc").iterdir()}
    for name in (
        "asterisk.conf",
        "modules.conf",
        "extensions.conf",
        "extensions_ivr_agent.conf",
        "queues_ivr_agent.conf",
        "manager_ivr_agent.conf",
        "pjsip.conf",
        "cel.conf",
        "indications.conf",
    ):
        assert name in etc
    assert (lab / "roster.csv").read_text(encoding="utf-8").startswith("date,start,end,agent,role")
    assert (lab / "rec").stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("sub", ["var/log", "var/run", "var/lib", "var/spool", "sounds"])
def test_state_dirs(tmp_path: Path, sub: str) -> None:
    render.make_state_dirs(tmp_path)
    assert (tmp_path / sub).is_dir()


def test_dialplan_has_no_secrets_and_safe_file_names() -> None:
    dialplan = render.dialplan_dir()
    for conf in dialplan.rglob("*.conf"):
        assert not re.search(r"^\s*secret\s*=", conf.read_text(encoding="utf-8"), re.M), conf
    hotline = (dialplan / "extensions_ivr_agent.conf").read_text(encoding="utf-8")
    assert "MixMonitor(${ivr_rec}/${CALL_ID}.${ivr_recfmt})" in hotline
    # The format is one of two fixed words, never a channel's free text.
    assert 'Set(ivr_recfmt=${IF($["${IVR_AGENT_REC_FORMAT}" = "ogg"]?ogg:wav)})' in hotline
    assert "Set(CALL_ID=${UNIQUEID})" in hotline


def test_session_key_is_private_kept_and_read_by_the_web_config(tmp_path: Path) -> None:
    render.ensure_secret(tmp_path)
    path = render.write_service_config(tmp_path)
    key_file = tmp_path / "session.key"
    key = key_file.read_text(encoding="utf-8").strip()
    assert len(key) >= 40
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key not in path.read_text(encoding="utf-8")
    render.write_service_config(tmp_path)
    assert key_file.read_text(encoding="utf-8").strip() == key  # kept across `lab up`s
    settings = load_settings(path, env={})
    assert settings.web.enabled
    assert settings.web.session_key == key
    assert settings.recordings.retention_days == 180
