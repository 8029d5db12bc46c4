"""The `ivr-agent` command: every bad input is one clear line on stderr and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr_agent.cli import main


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("ivr-agent: error: ")
    assert "\n" not in err
    assert "Traceback" not in err
    return err


def test_run_with_a_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[ami]\nport = 'five'\n")
    assert main(["run", "--config", str(bad)]) == 2
    err = one_error_line(capsys)
    assert str(bad) in err
    assert "ami.port" in err


def test_run_with_a_missing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IVR_AGENT_AMI_SECRET", raising=False)
    cfg = tmp_path / "ok.toml"
    cfg.write_text(f'[storage]\ndatabase = "{tmp_path / "db.sqlite"}"\n')
    assert main(["run", "--config", str(cfg)]) == 2
    assert "missing AMI secret" in one_error_line(capsys)


def test_run_with_an_unreadable_secret_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IVR_AGENT_AMI_SECRET", raising=False)
    cfg = tmp_path / "ok.toml"
    cfg.write_text('[ami]\nsecret_file = "nope.secret"\n')
    assert main(["run", "--config", str(cfg)]) == 2
    err = one_error_line(capsys)
    assert "ami.secret_file" in err
    assert "nope.secret" in err


def test_lab_up_as_non_root(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["lab", "up", "--dir", str(tmp_path / "lab")]) == 2
    assert "root" in one_error_line(capsys)


def test_calls_list_with_a_bad_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text(f'[storage]\ndatabase = "{tmp_path / "db.sqlite"}"\n')
    assert main(["calls", "list", "--config", str(cfg), "--since", "yesterday"]) == 2
    assert "--since" in one_error_line(capsys)


def test_calls_list_and_show_on_an_empty_db(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text(f'[storage]\ndatabase = "{tmp_path / "db.sqlite"}"\n')
    assert main(["calls", "list", "--json", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.strip() == "[]"
    assert main(["calls", "show", "123.4", "--config", str(cfg)]) == 1
    assert "no call '123.4'" in capsys.readouterr().err


def test_no_config_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVR_AGENT_CONFIG", raising=False)
    monkeypatch.setattr("ivr_agent.service_cli.DEFAULT_CONFIGS", (str(tmp_path / "x.toml"),))
    assert main(["calls", "list"]) == 2
    assert "no config" in one_error_line(capsys)
