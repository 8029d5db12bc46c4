"""The desk's supervisor side (search, callbacks, blacklist decisions) and the callbacks agents
work. Every supervisor look-up of a subscriber is audited.

Callbacks: an agent on duty claims an open one (POST /api/desk/callbacks/{id}/claim) and only
then sees its number, note and complaint (a claimed callback is a caller assigned to them); the
claimer or a supervisor closes it (done/cancelled, with a note) or releases it back. Claims,
closes and releases are audited in the same transaction as the change.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import aiosqlite
import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ivr_agent.domain.roster import MAX_SHIFT_SECONDS
from ivr_agent.store import blacklist, complaints, customers
from ivr_agent.store import callbacks as cb
from ivr_agent.store import roster as roster_store
from ivr_agent.store.desk_audit import audit
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, json_only, require
from ivr_agent.web.deps import WebDeps, deps_of
from ivr_agent.web.errors import ApiError

log = structlog.get_logger(__name__)

router = APIRouter()
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
Staff = Annotated[Principal, Depends(require(Role.AGENT, Role.SUPERVISOR))]
Agent = Annotated[Principal, Depends(require(Role.AGENT))]

# What an agent sees of a callback they have claimed (of others: id, reason, due, who has it).
_CLAIMED_FIELDS: Final = ("caller_number", "note", "complaint_id", "claimed_at")


class CloseBody(BaseModel):
    status: str = Field(pattern="^(done|cancelled)$")
    note: str = Field(default="", max_length=4000)


class Decision(BaseModel):
    decision: str = Field(pattern="^(approved|rejected|removed)$")
    note: str = Field(default="", max_length=4000)


@router.get("/api/desk/search")
async def search(
    request: Request, p: Supervisor, q: Annotated[str, Query(min_length=2, max_length=64)]
) -> dict[str, Any]:
    deps = deps_of(request)
    found = await customers.search(deps.db.conn, q)
    await _looked_up(deps, p, "customer_search", {"q": q, "numbers": [c["number"] for c in found]})
    return {"customers": found}


@router.get("/api/desk/callbacks")
async def callbacks(
    request: Request,
    p: Staff,
    overdue: bool = False,
    status: Annotated[str, Query(pattern="^(open|closed)$")] = "open",
) -> dict[str, Any]:
    """Open callbacks (`status=closed`: the last closed, supervisors only). Agents get no number
    and no note of other subscribers: only that there is work, when it is due, why and who has
    claimed it, and all of it for the ones they claimed; supervisors get all of it (audited)."""
    deps = deps_of(request)
    now = deps.clock()
    agent = p.user.role is Role.AGENT
    if agent and status != "open":
        raise ApiError(403, "agents see open callbacks only")
    if status == "closed":
        rows = await cb.recently_closed(deps.db.conn)
    else:
        late = now if overdue else None
        rows = await cb.list_callbacks(deps.db.conn, status="open", overdue_at=late)
    if agent:
        return {"callbacks": [_for_agent(r, p.user.agent) for r in rows]}
    await _looked_up(
        deps, p, "callbacks_view",
        {"overdue": overdue, "status": status, "ids": [r["id"] for r in rows]}, at=now,
    )  # fmt: skip
    return {"callbacks": rows}


def _for_agent(row: dict[str, object], agent: str) -> dict[str, object]:
    mine = bool(agent) and row["assigned_to"] == agent
    shown: dict[str, object] = {
        "id": row["id"], "reason": row["reason"], "due_at": row["due_at"],
        "status": row["status"], "assigned_to": row["assigned_to"], "mine": mine,
    }  # fmt: skip
    if mine:
        shown.update({k: row[k] for k in _CLAIMED_FIELDS})
    return shown


async def _on_duty(deps: WebDeps, agent: str, now: float) -> bool:
    """With the duty roster on: is `agent` on a shift now (a break counts)? Without: yes."""
    if deps.roster is None:
        return True
    roster = await roster_store.load_roster(deps.db.conn, now - MAX_SHIFT_SECONDS, now + 1)
    return any(d.agent.name == agent for d in roster.on_duty(now))


def _refused(err: cb.CallbackError) -> ApiError:
    """The store's refusal as an HTTP answer (its messages carry ids and agent names only)."""
    if isinstance(err, cb.CallbackNotFound):
        return ApiError(404, str(err), code="callback_not_found")
    if isinstance(err, cb.CallbackTaken):
        return ApiError(409, str(err), code="callback_taken")
    if isinstance(err, cb.CallbackClosed):
        return ApiError(409, str(err), code="callback_closed")
    if isinstance(err, cb.CallbackNotYours):
        return ApiError(403, str(err), code="callback_not_yours")
    return ApiError(400, str(err))


