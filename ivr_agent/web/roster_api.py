"""The roster over HTTP: the shift leader button, who is on duty, alerts, change requests.

Agents: POST /api/calls/current/leader (transfer the caller to the shift leaders: 409 when no
leader is on duty), POST /api/roster/requests (ask for a swap or a change).
Supervisors: GET /api/roster/onduty, GET /api/roster/alerts[?open=true] (newest first; `at` and
`acknowledged_at` in epoch seconds), POST /api/roster/alerts/{id}/ack (audited in roster_audit),
GET /api/roster/requests?status=pending|approved|rejected (default pending, newest first),
POST /api/roster/requests/{id}/approve|reject (an approved change applies at once; the service
follows it within a second).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import aiosqlite
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ivr_agent.domain.roster import MAX_SHIFT_SECONDS, RosterError
from ivr_agent.domain.roster_changes import (
    ChangeError,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    new_request,
    payload_from_json,
    payload_to_json,
)
from ivr_agent.errors import AmiError
from ivr_agent.shift_leader import NoLeaderOnDuty
from ivr_agent.store import roster as store
from ivr_agent.store import roster_ops as ops
from ivr_agent.store.alerts import Alert, AlertError, acknowledge, list_alerts
from ivr_agent.store.db import open_db, utc_text
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, json_only, require
from ivr_agent.web.deps import WebDeps, deps_of
from ivr_agent.web.errors import ApiError

router = APIRouter()
Agent = Annotated[Principal, Depends(require(Role.AGENT))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
Anyone = Annotated[Principal, Depends(require(Role.AGENT, Role.SUPERVISOR))]


class RequestBody(BaseModel):
    kind: str = Field(pattern="^(swap|change)$")
    payload: dict[str, Any]
    reason: str = Field(min_length=1, max_length=2000)


class DecisionBody(BaseModel):
    note: str = Field(default="", max_length=2000)


@asynccontextmanager
async def _roster_conn(deps: WebDeps) -> AsyncIterator[aiosqlite.Connection]:
    """Roster operations run their own transactions: on a connection of their own."""
    conn = await open_db(deps.settings.storage.database)
    try:
        yield conn
    finally:
        await conn.close()


def _tz(deps: WebDeps) -> ZoneInfo:
    return ZoneInfo(deps.settings.site.timezone)


@router.post("/api/calls/current/leader")
async def bring_leader(request: Request, p: Agent) -> dict[str, Any]:
    deps = deps_of(request)
    roster = deps.roster
    if roster is None:
        raise ApiError(404, "the duty roster is not enabled")
    agent = p.user.agent or p.user.name
    call_id = deps.current_call(agent)
    if call_id is None:
        raise ApiError(404, "you are not on a call")
    channel = deps.caller_channel(call_id) if deps.caller_channel else ""
    try:
        leader = await roster.bring_leader(call_id, channel or "", by=agent)
    except NoLeaderOnDuty as err:
        raise ApiError(409, str(err), code="no_leader_on_duty") from None
    except AmiError as err:
        raise ApiError(409, f"the transfer failed: {err}") from None
    return {"call_id": call_id, "leader": leader, "mode": "transfer"}


@router.get("/api/roster/onduty")
async def on_duty(request: Request, _p: Anyone) -> dict[str, Any]:
    deps = deps_of(request)
    now = deps.clock()
    roster = await store.load_roster(deps.db.conn, now - MAX_SHIFT_SECONDS, now + 1)
    leader = roster.leader_at(now)
    return {
        "at": now,
        "leader": leader.agent.name if leader else None,
        "agents": [
            {
                "agent": d.agent.name,
                "display_name": d.agent.display_name,
                "role": d.role.value,
                "on_break": d.on_break,
                "shift_start": d.shift.start,
                "shift_end": d.shift.end,
            }
            for d in roster.on_duty(now)
        ],
    }


@router.get("/api/roster/alerts")
async def alerts(
    request: Request,
    _p: Supervisor,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Long-call and private-call alerts, newest first; `open=true`: not acknowledged yet."""
    found = await list_alerts(deps_of(request).db.conn, open_only=open_only, limit=limit)
    return {"alerts": [_alert_json(a) for a in found]}


