"""GET /healthz: for monitoring (no login, no subscriber data): is the service doing its job?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ivr_agent.web.deps import deps_of
from ivr_agent.web.errors import NO_STORE

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 with status "ok", or 503 with status "degraded" and the problems by name."""
    check = deps_of(request).health
    problems = check() if check is not None else []
    body = {"status": "degraded" if problems else "ok", "problems": problems}
    return JSONResponse(body, status_code=503 if problems else 200, headers=NO_STORE)
