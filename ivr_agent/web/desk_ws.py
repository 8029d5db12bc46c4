"""`/ws/agent`: the desk's live channel. Server -> client: hello, pop frames, pong, error.
Client -> client: `{"type": "resume", "after": seq}` (frames newer than seq are re-sent) and
`{"type": "ping"}`. Anything else, malformed or larger than 4 KB gets an error frame; a session
that went stale (password changed, user disabled) is closed with 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Final

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from ivr_agent.deskhub import Connection
from ivr_agent.store import users
from ivr_agent.store.users import Role, User
from ivr_agent.web.i18n import pick_language

log = structlog.get_logger(__name__)
router = APIRouter()

MAX_MESSAGE: Final = 4096
_SEND_TIMEOUT: Final = 5.0  # a client that takes longer to accept one frame is dead or stuck
_RECHECK: Final = 30.0  # how often the session is checked again while the socket is open
CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_SLOW: Final = 4408
CLOSE_NO_DESK: Final = 4503


async def _user(ws: WebSocket) -> User | None:
    uid, gen = ws.session.get("uid"), ws.session.get("gen")
    if not isinstance(uid, int):
        return None
    found = await users.by_id(ws.app.state.deps.db.conn, uid)
    if found is None or found.disabled or found.session_gen != gen:
        return None
    return found


def _error(code: str, message: str) -> str:
    return json.dumps({"type": "error", "error": code, "message": message})


@router.websocket("/ws/agent")
async def agent_socket(ws: WebSocket) -> None:
    deps = ws.app.state.deps
    user = await _user(ws)
    await ws.accept()
    if user is None:
        await ws.close(CLOSE_UNAUTHENTICATED, "sign in first")
        return
    if user.role is not Role.AGENT or not user.agent:
        await ws.close(CLOSE_FORBIDDEN, "the desk is for agents")
        return
    if deps.desk is None:
        await ws.close(CLOSE_NO_DESK, "the desk is not running")
        return
    hub = deps.desk.hub
    lang = pick_language(ws.query_params.get("lang"), ws.cookies.get("lang"), "zh-CN")
    client = ws.client.host if ws.client else ""
    conn = hub.subscribe(user.agent, lang, client)
    log.info("desk_connected", agent=user.agent, client=client)
    try:
        await ws.send_text(json.dumps({"type": "hello", "agent": user.agent, "seq": hub.seq}))
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(_write(ws, conn))
            watcher = tg.create_task(_watch_session(ws, conn, user))
            await _read(ws, conn, hub)
            conn.close("client_gone")
            writer.cancel()
            watcher.cancel()
    except* (WebSocketDisconnect, RuntimeError):
        pass  # the client went away: nothing to tell it
    finally:
        hub.unsubscribe(conn)
        if ws.application_state is not WebSocketState.DISCONNECTED and conn.reason != "client_gone":
            code = CLOSE_SLOW if conn.reason == "slow" else CLOSE_UNAUTHENTICATED
            with contextlib.suppress(Exception):
                await ws.close(code, conn.reason or "closed")
        log.info("desk_disconnected", agent=user.agent, client=client, reason=conn.reason)


async def _read(ws: WebSocket, conn: Connection, hub: Any) -> None:
    """Until the client leaves or the connection must close."""
    closed = asyncio.ensure_future(conn.closed.wait())
    try:
        while True:
            receive = asyncio.ensure_future(ws.receive())
            done, _ = await asyncio.wait({receive, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                receive.cancel()
                return
            msg = receive.result()
            if msg["type"] == "websocket.disconnect":
                conn.reason = "client_gone"
                return
            text = msg.get("text")
            if text is None:
                text = (msg.get("bytes") or b"").decode("utf-8", "replace")
            conn.offer(_answer(text, conn, hub))
    finally:
        closed.cancel()


def _answer(text: str, conn: Connection, hub: Any) -> str:
    if len(text) > MAX_MESSAGE:
        return _error("too_large", f"messages are at most {MAX_MESSAGE} bytes")
    try:
        msg = json.loads(text)
    except ValueError:
        return _error("bad_message", "send JSON")
    if not isinstance(msg, dict):
        return _error("bad_message", "send a JSON object")
    kind = msg.get("type")
    if kind == "ping":
        return json.dumps({"type": "pong", "seq": hub.seq})
    if kind == "resume":
        after = msg.get("after")
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            return _error("bad_message", "resume: 'after' must be a non-negative integer")
        n = hub.replay(conn, after)
        return json.dumps({"type": "resumed", "after": after, "frames": n})
    return _error("bad_message", "unknown message type")


async def _write(ws: WebSocket, conn: Connection) -> None:
    while True:
        text = await conn.queue.get()
        try:
            async with asyncio.timeout(_SEND_TIMEOUT):
                await ws.send_text(text)
        except TimeoutError:
            conn.close("slow")
            return


async def _watch_session(ws: WebSocket, conn: Connection, user: User) -> None:
    """A password change or a disabled account ends the open desk too."""
    while not conn.closed.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_RECHECK):
                await conn.closed.wait()
        current = await users.by_id(ws.app.state.deps.db.conn, user.id)
        if current is None or current.disabled or current.session_gen != user.session_gen:
            conn.close("stale_session")
