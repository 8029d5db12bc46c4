"""The lab's spoken prompts: texts in one place, rendered with espeak-ng + sox when changed."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import structlog

from ivr_agent.errors import LabError
from ivr_agent.lab import host

log = structlog.get_logger()

VOICE = "cmn"  # espeak-ng Mandarin
# name -> text; DIR/sounds/<name>.wav, played as /lab/sounds/<name> in the dialplan.
PROMPTS: dict[str, str] = {
    # Played to a caller whose line stays silent (the handbook's wording).
    "silent-line": "对不起,我听不到你的声音,你换一部电话再打过来,好吗?我现在挂机了。",
    # What a simulated talking caller says: about 9 s, long enough for TALK_DETECT to fire.
    "talk": "你好,我的宽带从昨天晚上开始就上不了网,麻烦你帮我看一下。",
    # What a lab agent says on answering.
    "agent-greeting": "您好!请问有什么可以帮到您?",
}


def _stamp(text: str) -> str:
    return hashlib.sha256(f"{VOICE}\n{text}".encode()).hexdigest()


def stale_prompts(sounds_dir: Path, prompts: dict[str, str] | None = None) -> list[str]:
    """Names whose wav is missing or was made from another text."""
    stale = []
    for name, text in (PROMPTS if prompts is None else prompts).items():
        stamp = sounds_dir / f".{name}.sha256"
        wav = sounds_dir / f"{name}.wav"
        try:
            fresh = wav.is_file() and stamp.read_text(encoding="utf-8").strip() == _stamp(text)
        except OSError:
            fresh = False
        if not fresh:
            stale.append(name)
    return stale


def render_prompts(sounds_dir: Path, prompts: dict[str, str] | None = None) -> list[str]:
    """Make 8 kHz mono 16-bit wav files for the stale prompts; return their names."""
    prompts = PROMPTS if prompts is None else prompts
    stale = stale_prompts(sounds_dir, prompts)
    if not stale:
        return []
    host.require_tools("espeak-ng", "sox")
    sounds_dir.mkdir(parents=True, exist_ok=True)
    for name in stale:
        text = prompts[name]
        raw = sounds_dir / f".{name}.raw.wav"
        tmp = sounds_dir / f".{name}.tmp.wav"
        _check(host.run(["espeak-ng", "-v", VOICE, "-w", str(raw), text], 60, "espeak-ng"), name)
        # Asterisk's format_wav plays 8 kHz mono signed 16-bit without transcoding.
        sox = ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]
        _check(host.run([*sox, str(tmp)], 60, "sox"), name)
        raw.unlink()
        tmp.replace(sounds_dir / f"{name}.wav")
        (sounds_dir / f".{name}.sha256").write_text(_stamp(text) + "\n", encoding="utf-8")
        log.info("lab_prompt_rendered", prompt=name)
    return stale


def _check(res: subprocess.CompletedProcess[str], name: str) -> None:
    if res.returncode != 0:
        why = res.stderr.strip() or f"exit {res.returncode}"
        raise LabError(f"cannot render prompt {name!r}: {why}")
