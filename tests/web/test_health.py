"""GET /healthz: no login, no subscriber data, 503 with named problems when degraded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ivr_agent.app import Service
from ivr_agent.config import load_settings
from tests.web.conftest import Site


async def test_ok_and_degraded(site: Site) -> None:
    async with site.client() as anonymous:
        r = await anonymous.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "problems": []}
        site.deps.health = lambda: ["silent_line_prompt_missing"]
        r = await anonymous.get("/healthz")
        assert r.status_code == 503
        assert r.json() == {"status": "degraded", "problems": ["silent_line_prompt_missing"]}


async def test_service_names_its_problems(tmp_path: Path) -> None:
    base = load_settings(None, env={"IVR_AGENT_AMI_SECRET": "x"})
    settings = dataclasses.replace(
        base, hotline=dataclasses.replace(base.hotline, sounds_dir=str(tmp_path))
    )
    service = Service(settings)
    assert set(service.health()) == {"ami_not_ready", "silent_line_prompt_missing"}
    (tmp_path / "silent-line.wav").write_bytes(b"RIFF")
    assert service.health() == ["ami_not_ready"]
