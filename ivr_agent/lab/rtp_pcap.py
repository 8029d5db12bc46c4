"""Build the RTP stream a SIPp caller plays: speech (or nothing), then A-law silence to the end.

Why not just play sip-tester's g711a.pcap: it holds 7 s of speech and then RTP stops, so Asterisk
gets no more frames and never sends ChannelTalkingStop, and a MixMonitor file of a caller without
RTP only covers the time frames flowed. A real phone keeps sending RTP (silence when nobody
talks), so we append silence packets that continue the stream's sequence numbers and timestamps.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ivr_agent.errors import LabError

SPEECH_PCAP = Path("/usr/share/sip-tester/g711a.pcap")  # Debian's sip-tester: 7 s, PCMA, 30 ms
ALAW_SILENCE = 0xD5  # A-law code of a zero sample
_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_RTP = struct.Struct("!BBHII")
_ETHERNET_IPV4 = (1, b"\x08\x00")


@dataclass(frozen=True, slots=True)
class _Packet:
    seconds: float
    frame: bytes  # Ethernet + IPv4 + UDP + RTP
    rtp_at: int  # offset of the RTP header in `frame`


def read_pcap(path: Path) -> tuple[bytes, list[_Packet]]:
    """(global header, packets) of a little-endian Ethernet/IPv4/UDP/RTP capture."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LabError(
            f"cannot read {path} ({err.strerror}): `apt-get install -y sip-tester`"
        ) from None
    magic, *_rest, linktype = _PCAP_HEADER.unpack_from(data)
    if magic != 0xA1B2C3D4 or linktype != _ETHERNET_IPV4[0]:
        raise LabError(f"{path}: expected a little-endian Ethernet pcap")
    packets = []
    offset = _PCAP_HEADER.size
    while offset + _RECORD.size <= len(data):
        sec, usec, length, _orig = _RECORD.unpack_from(data, offset)
        frame = data[offset + _RECORD.size : offset + _RECORD.size + length]
        offset += _RECORD.size + length
        if frame[12:14] != _ETHERNET_IPV4[1]:
            continue
        rtp_at = 14 + (frame[14] & 0x0F) * 4 + 8
        packets.append(_Packet(sec + usec / 1e6, frame, rtp_at))
    if not packets:
        raise LabError(f"{path}: no RTP packets")
    return data[: _PCAP_HEADER.size], packets


def caller_stream(seconds: float, speech: bool, template: Path = SPEECH_PCAP) -> bytes:
    """A pcap of `seconds` of RTP: the template's speech first (if `speech`), then silence."""
    header, packets = read_pcap(template)
    start = packets[0].seconds
    # Packet spacing and samples per packet, from the template's first two packets (30 ms, 240).
    step_s = packets[1].seconds - start
    step_ts = _rtp(packets[1]).timestamp - _rtp(packets[0]).timestamp
    # Count packets, not seconds: summing float steps would add or drop one at the edge.
    total = max(1, round(seconds / step_s))
    kept = packets[:total] if speech else []
    out = [header, *(_record(p.seconds, p.frame) for p in kept)]
    base = kept[-1] if kept else packets[0]
    rtp = _rtp(base)
    # Silence continues the stream right after the last speech packet (or replaces packet 0).
    offset = 1 if kept else 0
    payload = bytes([ALAW_SILENCE]) * (len(base.frame) - base.rtp_at - _RTP.size)
    udp_sum = base.rtp_at - 2
    for n in range(total - len(kept)):
        k = n + offset
        seq, ts = (rtp.seq + k) & 0xFFFF, (rtp.timestamp + k * step_ts) & 0xFFFFFFFF
        rtp_header = _RTP.pack(0x80, rtp.payload_type, seq, ts, rtp.ssrc)
        # UDP checksum 0 = "not computed" (IPv4); lengths are unchanged, so IP/UDP headers hold.
        frame = base.frame[:udp_sum] + b"\x00\x00" + base.frame[udp_sum + 2 : base.rtp_at]
        out.append(_record(base.seconds + k * step_s, frame + rtp_header + payload))
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class _RtpHeader:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int


def _rtp(packet: _Packet) -> _RtpHeader:
    _flags, marker_pt, seq, ts, ssrc = _RTP.unpack_from(packet.frame, packet.rtp_at)
    return _RtpHeader(marker_pt & 0x7F, seq, ts, ssrc)


def _record(seconds: float, frame: bytes) -> bytes:
    sec, usec = divmod(round(seconds * 1e6), 1_000_000)
    return _RECORD.pack(sec, usec, len(frame), len(frame)) + frame
