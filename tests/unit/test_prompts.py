"""Prompts are re-rendered only when missing or when their text changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr_agent import prompts
from ivr_agent.domain.phrases import Key
from ivr_agent.errors import LabError
from ivr_agent.lab import prompts as lab_prompts

REPO = Path(__file__).resolve().parents[2]


def test_texts_come_from_the_handbook_phrases() -> None:
    assert set(prompts.PROMPTS) == {
        "silent-line",
        "civil-warning",
        "closing",
        "after-hours",
        "callback-recorded",
    }
    assert "请按1" in prompts.PROMPTS["after-hours"]
    assert prompts.PROMPTS["silent-line"].startswith("对不起,我听不到你的声音")
    assert prompts.PROMPTS["closing"] == "感谢您的电话,再见!"
    assert set(lab_prompts.PROMPTS) == {*prompts.PROMPTS, "talk", "agent-greeting"}


def test_overridden_text() -> None:
    texts = prompts.hotline_prompts({Key.CLOSING: "再见!"})
    assert texts["closing"] == "再见!"


def test_operator_recording_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "closing.wav").write_bytes(b"RIFF-operator")  # no stamp: the operator's own
    assert prompts.stale_prompts(tmp_path, {"closing": "x"}) == []


def test_stale_until_stamped(tmp_path: Path) -> None:
    texts = {"hello": "你好"}
    assert prompts.stale_prompts(tmp_path, texts) == ["hello"]
    (tmp_path / "hello.wav").write_bytes(b"RIFF")
    (tmp_path / ".hello.sha256").write_text(prompts._stamp("你好") + "\n", encoding="utf-8")
    assert prompts.stale_prompts(tmp_path, texts) == []
    assert prompts.stale_prompts(tmp_path, {"hello": "您好"}) == ["hello"]


def test_missing_tools_fail_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda _tool: None)
    assert prompts.render_prompts(tmp_path, {}) == []
    with pytest.raises(LabError, match="espeak-ng, sox"):
        prompts.render_prompts(tmp_path, {"hello": "你好"})


def test_cli_check_lists_missing_prompts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr_agent.cli import main

    assert main(["prompts", "render", "--dir", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "silent-line.wav" in out
    for name in prompts.PROMPTS:
        (tmp_path / f"{name}.wav").write_bytes(b"RIFF-own")  # the operator's own recordings
    assert main(["prompts", "render", "--dir", str(tmp_path), "--check"]) == 0
    assert main(["prompts", "render", "--dir", str(tmp_path)]) == 0
    assert "kept" in capsys.readouterr().out
    assert (tmp_path / "closing.wav").read_bytes() == b"RIFF-own"


def test_lab_renders_what_its_dialplan_plays(tmp_path: Path) -> None:
    """The lab's simulated callers and agents play talk.wav and agent-greeting.wav: a fresh lab
    folder must list them as stale (a clean CI checkout once lacked both, so talking callers hung
    up at once and looked silent)."""
    assert set(lab_prompts.stale_prompts(tmp_path)) == set(lab_prompts.PROMPTS)
    for name in prompts.PROMPTS:
        (tmp_path / f"{name}.wav").write_bytes(b"RIFF-own")
    assert set(lab_prompts.stale_prompts(tmp_path)) == {"talk", "agent-greeting"}
    plays = {
        line.split("Playback(/lab/sounds/", 1)[1].split(")", 1)[0]
        for line in (REPO / "dialplan" / "lab" / "extensions.conf").read_text().splitlines()
        if "Playback(/lab/sounds/" in line
    }
    assert plays
    assert plays <= set(lab_prompts.PROMPTS)
