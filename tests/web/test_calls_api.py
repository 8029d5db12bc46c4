"""The agent's call actions over HTTP: civil-language warning and polite closing."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from ivr_agent.callactions import CallActions
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.errors import AmiTimeout
from tests.web.conftest import Site

CALL = Call(
    call_id="1795000000.9",
    state=CallState.CONNECTED,
    started_at=1.0,
    updated_at=2.0,
    caller_channel="PJSIP/carrier-00000009",
    agent="agent1",
)


class Sender:
    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []
        self.fail = False

    async def send(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> dict[str, str]:
        self.actions.append(dict(action))
        if self.fail:
            raise AmiTimeout("Originate after 3s")
        return {"Response": "Success"}


def wire(site: Site, calls: dict[str, Call]) -> Sender:
    sender = Sender()
    site.deps.call_actions = CallActions(sender, calls.get)
    return sender


async def test_civil_warning_is_barged_into_the_agents_call(
    site: Site, agent: httpx.AsyncClient
) -> None:
    sender = wire(site, {CALL.call_id: CALL})
    site.live["agent1"] = CALL.call_id
    r = await agent.post("/api/calls/current/civil-warning", json={})
    assert r.status_code == 202, r.text
    assert r.json()["action"] == "civil_warning"
    assert r.json()["by"] == "agent1"
    (action,) = sender.actions
    assert action["Action"] == "Originate"
    assert action["Channel"] == "Local/civil-warning@ivr-agent-announce/n"
    assert action["Application"] == "ChanSpy"
    assert action["Data"] == "PJSIP/carrier-00000009,qBE"


async def test_closing_redirects_once(site: Site, agent: httpx.AsyncClient) -> None:
    sender = wire(site, {CALL.call_id: CALL})
    site.live["agent1"] = CALL.call_id
    r = await agent.post("/api/calls/current/closing", json={})
    assert r.status_code == 202, r.text
    assert sender.actions[0]["Action"] == "Redirect"
    assert sender.actions[0]["Context"] == "ivr-agent-closing"
    again = await agent.post("/api/calls/current/closing", json={})
    assert again.status_code == 409
    assert "already being closed" in again.json()["message"]


async def test_refusals(
    site: Site, agent: httpx.AsyncClient, supervisor: httpx.AsyncClient
) -> None:
    assert (await agent.post("/api/calls/current/closing", json={})).status_code == 404
    sender = wire(site, {CALL.call_id: CALL})
    r = await agent.post("/api/calls/current/civil-warning", json={})
    assert r.status_code == 409  # not on a call
    assert "not on a call" in r.json()["message"]
    held_in_queue = Call(call_id="q.1", state=CallState.QUEUED, started_at=1, updated_at=1)
    site.deps.call_actions = CallActions(sender, {"q.1": held_in_queue}.get)
    site.live["agent1"] = "q.1"
    r = await agent.post("/api/calls/current/civil-warning", json={})
    assert r.status_code == 409
    assert "not connected" in r.json()["message"]
    assert (await supervisor.post("/api/calls/current/closing", json={})).status_code == 403
    async with site.client() as anonymous:
        assert (await anonymous.post("/api/calls/current/closing", json={})).status_code == 401
    assert sender.actions == []


async def test_pbx_failure_is_503_and_closing_can_be_retried(
    site: Site, agent: httpx.AsyncClient
) -> None:
    sender = wire(site, {CALL.call_id: CALL})
    site.live["agent1"] = CALL.call_id
    sender.fail = True
    r = await agent.post("/api/calls/current/closing", json={})
    assert r.status_code == 503
    assert "did not take it" in r.json()["message"]
    sender.fail = False
    assert (await agent.post("/api/calls/current/closing", json={})).status_code == 202


async def test_unsafe_channel_names_never_reach_chanspy(
    site: Site, agent: httpx.AsyncClient
) -> None:
    odd = Call(
        call_id="x.1", state=CallState.CONNECTED, started_at=1, updated_at=1,
        caller_channel="PJSIP/a,qBw",
    )  # fmt: skip
    sender = wire(site, {"x.1": odd})
    site.live["agent1"] = "x.1"
    r = await agent.post("/api/calls/current/civil-warning", json={})
    assert r.status_code == 409
    assert sender.actions == []
