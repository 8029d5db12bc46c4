"""uvicorn inside our loop: binds first (clear errors, port 0), serves, stops on request; the
service refuses to start its web side without a session key or on a port in use."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path

import httpx
import pytest

from ivr_agent.app import Service
from ivr_agent.config import Settings, load_settings
from ivr_agent.errors import ConfigError
from ivr_agent.web.app import create_app
from ivr_agent.web.server import WebServer
from tests.web.conftest import Site


async def test_serves_in_our_loop_and_stops(site: Site) -> None:
    server = WebServer(create_app(site.deps), "127.0.0.1", 0)
    port = server.bind()
    assert port > 0
    assert server.url == f"http://127.0.0.1:{port}"
    task = asyncio.create_task(server.serve())
    async with httpx.AsyncClient(base_url=server.url) as c:
        for _ in range(50):
            try:
                r = await c.get("/login")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert r.status_code == 200
        assert "server" not in r.headers  # no version banner
    server.stop()
    await asyncio.wait_for(task, 5)
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def busy_port() -> tuple[socket.socket, int]:
    s = socket.create_server(("127.0.0.1", 0))
    return s, int(s.getsockname()[1])


async def test_port_in_use_is_a_clear_error(site: Site) -> None:
    holder, port = busy_port()
    with holder:
        server = WebServer(create_app(site.deps), "127.0.0.1", port)
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.bind()


def service_settings(tmp_path: Path, **web: object) -> Settings:
    base = load_settings(None, env={"IVR_AGENT_AMI_SECRET": "x"})
    return dataclasses.replace(
        base,
        storage=dataclasses.replace(base.storage, database=str(tmp_path / "s.db")),
        hotline=dataclasses.replace(base.hotline, recordings_dir=str(tmp_path)),
        web=dataclasses.replace(base.web, enabled=True, **web),  # type: ignore[arg-type]
    )


async def test_service_will_not_start_web_without_a_key_or_on_a_busy_port(tmp_path: Path) -> None:
    stop = asyncio.Event()
    with pytest.raises(ConfigError, match="needs a session key"):
        await Service(service_settings(tmp_path, port=0)).run(stop)
    holder, port = busy_port()
    with holder:
        service = Service(service_settings(tmp_path, port=port, session_key="k" * 32))
        with pytest.raises(ConfigError, match="cannot listen"):
            await service.run(stop)
        assert not service.started.is_set()
