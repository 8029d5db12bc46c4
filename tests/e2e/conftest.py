"""The supervisor page in headless Chromium (Debian's, driven by Playwright), against the real
web server (uvicorn in the test's event loop) over a tmp database and recordings folder."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from ivr_agent.config import load_settings
from ivr_agent.domain.calls import Call, CallState, Disposition
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.recordings.keeper import RecordingKeeper, facts_of
from ivr_agent.store import users
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.passwords import hash_password
from ivr_agent.web.server import WebServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SUPERVISOR, PASSWORD = "质检员", "listen-carefully-42"
OGG_FIXTURE = Path(__file__).parents[1] / "unit" / "fixtures" / "asterisk-vorbis-3s.ogg"
TEN_MINUTES = 600


def mixmonitor_wav(seconds: int) -> bytes:
    """8 kHz s16 mono PCM in MixMonitor's 44-byte header: a tone whose pitch changes every
    second, so that every part of the file is different audio."""
    blocks = []
    for s in range(seconds):
        step = 8000 // (200 + (s % 40) * 10)
        period = b"".join(struct.pack("<h", 6000 if i < step // 2 else -6000) for i in range(step))
        blocks.append((period * (8000 // step + 1))[:16000])
    pcm = b"".join(blocks)
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
        + b"data"
        + struct.pack("<I", len(pcm))
    )
    return header + pcm


@dataclass
class Site:
    url: str
    db: Db
    root: Path
    ten_minutes: str  # call ids
    ogg: str


def _call(call_id: str, start: float, seconds: float, caller: str, agent: str) -> Call:
    return Call(
        call_id=call_id,
        state=CallState.ENDED,
        started_at=start,
        updated_at=start + seconds,
        answered_at=start,
        recording_started_at=start,
        ended_at=start + seconds,
        caller_number=caller,
        caller_name="张三",
        agent=agent,
        disposition=Disposition.ANSWERED,
        queue="support",
    )


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    root = tmp_path / "rec"
    root.mkdir()
    base = load_settings(None, env={"IVR_AGENT_WEB_SESSION_KEY": "e2e" * 16})
    settings = dataclasses.replace(
        base, hotline=dataclasses.replace(base.hotline, recordings_dir=str(root))
    )
    db = await Db.open(tmp_path / "e2e.db")
    now = time.time()
    await users.add_user(
        db, SUPERVISOR, users.Role.SUPERVISOR, hash_password(PASSWORD, n=2**10), now
    )
    keeper = RecordingKeeper(db, RecordingsRoot(root), finalise_timeout=0.1, tolerance=0.5)
    long_call = _call("1795000000.10", now - 7200, TEN_MINUTES, "13800138000", "agent1")
    (root / "1795000000.10.wav").write_bytes(await asyncio.to_thread(mixmonitor_wav, TEN_MINUTES))
    ogg_call = _call("1795000000.20", now - 3600, 3.02, "13900139000", "agent2")
    shutil.copyfile(OGG_FIXTURE, root / "1795000000.20.ogg")
    for c in (long_call, ogg_call):
        assert await keeper.finalise(facts_of(c), 0)
    deps = WebDeps(db=db, root=RecordingsRoot(root), settings=settings)
    server = WebServer(create_app(deps), "127.0.0.1", 0)
    server.bind()
    task = asyncio.create_task(server.serve())
    try:
        yield Site(server.url, db, root, long_call.call_id, ogg_call.call_id)
    finally:
        server.stop()
        await asyncio.wait_for(task, 10)
        await db.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()
