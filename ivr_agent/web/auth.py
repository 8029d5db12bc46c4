"""Who is asking: a signed session cookie (the pages) or a bearer token (scripts); roles.

CSRF: the session cookie is SameSite=Strict and HttpOnly, and every state-changing request must
be JSON (`json_only`), which a cross-site form cannot send without a CORS preflight we never
allow. Sign-in is rate limited per user name and per client address.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ivr_agent.store import users
from ivr_agent.store.users import Role, User
from ivr_agent.web.deps import deps_of
from ivr_agent.web.errors import ApiError
from ivr_agent.web.passwords import dummy_hash, verify_password

log = structlog.get_logger(__name__)

router = APIRouter()
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ivr-agent"'}


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    client: str  # the peer address
    via: str  # session | token


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


async def principal(request: Request) -> Principal | None:
    """The signed-in user, or None. A bad bearer token is an error, not anonymity."""
    deps = deps_of(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authorization must be 'Bearer <token>'", headers=_CHALLENGE)
        user = await users.by_token(deps.db.conn, token.strip())
        if user is None or user.disabled:
            raise ApiError(401, "unknown or revoked token", headers=_CHALLENGE)
        return Principal(user, client_of(request), "token")
    uid, gen = request.session.get("uid"), request.session.get("gen")
    if not isinstance(uid, int):
        return None
    found = await users.by_id(deps.db.conn, uid)
    if found is None or found.disabled or found.session_gen != gen:
        request.session.clear()  # password changed, user disabled: the session is over
        return None
    return Principal(found, client_of(request), "session")


async def authenticated(request: Request) -> Principal:
    p = await principal(request)
    if p is None:
        raise ApiError(401, "sign in first", headers=_CHALLENGE)
    return p


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the signed-in user, if their role is one of `roles` (else 403)."""

    async def dependency(p: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if p.user.role not in roles:
            raise ApiError(403, f"the {p.user.role.value} role may not do this")
        return p

    return dependency


async def json_only(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "send JSON with Content-Type: application/json")


class LoginBody(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _me(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role.value, "agent": user.agent}


@router.post("/api/login", dependencies=[Depends(json_only)])
async def login(body: LoginBody, request: Request) -> dict[str, Any]:
    deps = deps_of(request)
    now = deps.clock()
    client = client_of(request)
    keys = (f"user:{body.name}", f"ip:{client}")
    wait = deps.limiter.blocked(keys, now)
    if wait is not None:
        raise ApiError(
            429, "too many failed sign-ins; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )  # fmt: skip
    found = await users.by_name(deps.db.conn, body.name)
    stored = found[1] if found else dummy_hash()
    # scrypt takes ~50 ms of CPU: never on the event loop that carries the AMI traffic.
    ok = await asyncio.to_thread(verify_password, body.password, stored)
    if not ok or found is None or found[0].disabled:
        deps.limiter.failed(keys, now)
        log.warning("web_login_failed", user=body.name, client=client)
        raise ApiError(401, "wrong user name or password", code="login_failed")
    user = found[0]
    deps.limiter.reset(f"user:{body.name}")
    request.session.clear()
    request.session.update({"uid": user.id, "gen": user.session_gen})
    log.info("web_login", user=user.name, role=user.role.value, client=client)
    return _me(user)


@router.post("/api/logout", status_code=204)
async def logout(request: Request) -> None:
    request.session.clear()


@router.get("/api/me")
async def me(p: Annotated[Principal, Depends(authenticated)]) -> dict[str, Any]:
    return _me(p.user)
