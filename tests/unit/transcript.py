"""Load `.ami` transcripts: frames separated by a blank line, `Header: value` lines.

The header normalisation is the AMI adapter's (ivr_agent/amiframes.py): `ChanVariable: NAME=v`
(and the Asterisk 11 form `ChanVariable(chan): NAME=v`) become the key `ChanVariable.NAME`, the
same for `DestChanVariable`; any other repeated header is joined with a newline. Lines starting
with `#` are notes for the reader, never AMI.
"""

from __future__ import annotations

from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"
_VAR_HEADERS = ("ChanVariable", "DestChanVariable")


def frames(text: str) -> list[dict[str, str]]:
    """Every frame of `text`, in order."""
    out: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("#"):
            continue
        if not line.strip():
            if frame:
                out.append(frame)
                frame = {}
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"not a header line: {line!r}")
        value = value.removeprefix(" ")
        for base in _VAR_HEADERS:
            if key == base or (key.startswith(base + "(") and key.endswith(")")):
                name, _, value = value.partition("=")
                key = f"{base}.{name}"
                break
        old = frame.get(key)
        frame[key] = value if old is None else f"{old}\n{value}"
    if frame:
        out.append(frame)
    return out


def load(name: str) -> list[dict[str, str]]:
    """The frames of `tests/transcripts/<name>.ami`."""
    return frames((TRANSCRIPTS / f"{name}.ami").read_text(encoding="utf-8"))
