"""GET /desk: the agent desk page (plain HTML + JS; live data comes over /ws/agent)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ivr_agent.store.users import Role
from ivr_agent.web.pages import _render, signed_in_as

router = APIRouter()


@router.get("/desk", include_in_schema=False)
async def desk_page(request: Request) -> Response:
    p = await signed_in_as(request, Role.AGENT)
    if isinstance(p, Response):
        return p
    return _render(request, "desk.html", user=p.user.name, agent=p.user.agent)
