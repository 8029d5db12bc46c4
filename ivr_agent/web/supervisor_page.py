"""GET /supervisor: the supervisors' console (blacklist decisions, callbacks, subscriber search,
roster change requests, on duty, alerts). Plain HTML + JS over the existing APIs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ivr_agent.store.users import Role
from ivr_agent.web.i18n import messages
from ivr_agent.web.pages import _render, language_of, signed_in_as

router = APIRouter()


@router.get("/supervisor", include_in_schema=False)
async def supervisor_page(request: Request) -> Response:
    text = messages(language_of(request))
    p = await signed_in_as(
        request, Role.SUPERVISOR,
        title_recordings=text["title_supervisor"], err_forbidden=text["sv_forbidden"],
    )  # fmt: skip
    if isinstance(p, Response):
        return p
    return _render(request, "supervisor.html", user=p.user.name)
