"""Duration from the audio itself, pure: WAV (RIFF chunks) and Ogg (Vorbis/Opus granule positions).

Given the first and last bytes of a file and its size, no I/O and no external tool. What
MixMonitor writes (measured on Asterisk 22.10):
  * `.wav`: 8 kHz signed 16-bit mono PCM, a 44-byte header whose RIFF and data sizes stay 0
    until MixMonitor closes the file at hangup; the data is written in 32 KiB stdio blocks.
  * `.ogg`: Ogg Vorbis (format_ogg_vorbis); the last page carries the end-of-stream flag once
    the file is closed, its granule position is the sample count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from ivr_agent.errors import IvrAgentError

HEAD_BYTES: Final = 4096  # enough for the RIFF header chunks and the first Ogg page
TAIL_BYTES: Final = 65_536  # an Ogg page is at most 65,307 bytes: the last one starts in here
_OGG_PAGE_HEADER: Final = 27
_EOS: Final = 0x04
_OPUS_RATE: Final = 48_000  # Opus granule positions always count 48 kHz samples


class AudioError(IvrAgentError, ValueError):
    """The bytes are not a recording this module can read."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    format: str  # wav | ogg
    duration: float  # seconds of audio actually in the file
    finalised: bool  # the writer closed it properly
    sample_rate: int
    channels: int


def audio_info(fmt: str, head: bytes, tail: bytes, size: int) -> AudioInfo:
    """Dispatch on the file's format (its extension); `tail` is only read for Ogg."""
    if size == 0:
        raise AudioError("empty file")
    if fmt == "wav":
        return wav_info(head, size)
    if fmt == "ogg":
        return ogg_info(head, tail, size)
    raise AudioError(f"unknown format {fmt!r}")


def wav_info(head: bytes, size: int) -> AudioInfo:
    """Parse RIFF chunks up to `data`. The duration counts the data bytes really present, so a
    file whose header was never completed (writer killed) still measures right."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    riff_size = struct.unpack_from("<I", head, 4)[0]
    pos = 12
    byte_rate = rate = channels = 0
    while pos + 8 <= len(head):
        cid, csize = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            if csize < 16 or body + 16 > len(head):
                raise AudioError("short fmt chunk")
            _tag, channels, rate, byte_rate = struct.unpack_from("<HHII", head, body)
        elif cid == b"data":
            if not byte_rate:
                raise AudioError("data chunk before a usable fmt chunk")
            present = max(0, size - body)
            data = min(csize, present) if csize else present
            # Closed properly: both sizes filled in and agreeing with the file (RIFF pads odd
            # chunks to an even length).
            finalised = csize > 0 and csize <= present <= csize + 1 and riff_size + 8 >= size
            return AudioInfo("wav", data / byte_rate, finalised, rate, channels)
        pos = body + csize + (csize & 1)
    raise AudioError("no data chunk in the header")


def ogg_info(head: bytes, tail: bytes, size: int) -> AudioInfo:
    """Sample rate from the first page's codec header, length from the last page's granule."""
    first = _page(head, 0)
    if first is None:
        raise AudioError("not an Ogg file")
    packet = head[first.body : first.body + first.body_len]
    if packet[:7] == b"\x01vorbis" and len(packet) >= 16:
        channels = packet[11]
        rate = struct.unpack_from("<I", packet, 12)[0]
        granule_rate, pre_skip = rate, 0
    elif packet[:8] == b"OpusHead" and len(packet) >= 16:
        channels = packet[9]
        pre_skip = struct.unpack_from("<H", packet, 10)[0]
        rate = struct.unpack_from("<I", packet, 12)[0] or _OPUS_RATE
        granule_rate = _OPUS_RATE
    else:
        raise AudioError("Ogg stream is neither Vorbis nor Opus")
    if not granule_rate:
        raise AudioError("zero sample rate")
    last = _last_page(tail)
    if last is None:
        return AudioInfo("ogg", 0.0, False, rate, channels)
    granule, eos = last
    duration = max(0, granule - pre_skip) / granule_rate
    return AudioInfo("ogg", duration, eos and size > 0, rate, channels)


@dataclass(frozen=True, slots=True)
class _Page:
    header_type: int
    granule: int
    body: int
    body_len: int


def _page(buf: bytes, pos: int) -> _Page | None:
    if buf[pos : pos + 4] != b"OggS" or pos + _OGG_PAGE_HEADER > len(buf) or buf[pos + 4] != 0:
        return None
    header_type = buf[pos + 5]
    granule = struct.unpack_from("<q", buf, pos + 6)[0]
    nseg = buf[pos + 26]
    seg_end = pos + _OGG_PAGE_HEADER + nseg
    if seg_end > len(buf):
        return None
    body_len = sum(buf[pos + _OGG_PAGE_HEADER : seg_end])
    return _Page(header_type, granule, seg_end, body_len)


def _last_page(tail: bytes) -> tuple[int, bool] | None:
    """(granule, end-of-stream) of the last complete page with a granule position in `tail`."""
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        page = _page(tail, pos)
        if page is not None and page.body + page.body_len <= len(tail) and page.granule >= 0:
            return page.granule, bool(page.header_type & _EOS)
        pos = tail.rfind(b"OggS", 0, pos)
    return None
