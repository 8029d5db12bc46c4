"""POST /api/calls/current/{civil-warning,closing}: an agent acts on the call they are on.

The civil-language warning plays into the call (both parties hear it); the closing phrase ends
it politely. Both land in the call's timeline with who pressed the button.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ivr_agent.callactions import CallActionRefused, CallActions, Done
from ivr_agent.errors import AmiError
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, json_only, require
from ivr_agent.web.deps import WebDeps, deps_of
from ivr_agent.web.errors import NO_STORE, ApiError

router = APIRouter()
Agent = Annotated[Principal, Depends(require(Role.AGENT))]


def _current(deps: WebDeps, p: Principal) -> tuple[CallActions, str]:
    actions = deps.call_actions
    if actions is None:
        raise ApiError(404, "call actions are not available on this server")
    call_id = deps.current_call(p.user.agent or p.user.name)
    if call_id is None:
        raise ApiError(409, "you are not on a call")
    return actions, call_id


async def _act(request: Request, p: Principal, action: str) -> JSONResponse:
    """Run one call action on the agent's current call; refusals are 409, PBX trouble 503."""
    actions, call_id = _current(deps_of(request), p)
    run = actions.civil_warning if action == "civil_warning" else actions.closing
    try:
        done: Done = await run(call_id, p.user.name)
    except CallActionRefused as err:
        raise ApiError(409, str(err)) from None
    except AmiError as err:
        raise ApiError(503, f"the PBX did not take it: {err}") from None
    return JSONResponse(dataclasses.asdict(done), status_code=202, headers=NO_STORE)


@router.post("/api/calls/current/civil-warning", dependencies=[Depends(json_only)])
async def civil_warning(request: Request, p: Agent) -> JSONResponse:
    return await _act(request, p, "civil_warning")


@router.post("/api/calls/current/closing", dependencies=[Depends(json_only)])
async def closing(request: Request, p: Agent) -> JSONResponse:
    return await _act(request, p, "closing")
