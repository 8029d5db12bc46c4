"""GET /desk: the agent desk page (plain HTML + JS; live data comes over /ws/agent)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ivr_agent.store.users import Role
from ivr_agent.web.auth import principal
from ivr_agent.web.pages import _render

router = APIRouter()


@router.get("/desk", include_in_schema=False)
async def desk_page(request: Request) -> Response:
    p = await principal(request)
    if p is None:
        return RedirectResponse("/login?next=/desk", status_code=303)
    if p.user.role is not Role.AGENT:
        response = _render(request, "forbidden.html", user=p.user.name)
        response.status_code = 403
        return response
    return _render(request, "desk.html", user=p.user.name, agent=p.user.agent)
