"""Duration from the audio: WAV headers (closed, still open, truncated) and Ogg granules.

The WAV cases are built with the stdlib `wave` module; the Ogg Vorbis one is a real file that
Asterisk's format_ogg_vorbis wrote in the lab (3.02 s: an agent greeting, 8 kHz mono, 11 KiB),
checked against `soxi -D`.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest

from ivr_agent.recordings.audio import (
    TAIL_BYTES,
    AudioError,
    audio_info,
    ogg_info,
    wav_info,
)

FIXTURES = Path(__file__).parent / "fixtures"


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(seconds * rate))
    return buf.getvalue()


def info(data: bytes) -> tuple[float, bool]:
    i = audio_info("wav", data[:4096], b"", len(data))
    return i.duration, i.finalised


def test_closed_wav() -> None:
    data = wav_bytes(2.5)
    i = wav_info(data[:4096], len(data))
    assert (i.duration, i.finalised, i.sample_rate, i.channels) == (2.5, True, 8000, 1)


def test_wav_still_being_written_measures_the_bytes_present() -> None:
    # What MixMonitor leaves until hangup: RIFF and data sizes are 0.
    data = bytearray(wav_bytes(3.0))
    data[4:8] = b"\0\0\0\0"
    data[40:44] = b"\0\0\0\0"
    assert info(bytes(data)) == (3.0, False)


def test_truncated_wav_is_not_finalised() -> None:
    data = wav_bytes(3.0)[: 44 + 16000]
    assert info(data) == (1.0, False)


def test_wav_with_an_extra_chunk_before_data() -> None:
    data = wav_bytes(1.0)
    fmt_end = 12 + 8 + 16
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\0"  # odd size: padded to even
    riff = data[:fmt_end] + extra + data[fmt_end:]
    riff = riff[:4] + struct.pack("<I", len(riff) - 8) + riff[8:]
    assert info(riff) == (1.0, True)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"RIFX" + b"\0" * 40, "not a RIFF"),
        (b"RIFF\0\0\0\0WAVEdata\0\0\0\0", "before a usable fmt"),
        (b"RIFF\0\0\0\0WAVEfmt \x08\0\0\0" + b"\0" * 8, "short fmt"),
        (b"RIFF\0\0\0\0WAVEJUNK\x04\0\0\0abcd", "no data chunk"),
    ],
)
def test_bad_wav(data: bytes, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        wav_info(data, len(data) + 100)


def test_empty_and_unknown() -> None:
    with pytest.raises(AudioError, match="empty"):
        audio_info("wav", b"", b"", 0)
    with pytest.raises(AudioError, match="unknown format"):
        audio_info("mp3", b"x", b"", 1)


def test_real_asterisk_ogg_vorbis() -> None:
    data = (FIXTURES / "asterisk-vorbis-3s.ogg").read_bytes()
    i = audio_info("ogg", data[:4096], data[-TAIL_BYTES:], len(data))
    assert (i.format, i.sample_rate, i.channels, i.finalised) == ("ogg", 8000, 1, True)
    assert i.duration == pytest.approx(3.02, abs=0.01)


def page(header_type: int, granule: int, body: bytes) -> bytes:
    """One Ogg page with a single segment-laced packet (CRC left 0: not checked)."""
    segs = [255] * (len(body) // 255) + [len(body) % 255]
    return (
        b"OggS\0"
        + bytes([header_type])
        + struct.pack("<qIII", granule, 1, 0, 0)
        + bytes([len(segs)])
        + bytes(segs)
        + body
    )


def opus_head(pre_skip: int = 312, rate: int = 8000) -> bytes:
    return b"OpusHead\x01\x01" + struct.pack("<HI", pre_skip, rate) + b"\0\0\0"


def test_ogg_opus_counts_48k_granules_minus_pre_skip() -> None:
    data = page(2, 0, opus_head()) + page(0, 48_000, b"x" * 10) + page(4, 96_312, b"y" * 10)
    i = ogg_info(data, data, len(data))
    assert (i.duration, i.finalised, i.sample_rate) == (2.0, True, 8000)


def test_ogg_without_eos_or_audio_pages() -> None:
    head = page(2, 0, opus_head())
    unfinished = head + page(0, 48_312, b"x")
    assert ogg_info(unfinished, unfinished, len(unfinished)).finalised is False
    # Only the header page, whose granule is -1 style unknown: nothing measured yet.
    only = page(2, -1, opus_head())
    assert ogg_info(only, only, len(only)).duration == 0.0


def test_ogg_last_page_cut_short_falls_back_to_the_one_before() -> None:
    data = page(2, 0, opus_head()) + page(0, 48_312, b"x" * 10) + page(4, 96_312, b"y" * 300)
    cut = data[:-100]
    i = ogg_info(cut, cut, len(cut))
    assert (i.duration, i.finalised) == (1.0, False)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"NotOgg" * 10, "not an Ogg"),
        (page(2, 0, b"\x01theora" + b"\0" * 20), "neither Vorbis nor Opus"),
        (page(2, 0, b"\x01vorbis" + b"\0" * 9), "zero sample rate"),
    ],
)
def test_bad_ogg(data: bytes, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        ogg_info(data, data, len(data))


def test_ogg_page_with_truncated_segment_table() -> None:
    data = page(2, 0, opus_head())[:27]  # the segment table is cut off
    with pytest.raises(AudioError, match="not an Ogg"):
        ogg_info(data, data, len(data))
