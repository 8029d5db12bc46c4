"""GET /supervisor: the supervisors' console (blacklist decisions, callbacks, subscriber search,
roster change requests, on duty, alerts). Plain HTML + JS over the existing APIs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ivr_agent.store.users import Role
from ivr_agent.web.auth import principal
from ivr_agent.web.i18n import messages
from ivr_agent.web.pages import _render, language_of

router = APIRouter()


@router.get("/supervisor", include_in_schema=False)
async def supervisor_page(request: Request) -> Response:
    p = await principal(request)
    if p is None:
        return RedirectResponse("/login?next=/supervisor", status_code=303)
    if p.user.role is not Role.SUPERVISOR:
        text = messages(language_of(request))
        response = _render(
            request, "forbidden.html", user=p.user.name,
            title_recordings=text["title_supervisor"], err_forbidden=text["sv_forbidden"],
        )  # fmt: skip
        response.status_code = 403
        return response
    return _render(request, "supervisor.html", user=p.user.name)
