"""Recording files as MixMonitor writes them (8 kHz s16 mono WAV), for adapter and web tests."""

from __future__ import annotations

import io
import math
import os
import struct
import wave
from pathlib import Path


def wav_bytes(seconds: float, *, closed: bool = True, tone: float = 0.0) -> bytes:
    """`closed=False`: the header as MixMonitor leaves it until hangup (sizes 0)."""
    frames = int(seconds * 8000)
    if tone:
        pcm = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * tone * i / 8000)))
            for i in range(frames)
        )
    else:
        pcm = b"\x10\x00" * frames
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    data = bytearray(buf.getvalue())
    if not closed:
        data[4:8] = b"\0\0\0\0"
        data[40:44] = b"\0\0\0\0"
    return bytes(data)


def write_wav(
    root: Path, call_id: str, seconds: float, *, closed: bool = True, age: float = 0.0
) -> Path:
    path = root / f"{call_id}.wav"
    path.write_bytes(wav_bytes(seconds, closed=closed))
    if age:
        st = path.stat()
        os.utime(path, (st.st_atime - age, st.st_mtime - age))
    return path
