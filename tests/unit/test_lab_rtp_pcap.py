"""The SIPp caller's RTP stream: speech first, then silence continuing seq and timestamp."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest

from ivr_agent.errors import LabError
from ivr_agent.lab import rtp_pcap


def _template(path: Path, packets: int) -> Path:
    """A tiny Ethernet/IPv4/UDP/RTP pcap: PCMA, 30 ms, 240 samples, payload 0x11."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(packets):
        eth = b"\x00" * 12 + b"\x08\x00"
        ip = bytes([0x45]) + b"\x00" * 19
        udp = b"\x13\x88\x13\x89\x00\x00\xab\xcd"
        rtp = struct.pack("!BBHII", 0x80, 8, 100 + i, 240 * (i + 1), 0xABCDEF) + b"\x11" * 240
        frame = eth + ip + udp + rtp
        usec = 30_000 * i
        out.append(struct.pack("<IIII", 1000 + usec // 10**6, usec % 10**6, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return path


def _stream(tmp_path: Path, data: bytes) -> list[tuple[float, int, int, bytes]]:
    out = tmp_path / "out.pcap"
    out.write_bytes(data)
    _header, packets = rtp_pcap.read_pcap(out)
    result = []
    for p in packets:
        rtp = rtp_pcap._rtp(p)
        result.append((p.seconds, rtp.seq, rtp.timestamp, p.frame[p.rtp_at + 12 :]))
    return result


def test_speech_then_silence(tmp_path: Path) -> None:
    template = _template(tmp_path / "t.pcap", 5)
    packets = _stream(tmp_path, rtp_pcap.caller_stream(0.3, speech=True, template=template))
    assert len(packets) == 10  # 300 ms of 30 ms packets
    assert [p[3][0] for p in packets] == [0x11] * 5 + [rtp_pcap.ALAW_SILENCE] * 5
    assert [p[1] for p in packets] == list(range(100, 110))
    assert all(b[2] - a[2] == 240 for a, b in itertools.pairwise(packets))
    assert packets[-1][0] - packets[0][0] == pytest.approx(0.27)
    assert all(len(p[3]) == 240 for p in packets)


def test_silence_only(tmp_path: Path) -> None:
    template = _template(tmp_path / "t.pcap", 3)
    packets = _stream(tmp_path, rtp_pcap.caller_stream(0.15, speech=False, template=template))
    assert len(packets) == 5
    assert {p[3] for p in packets} == {bytes([rtp_pcap.ALAW_SILENCE]) * 240}


def test_speech_is_cut_to_the_call(tmp_path: Path) -> None:
    template = _template(tmp_path / "t.pcap", 10)
    packets = _stream(tmp_path, rtp_pcap.caller_stream(0.09, speech=True, template=template))
    assert [p[3][0] for p in packets] == [0x11] * 3


def test_not_a_pcap(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 24)
    with pytest.raises(LabError, match="Ethernet pcap"):
        rtp_pcap.read_pcap(bad)
