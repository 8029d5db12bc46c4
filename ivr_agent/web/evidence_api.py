"""POST /api/evidence: an agent flags the call they are on (or one they handled); a supervisor
flags any call. The recording is then kept beyond retention and cannot be deleted."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ivr_agent.domain.recordings import InvalidEvidence, recording_id_for
from ivr_agent.recordings import evidence
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, json_only, require
from ivr_agent.web.deps import WebDeps, deps_of
from ivr_agent.web.errors import NO_STORE, ApiError

router = APIRouter()
Flagger = Annotated[Principal, Depends(require(Role.AGENT, Role.SUPERVISOR))]


class EvidenceBody(BaseModel):
    call_id: str | None = Field(default=None, min_length=1, max_length=64)
    kind: str = Field(max_length=32)
    reason: str = Field(max_length=4000)


async def _handled_by(deps: WebDeps, call_id: str, agent: str) -> bool:
    async with deps.db.conn.execute(
        "SELECT 1 FROM calls WHERE call_id = ? AND agent = ?", (call_id, agent)
    ) as cur:
        return await cur.fetchone() is not None


async def _call_for(deps: WebDeps, p: Principal, call_id: str | None) -> str:
    """Which call is flagged, and whether this user may flag it."""
    if p.user.role is Role.SUPERVISOR:
        if not call_id:
            raise ApiError(400, "call_id: required")
        if not await evidence.call_known(deps.db.conn, call_id):
            raise ApiError(404, f"no call {call_id}")
        return call_id
    agent = p.user.agent or p.user.name
    current = deps.current_call(agent)
    if not call_id:
        if current is None:
            raise ApiError(404, "you are not on a call: name the call_id")
        return current
    if call_id == current or await _handled_by(deps, call_id, agent):
        return call_id
    raise ApiError(403, "an agent may flag only a call they handled")


@router.post("/api/evidence", dependencies=[Depends(json_only)])
async def flag_evidence(body: EvidenceBody, request: Request, p: Flagger) -> JSONResponse:
    deps = deps_of(request)
    call_id = await _call_for(deps, p, body.call_id)
    try:
        row = await evidence.flag(
            deps.db, call_id, body.kind, body.reason,
            by=p.user.name, role=p.user.role.value, client=p.client, now=deps.clock(),
        )  # fmt: skip
    except InvalidEvidence as err:
        raise ApiError(400, str(err)) from None
    except evidence.EvidenceRefused as err:
        raise ApiError(409, str(err)) from None
    data: dict[str, Any] = {**dataclasses.asdict(row), "recording_id": recording_id_for(call_id)}
    return JSONResponse(data, status_code=201, headers=NO_STORE)
