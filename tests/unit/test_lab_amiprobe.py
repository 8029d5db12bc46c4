"""The lab's raw AMI probe against a fake AMI server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ivr_agent.errors import LabError
from ivr_agent.lab import amiprobe


def test_parse_frame_keeps_repeats_and_utf8() -> None:
    raw = (
        "Event: Newchannel\r\nCallerIDName: 张三\r\nChanVariable: CALL_ID=1.0\r\n"
        "ChanVariable: AGENT_ID=\r\nWeird line\r\n"
    ).encode()
    msg = amiprobe.parse_frame(raw)
    assert msg.event == "Newchannel"
    assert msg.get("calleridname") == "张三"
    assert msg.get_all("ChanVariable") == ["CALL_ID=1.0", "AGENT_ID="]
    assert msg.chan_vars() == {"CALL_ID": "1.0", "AGENT_ID": ""}
    assert msg.get("Missing", "-") == "-"


async def _fake_ami(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: str
) -> None:
    writer.write(b"Asterisk Call Manager/9.0.0\r\n")
    request = (await reader.readuntil(b"\r\n\r\n")).decode()
    fields = dict(line.split(": ", 1) for line in request.strip().split("\r\n"))
    action_id = fields["ActionID"]
    # An event before the response: the client must keep it for later.
    writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
    if fields["Secret"] == secret:
        writer.write(f"Response: Success\r\nActionID: {action_id}\r\n\r\n".encode())
    else:
        refusal = f"Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed"
        writer.write(f"{refusal}\r\n\r\n".encode())
    await writer.drain()
    try:
        await reader.read()
    finally:
        writer.close()


@pytest.fixture
async def fake_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(lambda r, w: _fake_ami(r, w, "right"), "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_wait_ready(fake_port: int) -> None:
    seconds = await amiprobe.wait_ready("127.0.0.1", fake_port, "ivr-agent", "right", 5)
    assert 0 <= seconds < 5


async def test_wrong_secret_fails_at_once(fake_port: int) -> None:
    with pytest.raises(LabError, match="login refused: Authentication failed"):
        await amiprobe.wait_ready("127.0.0.1", fake_port, "ivr-agent", "wrong", 5)


async def test_nothing_listening_times_out() -> None:
    with pytest.raises(LabError, match=r"not ready after 0\.3s"):
        await amiprobe.wait_ready("127.0.0.1", 9, "ivr-agent", "x", 0.3)
