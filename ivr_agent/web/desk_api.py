"""The agent desk's HTTP API. Agents reach a caller only through a call that is or recently was
theirs (`/api/desk/calls/{call_id}/...`): no free search, no other subscriber's number in any
answer. Supervisors search, see overdue callbacks and decide the blacklist; lookups are audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ivr_agent.domain import complaints as rules
from ivr_agent.domain import privacy
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.phrases import COMPLAINT_STEPS, language
from ivr_agent.domain.screenpop import build, kind_for
from ivr_agent.errors import AmiError
from ivr_agent.store import blacklist, complaints, customers
from ivr_agent.store.callbacks import add_callback
from ivr_agent.store.db import parse_utc_text, utc_text
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, json_only, require
from ivr_agent.web.deps import WebDeps, deps_of
from ivr_agent.web.errors import ApiError

router = APIRouter()
Agent = Annotated[Principal, Depends(require(Role.AGENT))]
Text = Field(default="", max_length=rules.MAX_TEXT)


class CustomerEdit(BaseModel):
    version: int = Field(ge=1)
    name: str = Field(default="", max_length=200)
    notes: str = Text
    tags: list[str] = Field(default_factory=list, max_length=20)


class CallbackBody(BaseModel):
    due_at: dt.datetime
    note: str = Text


class ComplaintBody(BaseModel):
    category: str = Field(min_length=1, max_length=rules.MAX_CATEGORY)
    steps: list[str] = Field(min_length=rules.STEPS, max_length=rules.STEPS)
    promised_at: dt.datetime | None = None
    callback: CallbackBody | None = None


class SuggestionBody(BaseModel):
    text: str = Field(min_length=1, max_length=rules.MAX_TEXT)
    department: str = Field(min_length=1, max_length=64)


class ProposalBody(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


def _epoch(value: dt.datetime) -> float:
    if value.tzinfo is None:
        raise ApiError(422, "times need a UTC offset, e.g. 2026-11-26T09:00:00Z")
    return value.timestamp()


async def my_call(deps: WebDeps, agent: str, call_id: str) -> tuple[str, str]:
    """(call_id, caller number) of a call that is or recently was `agent`'s, else 404 (the same
    answer as for a call that does not exist: nothing leaks about other subscribers)."""
    now = deps.clock()
    desk = deps.desk
    mine = desk.call_of(agent, call_id) if desk else None
    if mine is not None and privacy.may_see_call(agent, agent, mine.ended_at, now):
        return call_id, mine.caller_number
    async with deps.db.conn.execute(
        "SELECT caller_number, ended_at FROM calls WHERE call_id = ? AND agent = ?",
        (call_id, agent),
    ) as cur:
        row = await cur.fetchone()
    if row is not None and privacy.may_see_call(agent, agent, _ended(row[1]), now):
        return call_id, str(row[0])
    raise ApiError(404, "no such call among yours")


def _ended(text: str | None) -> float | None:
    """A calls row's ended_at (UTC text, NULL while live) as epoch seconds."""
    return parse_utc_text(text) if text else None


def _live(deps: WebDeps, agent: str) -> Call | None:
    return deps.desk.current.get(agent) if deps.desk else None


@router.get("/api/desk/me")
async def desk_me(request: Request, p: Agent) -> dict[str, Any]:
    """My shift, my current call (the latest pop) and my recent calls (numbers masked)."""
    deps = deps_of(request)
    agent = p.user.agent
    now = deps.clock()
    async with deps.db.conn.execute(
        "SELECT start_utc, end_utc, role FROM shifts WHERE agent = ? AND end_utc > ? "
        "ORDER BY start_utc LIMIT 1",
        (agent, utc_text(now)),
    ) as cur:
        row = await cur.fetchone()
    shift = {"start": row[0], "end": row[1], "role": row[2]} if row else None
    async with deps.db.conn.execute(
        "SELECT call_id, caller_number, caller_name, started_at, disposition, talk_time "
        "FROM calls WHERE agent = ? ORDER BY started_at DESC LIMIT 10",
        (agent,),
    ) as cur:
        recent = [
            {"call_id": r[0], "caller": privacy.mask_number(str(r[1])), "name": r[2],
             "at": r[3], "disposition": r[4], "duration": r[5]}
            for r in await cur.fetchall()
        ]  # fmt: skip
    live = _live(deps, agent)
    lang = language(request.query_params.get("lang", "zh-CN"))
    return {
        "user": p.user.name, "agent": agent, "shift": shift, "recent": recent,
        "current": live.call_id if live else None,
        "seq": deps.desk.hub.seq if deps.desk else 0,
        "complaint_steps": list(COMPLAINT_STEPS[lang]),
    }  # fmt: skip