@router.post("/api/roster/alerts/{alert_id}/ack", dependencies=[Depends(json_only)])
async def ack_alert(
    alert_id: int, body: DecisionBody, request: Request, p: Supervisor
) -> dict[str, Any]:
    """A supervisor has seen to the alert (who and when are kept, and audited)."""
    deps = deps_of(request)
    try:
        done = await acknowledge(deps.db, alert_id, by=p.user.name, at=deps.clock(), note=body.note)
    except AlertError as err:
        raise ApiError(404 if err.missing else 409, str(err)) from None
    return _alert_json(done)


def _alert_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "call_id": a.call_id,
        "agent": a.agent,
        "at": a.at,
        "detail": a.detail,
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": a.acknowledged_at,
    }


@router.get("/api/roster/requests")
async def list_requests(
    request: Request,
    _p: Supervisor,
    status: str = "pending",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Change requests with `status` (default pending), newest first."""
    try:
        wanted = ChangeStatus(status)
    except ValueError:
        raise ApiError(
            400, f"status must be pending, approved or rejected, not {status!r}"
        ) from None
    conn = deps_of(request).db.conn
    found = await ops.list_changes(conn, status=wanted, limit=limit)
    # The shifts the requests name, so that a supervisor sees whose shift and when, not an id.
    ids = {i for r in found for i in _shift_ids(r)}
    shifts = await store.get_shifts(conn, ids) if ids else {}
    return {
        "requests": [_request_json(r) for r in found],
        "shifts": {
            str(i): {
                "agent": sh.agent,
                "start": utc_text(sh.start),
                "end": utc_text(sh.end),
                "role": sh.role.value,
            }
            for i, sh in shifts.items()
        },
    }


def _shift_ids(req: ChangeRequest) -> list[int]:
    data = payload_to_json(req.payload)
    return [v for k in ("shift", "other") if isinstance(v := data.get(k), int)]


def _request_json(req: ChangeRequest) -> dict[str, Any]:
    return {
        "id": req.id,
        "kind": req.kind.value,
        "payload": payload_to_json(req.payload),
        "reason": req.reason,
        "status": req.status.value,
        "requested_by": req.requested_by,
        "requested_at": utc_text(req.requested_at),
        "decided_by": req.decided_by,
        "decided_at": utc_text(req.decided_at),
        "decision_note": req.decision_note,
    }


@router.post("/api/roster/requests", dependencies=[Depends(json_only)], status_code=201)
async def request_change(body: RequestBody, request: Request, p: Anyone) -> dict[str, Any]:
    deps = deps_of(request)
    try:
        payload = payload_from_json(ChangeKind(body.kind), body.payload)
        req = new_request(p.user.name, payload, body.reason, time.time())
        async with _roster_conn(deps) as conn:
            stored, warnings = await ops.request_change(conn, req, _tz(deps), leader_gap=_gap(deps))
    except (ValueError, KeyError) as err:
        raise ApiError(400, f"payload: {err}") from None
    except (ChangeError, RosterError) as err:
        raise ApiError(409, str(err)) from None
    return {
        "id": stored.id,
        "status": stored.status.value,
        "kind": body.kind,
        "payload": payload_to_json(stored.payload),
        "warnings": [str(w) for w in warnings],
    }


@router.post("/api/roster/requests/{change_id}/{decision}", dependencies=[Depends(json_only)])
async def decide(
    change_id: int, decision: str, body: DecisionBody, request: Request, p: Supervisor
) -> dict[str, Any]:
    if decision not in ("approve", "reject"):
        raise ApiError(404, f"no such decision {decision!r}: approve or reject")
    deps = deps_of(request)
    try:
        async with _roster_conn(deps) as conn:
            decided, warnings = await ops.decide_change(
                conn,
                change_id,
                _tz(deps),
                approve=decision == "approve",
                by=p.user.name,
                at=time.time(),
                note=body.note,
                leader_gap=_gap(deps),
            )
    except (ChangeError, RosterError) as err:
        status = 404 if str(err).startswith(f"no change #{change_id}") else 409
        raise ApiError(status, str(err)) from None
    return {
        "id": decided.id,
        "status": decided.status.value,
        "decided_by": decided.decided_by,
        "warnings": [str(w) for w in warnings],
    }


def _gap(deps: WebDeps) -> Any:
    return deps.settings.roster.leader_gap
