"""A minimal raw-socket AMI client: the lab's readiness probe, and a reader for lab tests.

Deliberately independent of the service's AMI adapter (`ivr_agent.ami`): the lab must be able to
say "Asterisk is ready" on its own. Frames are decoded as a whole, so UTF-8 text split across TCP
reads (Chinese caller names) stays intact.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from dataclasses import dataclass

from ivr_agent.errors import LabError

_FRAME_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI frame; repeated headers (ChanVariable, Output) keep every value in order."""

    headers: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def event(self) -> str:
        return self.get("Event")

    def chan_vars(self) -> dict[str, str]:
        """`ChanVariable: NAME=value` headers as a dict."""
        pairs = (item.partition("=") for item in self.get_all("ChanVariable"))
        return {name: value for name, _, value in pairs}


def parse_frame(data: bytes) -> AmiMessage:
    headers = []
    for line in data.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers.append((key.strip(), value.strip()))
    return AmiMessage(tuple(headers))


class RawAmi:
    """One AMI session. Use `async with await RawAmi.login(...)`; every wait has a timeout."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._events: collections.deque[AmiMessage] = collections.deque()
        self._ids = itertools.count(1)

    @classmethod
    async def login(
        cls, host: str, port: int, username: str, secret: str, within: float = 5.0
    ) -> RawAmi:
        """Connect and log in; raise LabError on refusal, bad credentials or timeout."""
        where = f"AMI {host}:{port}"
        try:
            async with asyncio.timeout(within):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as err:
            raise LabError(f"{where}: cannot connect: {err or 'timeout'}") from None
        ami = cls(reader, writer)
        try:
            async with asyncio.timeout(within):
                await reader.readline()  # banner: "Asterisk Call Manager/x.y.z"
                reply = await ami.action(
                    {"Action": "Login", "Username": username, "Secret": secret}
                )
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as err:
            await ami.close()
            raise LabError(f"{where}: no answer to Login: {err!r}") from None
        if reply.get("Response") != "Success":
            await ami.close()
            raise LabError(f"{where}: login refused: {reply.get('Message')}")
        return ami

    async def _read_frame(self) -> AmiMessage:
        data = await self._reader.readuntil(_FRAME_END)
        return parse_frame(data[: -len(_FRAME_END)])

    async def action(self, fields: dict[str, str], within: float = 5.0) -> AmiMessage:
        """Send an action and return its Response; events read meanwhile are kept for later."""
        action_id = f"lab-{next(self._ids)}"
        lines = [f"{k}: {v}" for k, v in {**fields, "ActionID": action_id}.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(within):
            await self._writer.drain()
            while True:
                msg = await self._read_frame()
                if msg.get("Response") and msg.get("ActionID") == action_id:
                    return msg
                if msg.event:
                    self._events.append(msg)

    async def next_event(self, within: float) -> AmiMessage:
        """The next event (buffered ones first); TimeoutError after `within` seconds."""
        if self._events:
            return self._events.popleft()
        async with asyncio.timeout(within):
            while True:
                msg = await self._read_frame()
                if msg.event:
                    return msg

    async def wait_event(self, name: str, within: float, **match: str) -> AmiMessage:
        """The first event called `name` whose headers equal `match`; TimeoutError otherwise."""
        deadline = time.monotonic() + within
        while True:
            msg = await self.next_event(max(0.0, deadline - time.monotonic()))
            if msg.event == name and all(msg.get(k) == v for k, v in match.items()):
                return msg

    async def close(self) -> None:
        try:
            async with asyncio.timeout(2):
                self._writer.write(b"Action: Logoff\r\n\r\n")
                await self._writer.drain()
        except (OSError, TimeoutError):
            pass
        self._writer.close()
        try:
            async with asyncio.timeout(2):
                await self._writer.wait_closed()
        except (OSError, TimeoutError):
            pass

    async def __aenter__(self) -> RawAmi:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


async def wait_ready(host: str, port: int, username: str, secret: str, within: float) -> float:
    """Retry until AMI login succeeds and FullyBooted arrives; return the seconds it took.

    A refused connection is retried (Asterisk is still starting); a refused login is not.
    """
    started = time.monotonic()
    deadline = started + within
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            ami = await RawAmi.login(host, port, username, secret, within=2.0)
        except LabError as err:
            last = str(err)
            if "login refused" in last:
                raise
            await asyncio.sleep(0.1)
            continue
        async with ami:
            try:
                await ami.wait_event("FullyBooted", max(0.1, deadline - time.monotonic()))
            except (TimeoutError, asyncio.IncompleteReadError, OSError) as err:
                last = f"no FullyBooted event: {err!r}"
                continue
        return time.monotonic() - started
    raise LabError(f"AMI {host}:{port} not ready after {within:g}s ({last})")