@router.get("/api/desk/calls/{call_id}")
async def call_file(call_id: str, request: Request, p: Agent) -> dict[str, Any]:
    """The pop of one of my calls, rebuilt (after a page reload)."""
    deps = deps_of(request)
    cid, number = await my_call(deps, p.user.agent, call_id)
    desk = deps.desk
    live = _live(deps, p.user.agent)
    if desk is None:
        raise ApiError(404, "the desk is not running")
    call = live if live and live.call_id == cid else Call(
        call_id=cid, state=CallState.ENDED, started_at=0.0, updated_at=0.0, caller_number=number
    )  # fmt: skip
    caller = await desk.caller_file(call)
    kind = kind_for(call.state, None)
    return build(call, kind, caller, language(request.query_params.get("lang", "zh-CN")), seq=0)


@router.put("/api/desk/calls/{call_id}/customer", dependencies=[Depends(json_only)])
async def edit_customer(
    call_id: str, body: CustomerEdit, request: Request, p: Agent
) -> dict[str, Any]:
    deps = deps_of(request)
    _, number = await my_call(deps, p.user.agent, call_id)
    await customers.ensure(deps.db, number, "", deps.clock())  # normally made at the pop
    tags = [t.strip()[:32] for t in body.tags if t.strip()]
    try:
        saved = await customers.update(
            deps.db, number, version=body.version, name=body.name, notes=body.notes, tags=tags,
            by=p.user.name, at=deps.clock(),
        )  # fmt: skip
    except customers.VersionConflict as err:
        raise ApiError(409, str(err), code="version_conflict") from None
    return {"name": saved.name, "notes": saved.notes, "tags": list(saved.tags),
            "version": saved.version}  # fmt: skip


@router.post("/api/desk/calls/{call_id}/complaints", dependencies=[Depends(json_only)])
async def file_complaint(
    call_id: str, body: ComplaintBody, request: Request, p: Agent
) -> dict[str, Any]:
    deps = deps_of(request)
    _, number = await my_call(deps, p.user.agent, call_id)
    now = deps.clock()
    try:
        steps = rules.check_steps(body.steps)
    except rules.ComplaintError as err:
        raise ApiError(400, str(err)) from None
    callback_id = None
    if body.callback is not None:
        callback_id = await add_callback(
            deps.db, call_id=call_id, caller_number=number, reason="complaint",
            due_at=_epoch(body.callback.due_at), note=body.callback.note,
            created_by=p.user.name, at=now,
        )  # fmt: skip
    status = rules.initial_status(steps, body.callback is not None)
    cid = await complaints.add(
        deps.db, call_id=call_id, caller_number=number, agent=p.user.agent,
        category=body.category, steps=steps,
        promised_at=_epoch(body.promised_at) if body.promised_at else None,
        status=status, callback_id=callback_id, by=p.user.name, at=now,
    )  # fmt: skip
    return {"id": cid, "status": status.value, "callback_id": callback_id}


async def handles_caller(deps: WebDeps, agent: str, number: str) -> bool:
    """The caller `number` is on a call that is or recently was `agent`'s, or on an open
    callback `agent` has claimed (privacy rule: callers assigned to them)."""
    if not agent or not number:
        return False
    live = _live(deps, agent)
    if live is not None and live.caller_number == number:
        return True
    async with deps.db.conn.execute(
        "SELECT 1 FROM callbacks WHERE assigned_to = ? AND caller_number = ? AND status = 'open'",
        (agent, number),
    ) as cur:
        if await cur.fetchone() is not None:
            return True
    async with deps.db.conn.execute(
        "SELECT ended_at FROM calls WHERE agent = ? AND caller_number = ? "
        "ORDER BY ended_at IS NULL DESC, ended_at DESC LIMIT 1",
        (agent, number),
    ) as cur:
        row = await cur.fetchone()
    return row is not None and privacy.may_see_call(agent, agent, _ended(row[0]), deps.clock())


