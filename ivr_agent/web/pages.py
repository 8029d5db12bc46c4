"""The HTML pages: sign-in and the supervisors' recordings page. Plain HTML + JS, no build step.

Templates are `string.Template` files; every value put into them is HTML-escaped, and the
strings the scripts need travel as JSON data blocks (no inline script: the CSP forbids it).
"""

from __future__ import annotations

import functools
import html
import json
import string
from importlib import resources
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ivr_agent.domain import complaints as complaint_rules
from ivr_agent.domain.calls import Disposition
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, principal
from ivr_agent.web.deps import deps_of
from ivr_agent.web.i18n import LANGUAGES, messages, pick_language

router = APIRouter()
LANG_COOKIE: Final = "lang"
PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; media-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@functools.cache
def _template(name: str) -> string.Template:
    text = resources.files("ivr_agent.web").joinpath("templates", name).read_text("utf-8")
    return string.Template(text)


def _data(value: object) -> str:
    """JSON for a <script type="application/json"> block: `<` escaped so `</script>` in a
    value cannot end the block."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def language_of(request: Request) -> str:
    """The page's language: `?lang=`, else the remembered choice, else the site's."""
    site = deps_of(request).settings.site
    return pick_language(
        request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), site.language
    )


def _render(request: Request, name: str, **values: str) -> HTMLResponse:
    deps = deps_of(request)
    site = deps.settings.site
    lang = language_of(request)
    text = messages(lang)
    other = next(x for x in LANGUAGES if x != lang)
    fields: dict[str, Any] = {k: html.escape(v) for k, v in text.items()}
    fields.update(
        lang=lang,
        site=html.escape(site.name),
        other_lang=other,
        other_lang_name=html.escape(messages(other)["lang_name"]),
        i18n_json=_data(text),
        config_json=_data({"lang": lang, "timezone": site.timezone}),
        # The desk's complaint follow-up offers only the moves the 5-step rules allow.
        complaint_json=_data(
            {
                s.value: [t.value for t in complaint_rules.Status if t in to]
                for s, to in complaint_rules.ALLOWED.items()
            }
        ),
        dispositions="".join(
            f'<option value="{d.value}">{html.escape(text["disp_" + d.value])}</option>'
            for d in Disposition
        ),
    )
    fields.update({k: html.escape(v) for k, v in values.items()})
    response = HTMLResponse(_template(name).substitute(fields), headers=PAGE_HEADERS)
    if request.query_params.get("lang") == lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", httponly=True,
            secure=deps.settings.web.secure_cookies,
        )  # fmt: skip
    return response


@router.get("/", include_in_schema=False)
async def index() -> Response:
    return RedirectResponse("/recordings", status_code=303)


@router.get("/login", include_in_schema=False)
async def login_page(request: Request) -> Response:
    return _render(request, "login.html")


async def signed_in_as(request: Request, role: Role, **forbidden: str) -> Principal | Response:
    """The signed-in user if they have `role`; else the page to send instead: the login page
    (coming back here after) or the forbidden page (`forbidden`: its texts for this page)."""
    p = await principal(request)
    if p is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if p.user.role is not role:
        response = _render(request, "forbidden.html", user=p.user.name, **forbidden)
        response.status_code = 403
        return response
    return p


@router.get("/recordings", include_in_schema=False)
async def recordings_page(request: Request) -> Response:
    p = await signed_in_as(request, Role.SUPERVISOR)
    if isinstance(p, Response):
        return p
    return _render(request, "recordings.html", user=p.user.name)
