"""A web app over a tmp database and recordings folder, with a user of each role."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ivr_agent.config import load_settings
from ivr_agent.domain.calls import Call, CallState, Disposition
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.recordings.keeper import RecordingKeeper, facts_of
from ivr_agent.store import users
from ivr_agent.store.txn import Db
from ivr_agent.web.app import create_app
from ivr_agent.web.deps import WebDeps
from ivr_agent.web.passwords import hash_password
from tests.adapters.recfiles import write_wav

PASSWORD = "correct horse battery"
NOW = time.time()


@dataclass
class Site:
    db: Db
    root: Path
    deps: WebDeps
    keeper: RecordingKeeper
    live: dict[str, str] = field(default_factory=dict)  # agent -> call id

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_app(self.deps), raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def recording(self, n: int, seconds: float = 2.0, **kw: object) -> str:
        """A complete recording of call `1795000000.<n>`; returns its call id."""
        start = NOW - 3600 + n
        base: dict[str, object] = {
            "call_id": f"1795000000.{n}",
            "state": CallState.ENDED,
            "started_at": start,
            "updated_at": start + seconds,
            "answered_at": start,
            "recording_started_at": start,
            "ended_at": start + seconds,
            "caller_number": f"1390000{n:04d}",
            "caller_name": "王五",
            "agent": "agent1" if n % 2 else "agent2",
            "disposition": Disposition.ANSWERED,
            "queue": "support",
        }
        base.update(kw)
        call = Call(**base)  # type: ignore[arg-type]
        write_wav(self.root, call.call_id, seconds)
        await self.keeper.finalise(facts_of(call), 0)
        return call.call_id

    async def calls_row(self, call_id: str, agent: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                "INSERT INTO calls (call_id, state, agent, updated_at) VALUES (?, 'ended', ?, 'x')",
                (call_id, agent),
            )


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    root = tmp_path / "rec"
    root.mkdir()
    base = load_settings(None, env={"IVR_AGENT_WEB_SESSION_KEY": "k" * 32})
    settings = dataclasses.replace(
        base, hotline=dataclasses.replace(base.hotline, recordings_dir=str(root))
    )
    db = await Db.open(tmp_path / "web.db")
    hashed = hash_password(PASSWORD, n=2**10)  # cheap parameters keep the tests fast
    await users.add_user(db, "李主管", users.Role.SUPERVISOR, hashed, NOW)
    await users.add_user(db, "agent1", users.Role.AGENT, hashed, NOW)
    await users.add_user(db, "ops", users.Role.OPERATOR, hashed, NOW)
    live: dict[str, str] = {}
    deps = WebDeps(db=db, root=RecordingsRoot(root), settings=settings, current_call=live.get)
    keeper = RecordingKeeper(db, deps.root, finalise_timeout=0.1, tolerance=0.5)
    yield Site(db, root, deps, keeper, live)
    await db.close()


async def login(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/login", json={"name": name, "password": password})


@pytest.fixture
async def supervisor(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with site.client() as c:
        r = await login(c, "李主管")
        assert r.status_code == 200, r.text
        yield c


@pytest.fixture
async def agent(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with site.client() as c:
        assert (await login(c, "agent1")).status_code == 200
        yield c
