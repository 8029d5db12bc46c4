"""The hotline's spoken prompts: rendered from the handbook's phrases with espeak-ng + sox.

Operators run `ivr-agent prompts render --dir /var/lib/asterisk/sounds/ivr-agent` once at install
(the folder is the dialplan's `IVR_AGENT_SOUNDS`), or drop in their own recordings under the same
names: 8 kHz mono 16-bit signed PCM `.wav`
(`sox in.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav`).
A prompt is re-rendered only when its text changed; a recording without our `.NAME.sha256`
stamp next to it is an operator's own and is never overwritten.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping
from pathlib import Path

import structlog

from ivr_agent.domain import phrases
from ivr_agent.domain.phrases import Key
from ivr_agent.errors import LabError
from ivr_agent.lab import host

log = structlog.get_logger()

VOICE = "cmn"  # espeak-ng Mandarin


def hotline_prompts(overrides: Mapping[Key, str] | None = None) -> dict[str, str]:
    """File name -> text of every prompt the hotline dialplan plays."""
    zh = phrases.Language.ZH_CN
    return {
        # To a caller whose line stays silent (handbook 五).
        "silent-line": phrases.phrase(Key.SILENT_LINE, zh, overrides).text,
        # Before ending an abusive call.
        "civil-warning": phrases.phrase(Key.CIVIL_WARNING, zh, overrides).text,
        # The last words before the line hangs up.
        "closing": phrases.phrase(Key.CLOSING, zh, overrides).text,
        # Nobody on duty (after hours, a gap in the roster): the dialplan's [ivr-agent-after-hours].
        "after-hours": phrases.phrase(Key.AFTER_HOURS, zh, overrides).text,
        # After the caller pressed 1 for a call back.
        "callback-recorded": phrases.phrase(Key.CALLBACK_RECORDED, zh, overrides).text,
    }


PROMPTS: dict[str, str] = hotline_prompts()


def _stamp(text: str) -> str:
    return hashlib.sha256(f"{VOICE}\n{text}".encode()).hexdigest()


def stale_prompts(sounds_dir: Path, prompts: Mapping[str, str] | None = None) -> list[str]:
    """Names whose wav is missing or was made from another text."""
    stale = []
    for name, text in (PROMPTS if prompts is None else prompts).items():
        stamp = sounds_dir / f".{name}.sha256"
        wav = sounds_dir / f"{name}.wav"
        if wav.is_file() and not stamp.exists():
            continue  # the operator's own recording: never overwritten
        try:
            fresh = wav.is_file() and stamp.read_text(encoding="utf-8").strip() == _stamp(text)
        except OSError:
            fresh = False
        if not fresh:
            stale.append(name)
    return stale


def render_prompts(sounds_dir: Path, prompts: Mapping[str, str] | None = None) -> list[str]:
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
        log.info("prompt_rendered", prompt=name)
    return stale


def _check(res: subprocess.CompletedProcess[str], name: str) -> None:
    if res.returncode != 0:
        why = res.stderr.strip() or f"exit {res.returncode}"
        raise LabError(f"cannot render prompt {name!r}: {why}")
