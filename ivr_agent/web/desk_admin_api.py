"""The desk's supervisor side (search, callbacks, blacklist decisions) and the on-duty callback
list. Every supervisor look-up of a subscriber is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ivr_agent.store import blacklist, customers
from ivr_agent.store.callbacks import list_callbacks
from ivr_agent.store.desk_audit import audit
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, json_only, require
from ivr_agent.web.deps import deps_of
from ivr_agent.web.errors import ApiError

router = APIRouter()
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
Staff = Annotated[Principal, Depends(require(Role.AGENT, Role.SUPERVISOR))]


class Decision(BaseModel):
    decision: str = Field(pattern="^(approved|rejected|removed)$")
    note: str = Field(default="", max_length=4000)


@router.get("/api/desk/search")
async def search(
    request: Request, p: Supervisor, q: Annotated[str, Query(min_length=2, max_length=64)]
) -> dict[str, Any]:
    deps = deps_of(request)
    found = await customers.search(deps.db.conn, q)
    async with deps.db.write() as conn:
        await audit(
            conn, deps.clock(), p.user.name, p.user.role.value, "customer_search",
            {"q": q, "numbers": [c["number"] for c in found]}, client=p.client,
        )  # fmt: skip
    return {"customers": found}


@router.get("/api/desk/callbacks")
async def callbacks(request: Request, p: Staff, overdue: bool = False) -> dict[str, Any]:
    """Open callbacks. Agents get no number and no note (other subscribers' data): only that
    there is work, when it is due and why; supervisors get all of it (audited)."""
    deps = deps_of(request)
    now = deps.clock()
    rows = await list_callbacks(deps.db.conn, status="open", overdue_at=now if overdue else None)
    if p.user.role is Role.AGENT:
        return {"callbacks": [
            {"id": r["id"], "reason": r["reason"], "due_at": r["due_at"]} for r in rows
        ]}  # fmt: skip
    async with deps.db.write() as conn:
        await audit(
            conn, now, p.user.name, p.user.role.value, "callbacks_view",
            {"overdue": overdue, "ids": [r["id"] for r in rows]}, client=p.client,
        )  # fmt: skip
    return {"callbacks": rows}


@router.get("/api/desk/blacklist")
async def blacklist_listing(
    request: Request, p: Supervisor, status: str | None = None
) -> dict[str, Any]:
    deps = deps_of(request)
    rows = await blacklist.listing(deps.db.conn, status)
    async with deps.db.write() as conn:
        await audit(
            conn, deps.clock(), p.user.name, p.user.role.value, "blacklist_view",
            {"status": status, "ids": [r["id"] for r in rows]}, client=p.client,
        )  # fmt: skip
    return {"entries": rows}


@router.post("/api/desk/blacklist/{entry_id}/decision", dependencies=[Depends(json_only)])
async def decide(entry_id: int, body: Decision, request: Request, p: Supervisor) -> dict[str, Any]:
    deps = deps_of(request)
    try:
        await blacklist.decide(
            deps.db, entry_id, body.decision, body.note, by=p.user.name,
            role=p.user.role.value, at=deps.clock(),
        )  # fmt: skip
    except blacklist.BlacklistError as err:
        raise ApiError(409, str(err)) from None
    return {"id": entry_id, "status": body.decision}
