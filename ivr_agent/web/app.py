"""`create_app(deps)`: the FastAPI app of the service (recordings now, the agent desk next)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from ivr_agent.config import require_session_key
from ivr_agent.web import (
    auth,
    calls_api,
    desk_admin_api,
    desk_api,
    desk_page,
    desk_ws,
    errors,
    evidence_api,
    health_api,
    pages,
    recordings_api,
    roster_api,
    supervisor_page,
)
from ivr_agent.web.deps import WebDeps

SESSION_COOKIE = "ivr_session"


def create_app(deps: WebDeps) -> FastAPI:
    """The app, with its session middleware keyed from config (ConfigError if there is no key).

    No OpenAPI/docs pages: the API is for the service's own pages and operators' scripts."""
    settings = deps.settings
    app = FastAPI(title="ivr-agent", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.deps = deps
    app.add_middleware(
        SessionMiddleware,
        secret_key=require_session_key(settings),
        session_cookie=SESSION_COOKIE,
        max_age=settings.web.session_max_age,
        same_site="strict",
        https_only=settings.web.secure_cookies,
    )
    errors.install(app)
    app.include_router(auth.router)
    app.include_router(recordings_api.router)
    app.include_router(evidence_api.router)
    app.include_router(calls_api.router)
    app.include_router(health_api.router)
    app.include_router(roster_api.router)
    app.include_router(pages.router)
    app.include_router(supervisor_page.router)
    for desk_router in (desk_api.router, desk_admin_api.router, desk_page.router, desk_ws.router):
        app.include_router(desk_router)
    # The page's own scripts and styles only; recordings are never served as static files.
    app.mount("/static", StaticFiles(packages=[("ivr_agent.web", "static")]), name="static")
    return app
