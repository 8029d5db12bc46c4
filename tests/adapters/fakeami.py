"""A scriptable fake AMI server on 127.0.0.1:0, and the naive panoramisk usage it is built to break.

`FakeAmi` speaks enough of the Asterisk Manager Interface for the adapter tests: the banner, Login
(then `FullyBooted`), Ping, per-Action handlers, and the misbehaviours seen in the field (drop
mid-action, half-answered list then drop, silent Ping, garbage frames, bytes split at arbitrary
boundaries, `Event: Shutdown` then close, refusing connections for a while). It records every
action it receives, so a test can prove an action was never sent twice.

`NaiveAmiClient` is the obvious panoramisk 1.4 code with the same API as `AmiClient`. Guard tests
run against both; the naive run is `xfail(strict=True, raises=...)`, so each guard shows that it
catches a real panoramisk behaviour and not a fake-server artefact. (Not `panoramisk.testing`:
it sets the module-global `utils.EOL = '\\n'` for the whole process.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from panoramisk import Manager

from ivr_agent.config import AmiConfig

GREETING = "Asterisk Call Manager/9.0.0"
SECRET = "s3cret"
FULLY_BOOTED = {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}

Fields = Mapping[str, str] | Iterable[tuple[str, str]]
Handler = Callable[["FakeConn", dict[str, str]], Awaitable[None]]


def encode(fields: Fields) -> bytes:
    """One AMI frame; pass pairs to repeat a header (ChanVariable, Output)."""
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    return ("".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode()


def _parse(raw: bytes) -> dict[str, str]:
    action: dict[str, str] = {}
    for line in raw.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            action[key] = value
    return action


class FakeConn:
    """One accepted client connection."""

    def __init__(self, server: FakeAmi, index: int, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.index = index
        self.writer = writer
        self.closed = False

    async def send(self, data: bytes, *, split: Sequence[int] = (), pause: float = 0.002) -> None:
        """Write `data`, cut at the given offsets with a pause between pieces, so the client's
        reads end exactly there (TCP_NODELAY is on for asyncio's sockets)."""
        if self.closed:
            return
        cuts = [0, *sorted(set(split)), len(data)]
        for start, end in itertools.pairwise(cuts):
            self.writer.write(data[start:end])
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
            if end != len(data):
                await asyncio.sleep(pause)

    async def frame(self, fields: Fields, **kw: Any) -> None:
        await self.send(encode(fields), **kw)

    async def reply(self, action: Mapping[str, str], fields: Fields = (), **kw: Any) -> None:
        """A `Response` frame echoing the action's ActionID; fields default to Success."""
        pairs = list(fields.items() if isinstance(fields, Mapping) else fields)
        if not any(k == "Response" for k, _ in pairs):
            pairs.insert(0, ("Response", "Success"))
        pairs.insert(1, ("ActionID", action.get("ActionID", "")))
        await self.frame(pairs, **kw)

    def drop(self) -> None:
        """Close the socket abruptly (RST), like a crashed PBX or a cut link."""
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()

    async def shutdown(self) -> None:
        """What Asterisk does on `core restart`: announce, then close."""
        await self.frame({"Event": "Shutdown", "Privilege": "system,all", "Shutdown": "Cleanly"})
        self.closed = True
        self.writer.close()


class FakeAmi:
    """The server; `handlers` maps a lower-case Action name to `async (conn, action) -> None`."""

    def __init__(self, *, secret: str = SECRET, answer_login: bool = True) -> None:
        self.secret = secret
        self.answer_login = answer_login
        self.booted_delay: float | None = 0.0  # None: never send FullyBooted
        self.answer_ping = True
        self.port = 0
        self.conns: list[FakeConn] = []
        self.seen: list[tuple[int, dict[str, str]]] = []  # (connection index, action), in order
        self.handlers: dict[str, Handler] = {
            "login": self._login,
            "ping": self._ping,
            "logoff": self._logoff,
        }
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()

    # -- scripting ----------------------------------------------------------------------------

    def on(self, action: str, handler: Handler) -> None:
        self.handlers[action.lower()] = handler

    def actions(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.seen if a.get("Action", "").lower() == name.lower()]

    @property
    def live(self) -> list[FakeConn]:
        return [c for c in self.conns if not c.closed]

    async def broadcast(self, data: bytes, **kw: Any) -> None:
        for conn in self.live:
            await conn.send(data, **kw)

    async def event(self, fields: Fields, **kw: Any) -> None:
        await self.broadcast(encode(fields), **kw)

    def drop_all(self) -> None:
        for conn in self.live:
            conn.drop()

    async def wait_for(self, check: Callable[[], bool], timeout: float = 2.0) -> None:
        """Until `check()` holds (re-checked on every connection or action)."""
        async with asyncio.timeout(timeout):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """Refuse new connections (existing ones stay up) until `start()` again."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def stop(self) -> None:
        await self.stop_listening()
        for conn in self.conns:
            if not conn.closed:
                conn.closed = True
                conn.writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        conn = FakeConn(self, len(self.conns), writer)
        self.conns.append(conn)
        self._changed.set()
        try:
            writer.write(f"{GREETING}\r\n".encode())
            while not conn.closed:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                action = _parse(raw)
                self.seen.append((conn.index, action))
                self._changed.set()
                handler = self.handlers.get(action.get("Action", "").lower(), self._unknown)
                await handler(conn, action)
        finally:
            conn.closed = True
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._changed.set()

    # -- default handlers ---------------------------------------------------------------------

    async def _login(self, conn: FakeConn, action: dict[str, str]) -> None:
        if not self.answer_login:
            return
        if action.get("Secret") != self.secret:
            # Asterisk answers, then ends the session.
            await conn.reply(action, {"Response": "Error", "Message": "Authentication failed"})
            conn.closed = True
            conn.writer.close()
            return
        await conn.reply(action, {"Message": "Authentication accepted"})
        if self.booted_delay is not None:
            if self.booted_delay:
                await asyncio.sleep(self.booted_delay)
            await conn.frame(FULLY_BOOTED)

    async def _ping(self, conn: FakeConn, action: dict[str, str]) -> None:
        if self.answer_ping:
            await conn.reply(action, {"Ping": "Pong", "Timestamp": "1795633717.000000"})

    async def _logoff(self, conn: FakeConn, action: dict[str, str]) -> None:
        await conn.reply(action, {"Response": "Goodbye", "Message": "Thanks for all the fish."})
        conn.closed = True
        conn.writer.close()

    async def _unknown(self, conn: FakeConn, action: dict[str, str]) -> None:
        await conn.reply(action, {"Response": "Error", "Message": "Invalid/unknown command"})


class NaiveAmiClient:
    """panoramisk 1.4 used the obvious way, behind AmiClient's API (the xfail baseline)."""

    def __init__(self, cfg: AmiConfig, secret: str, *, queue_size: int | None = None) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size or cfg.event_queue_size)
        self._manager = Manager(
            host=cfg.host,
            port=cfg.port,
            username=cfg.username,
            secret=secret,
            ping_delay=max(1, int(cfg.ping_interval)),  # panoramisk takes int() of these
            ping_interval=max(1, int(cfg.ping_interval)),
            reconnect_timeout=cfg.reconnect_min,  # int()'d: below 1 s it reconnects at once
            loop=asyncio.get_running_loop(),
        )
        self._manager.register_event("*", self._on_event)

    def _on_event(self, _manager: Any, message: Any) -> None:
        self.queue.put_nowait(message)  # raises QueueFull inside data_received when full

    @property
    def ready(self) -> bool:
        return bool(self._manager.authenticated)

    async def start(self) -> None:
        await self._manager.connect()

    async def wait_ready(self, timeout: float) -> None:
        return None  # "connect() returned": the mistake the login gate exists for

    async def send(self, action: Mapping[str, str], *, timeout: float | None = None) -> Any:
        return await self._manager.send_action(dict(action))

    async def send_list(self, action: Mapping[str, str], *, timeout: float | None = None) -> Any:
        return await self._manager.send_action(dict(action), as_list=True)

    async def command(self, cli: str, *, timeout: float | None = None) -> list[str]:
        resp = await self._manager.send_command(cli)
        out = resp.get("Output", [])
        return out if isinstance(out, list) else [out]

    async def next_frame(self) -> Any:
        return await self.queue.get()

    async def close(self) -> None:
        self._manager.close()