async def _my_complaint(deps: WebDeps, agent: str, complaint_id: int) -> dict[str, Any]:
    """A complaint this agent may read and move on: one they filed on a call still theirs, or
    any complaint of a caller they are (or were recently) talking to: a caller who rings back
    about it reaches whoever is on duty. Else 404, as for a complaint that does not exist."""
    found = await complaints.get(deps.db.conn, complaint_id)
    if found is not None:
        if found["agent"] == agent and await _still_mine(deps, agent, found["call_id"]):
            return found
        if await handles_caller(deps, agent, found["caller_number"]):
            return found
    raise ApiError(404, "no such complaint among your callers")


async def _still_mine(deps: WebDeps, agent: str, call_id: str) -> bool:
    try:
        await my_call(deps, agent, call_id)
    except ApiError:
        return False
    return True


@router.get("/api/desk/complaints/{complaint_id}")
async def show_complaint(complaint_id: int, request: Request, p: Agent) -> dict[str, Any]:
    deps = deps_of(request)
    found = await _my_complaint(deps, p.user.agent, complaint_id)
    found.pop("caller_number")
    found["history"] = await complaints.history(deps.db.conn, complaint_id)
    return found


class StatusBody(BaseModel):
    status: rules.Status
    note: str = Field(default="", max_length=4000)


@router.post("/api/desk/complaints/{complaint_id}/status", dependencies=[Depends(json_only)])
async def complaint_status(
    complaint_id: int, body: StatusBody, request: Request, p: Agent
) -> dict[str, Any]:
    """The agent who filed it, or who has its caller on the line now (or recently), moves it
    on (appended to its history)."""
    deps = deps_of(request)
    found = await complaints.get(deps.db.conn, complaint_id)
    if found is None or not (
        found["agent"] == p.user.agent
        or await handles_caller(deps, p.user.agent, found["caller_number"])
    ):
        raise ApiError(404, "no such complaint among your callers")
    try:
        await complaints.set_status(
            deps.db, complaint_id, body.status, by=p.user.name, at=deps.clock(), note=body.note
        )
    except rules.ComplaintError as err:
        raise ApiError(409, str(err)) from None
    return {"id": complaint_id, "status": body.status.value}


@router.post("/api/desk/calls/{call_id}/suggestions", dependencies=[Depends(json_only)])
async def log_suggestion(
    call_id: str, body: SuggestionBody, request: Request, p: Agent
) -> dict[str, Any]:
    deps = deps_of(request)
    _, number = await my_call(deps, p.user.agent, call_id)
    sid = await complaints.add_suggestion(
        deps.db, call_id=call_id, caller_number=number, agent=p.user.agent, text=body.text,
        department=body.department, at=deps.clock(),
    )  # fmt: skip
    return {"id": sid, "department": body.department}


@router.post("/api/desk/calls/{call_id}/blacklist", dependencies=[Depends(json_only)])
async def propose_blacklist(
    call_id: str, body: ProposalBody, request: Request, p: Agent
) -> dict[str, Any]:
    deps = deps_of(request)
    _, number = await my_call(deps, p.user.agent, call_id)
    try:
        bid = await blacklist.propose(
            deps.db, number, body.reason, by=p.user.name, role=p.user.role.value, at=deps.clock()
        )
    except blacklist.BlacklistError as err:
        raise ApiError(409, str(err)) from None
    return {"id": bid, "status": "pending"}


@router.post("/api/calls/current/silent-line", dependencies=[Depends(json_only)])
async def silent_line(request: Request, p: Agent) -> dict[str, Any]:
    deps = deps_of(request)
    live = _live(deps, p.user.agent)
    if live is None or live.state not in (CallState.CONNECTED, CallState.ON_HOLD):
        raise ApiError(404, "you are not on a call")
    if deps.silent_line is None:
        raise ApiError(409, "the silent line is switched off")
    try:
        done = await deps.silent_line(live.call_id, p.user.name)
    except AmiError as err:
        raise ApiError(409, str(err)) from None
    if not getattr(done, "ok", True):
        raise ApiError(409, str(getattr(done, "error", "")) or "the silent line failed")
    return {"call_id": live.call_id, "silent_line": "played"}