@router.post("/api/desk/callbacks/{callback_id}/claim", dependencies=[Depends(json_only)])
async def claim(callback_id: int, request: Request, p: Agent) -> dict[str, Any]:
    """Take an open, unclaimed callback: the answer carries its number, reason, note and
    complaint. Another agent's claim first -> 409; off duty (with a roster) -> 403."""
    deps = deps_of(request)
    now = deps.clock()
    agent = p.user.agent
    if not await _on_duty(deps, agent, now):
        raise ApiError(403, f"{agent} is not on duty: only agents on duty claim callbacks",
                       code="not_on_duty")  # fmt: skip
    try:
        async with deps.db.write() as conn:
            row = await cb.claim(conn, callback_id, agent=agent, at=now)
            await _audit(
                conn,
                now,
                p,
                "callback_claim",
                {"id": callback_id, "agent": agent},
                call_id=str(row["call_id"]) or None,
            )
    except cb.CallbackError as err:
        raise _refused(err) from None
    log.info("callback_claimed", callback_id=callback_id, agent=agent)
    return _for_agent(row, agent)


@router.post("/api/desk/callbacks/{callback_id}/close", dependencies=[Depends(json_only)])
async def close(callback_id: int, body: CloseBody, request: Request, p: Staff) -> dict[str, Any]:
    """Done or cancelled (a cancel says why in its note): by the agent who claimed it, or by
    any supervisor."""
    if body.status == "cancelled" and not body.note.strip():
        raise ApiError(422, "note: say why the callback is cancelled")
    deps = deps_of(request)
    now = deps.clock()
    agent = p.user.agent if p.user.role is Role.AGENT else None
    try:
        async with deps.db.write() as conn:
            row = await cb.close(conn, callback_id, body.status, by=p.user.name, at=now,
                                 note=body.note, agent=agent)  # fmt: skip
            await complaints.note_callback(
                conn, callback_id, body.status, by=p.user.name, at=now, note=body.note
            )
            await _audit(
                conn, now, p, f"callback_{body.status}", {"id": callback_id, "note": body.note}
            )
    except cb.CallbackError as err:
        raise _refused(err) from None
    log.info("callback_closed", callback_id=callback_id, status=body.status, by=p.user.name)
    return row if agent is None else _for_agent(row, agent)


@router.post("/api/desk/callbacks/{callback_id}/release", dependencies=[Depends(json_only)])
async def release(callback_id: int, request: Request, p: Staff) -> dict[str, Any]:
    """Back to the open pool: by the agent who claimed it, or by any supervisor."""
    deps = deps_of(request)
    now = deps.clock()
    agent = p.user.agent if p.user.role is Role.AGENT else None
    try:
        async with deps.db.write() as conn:
            had = await cb.release(conn, callback_id, agent=agent)
            await _audit(
                conn, now, p, "callback_release", {"id": callback_id, "from": had["assigned_to"]}
            )
    except cb.CallbackError as err:
        raise _refused(err) from None
    log.info("callback_released", callback_id=callback_id, by=p.user.name,
             agent=had["assigned_to"])  # fmt: skip
    return {"id": callback_id, "status": "open", "assigned_to": ""}


@router.get("/api/desk/blacklist")
async def blacklist_listing(
    request: Request, p: Supervisor, status: str | None = None
) -> dict[str, Any]:
    deps = deps_of(request)
    rows = await blacklist.listing(deps.db.conn, status)
    await _looked_up(deps, p, "blacklist_view", {"status": status, "ids": [r["id"] for r in rows]})
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


async def _audit(
    conn: aiosqlite.Connection, at: float, p: Principal, action: str, detail: object,
    *, call_id: str | None = None,
) -> None:  # fmt: skip
    """The audit row of what `p` did, in the caller's write transaction."""
    await audit(
        conn, at, p.user.name, p.user.role.value, action, detail, client=p.client, call_id=call_id
    )


async def _looked_up(
    deps: WebDeps, p: Principal, action: str, detail: object, *, at: float | None = None
) -> None:
    """The audit row of a supervisor's look-up (a read), in a transaction of its own."""
    async with deps.db.write() as conn:
        await _audit(conn, deps.clock() if at is None else at, p, action, detail)
