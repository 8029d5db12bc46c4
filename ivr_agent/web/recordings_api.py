"""/api/recordings: search, details, audio with Range (supervisors only, every access audited).

Playing in a browser makes many Range requests; the audit log must show one access. So the page
first POSTs `/access` (one audit row) and gets an audio URL carrying a signed ticket bound to
the user, the recording and the kind of access; requests with a valid ticket add no row. Any
request without one (a script) is audited on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from typing import Annotated, Any, Final, Literal

import itsdangerous
import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ivr_agent.domain.calls import Disposition
from ivr_agent.domain.recordings import CONTENT_TYPES, RecordingStatus, valid_recording_id
from ivr_agent.errors import RecordingNotFound
from ivr_agent.store import audit
from ivr_agent.store import recordings as rec_store
from ivr_agent.store.db import parse_utc_text
from ivr_agent.store.users import Role
from ivr_agent.web.auth import Principal, json_only, require
from ivr_agent.web.deps import WebDeps, deps_of
from ivr_agent.web.errors import NO_STORE, ApiError
from ivr_agent.web.ranges import OpenFileResponse, RangeNotSatisfiable, parse_range

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/recordings")
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
_TICKET_SALT: Final = "ivr-agent.recording-access"
TICKET_MAX_AGE: Final = 6 * 3600  # a listening session
_CURSOR_RE: Final = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)~([0-9a-f]{16})")
_DISPOSITIONS: Final = frozenset(d.value for d in Disposition)
_STATUSES: Final = frozenset(s.value for s in RecordingStatus)


def _public(row: rec_store.RecordingRow) -> dict[str, Any]:
    data = row.as_dict()
    data.pop("path")  # where the file lives is the server's business
    return data


def _time(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        return parse_utc_text(text)
    except ValueError:
        raise ApiError(400, f"{name}: not an ISO-8601 time: {text!r}") from None


async def _audit(deps: WebDeps, p: Principal, action: audit.AuditAction, **kw: Any) -> int:
    """One audit row (committed before the response goes out), and a log line."""
    entry = audit.AuditEntry(
        actor=p.user.name, role=p.user.role.value, action=action, at=deps.clock(),
        client=p.client, **kw,
    )  # fmt: skip
    entry_id = await audit.append(deps.db, entry)
    log.info(
        "recording_accessed",
        action=action.value,
        recording_id=entry.recording_id,
        user=p.user.name,
        client=p.client,
    )
    return entry_id


@router.get("")
async def search(
    request: Request,
    p: Supervisor,
    since: Annotated[str | None, Query(alias="from")] = None,
    until: Annotated[str | None, Query(alias="to")] = None,
    agent: Annotated[str, Query(max_length=64)] = "",
    caller: Annotated[str, Query(max_length=32)] = "",
    disposition: str = "",
    evidence: bool | None = None,
    status: str = "",
    call_id: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str = "",
) -> Response:
    deps = deps_of(request)
    if disposition and disposition not in _DISPOSITIONS:
        raise ApiError(400, f"disposition: one of {', '.join(sorted(_DISPOSITIONS))}")
    if status and status not in _STATUSES:
        raise ApiError(400, f"status: one of {', '.join(sorted(_STATUSES))}")
    before = None
    if cursor:
        m = _CURSOR_RE.fullmatch(cursor)
        if m is None:
            raise ApiError(400, "cursor: use the `next` value of the previous page")
        before = (m.group(1), m.group(2))
    query = rec_store.RecordingQuery(
        since=_time(since, "from"), until=_time(until, "to"), agent=agent, caller=caller,
        disposition=disposition, evidence=evidence, status=status, call_id=call_id,
        limit=limit, before=before,
    )  # fmt: skip
    rows = await rec_store.search(deps.db.conn, query)
    following = f"{rows[-1].started_at}~{rows[-1].recording_id}" if len(rows) == limit else None
    filters = {k: v for k, v in request.query_params.items() if k != "cursor"}
    await _audit(
        deps, p, audit.AuditAction.LIST,
        detail={"filters": filters, "count": len(rows), "ids": [r.recording_id for r in rows]},
    )  # fmt: skip
    return _json({"items": [_public(r) for r in rows], "next": following})


async def _row(deps: WebDeps, rid: str) -> rec_store.RecordingRow:
    # The id is matched against a fixed pattern before anything else: it never reaches a path.
    if not valid_recording_id(rid):
        raise ApiError(404, "no such recording")
    row = await rec_store.get(deps.db.conn, rid)
    if row is None:
        raise ApiError(404, "no such recording")
    return row


@router.get("/{rid}")
async def details(rid: str, request: Request, p: Supervisor) -> Response:
    deps = deps_of(request)
    row = await _row(deps, rid)
    flags = await rec_store.evidence_of(deps.db.conn, row.call_id)
    await _audit(deps, p, audit.AuditAction.VIEW, recording_id=rid, call_id=row.call_id)
    return _json({**_public(row), "evidence_flags": [dataclasses.asdict(f) for f in flags]})


def _playable(row: rec_store.RecordingRow) -> None:
    status = RecordingStatus(row.status)
    if status is RecordingStatus.DELETED:
        why = f"deleted on {row.deleted_at} by {row.deleted_by} ({row.delete_reason})"
        raise ApiError(410, why)
    if status is RecordingStatus.MISSING:
        raise ApiError(404, "the recording's file is missing")
    if status is not RecordingStatus.COMPLETE:
        raise ApiError(409, f"the recording is {status.value}")


class AccessBody(BaseModel):
    action: Literal["play", "download"] = "play"


def _signer(deps: WebDeps) -> itsdangerous.URLSafeTimedSerializer:
    return itsdangerous.URLSafeTimedSerializer(deps.settings.web.session_key, salt=_TICKET_SALT)


@router.post("/{rid}/access", dependencies=[Depends(json_only)])
async def access(rid: str, body: AccessBody, request: Request, p: Supervisor) -> Response:
    deps = deps_of(request)
    row = await _row(deps, rid)
    _playable(row)
    download = body.action == "download"
    action = audit.AuditAction.DOWNLOAD if download else audit.AuditAction.PLAY
    entry_id = await _audit(deps, p, action, recording_id=rid, call_id=row.call_id)
    ticket = _signer(deps).dumps([p.user.id, rid, int(download), entry_id])
    url = f"/api/recordings/{rid}/audio?access={ticket}" + ("&download=1" if download else "")
    return _json({"url": url, "audit_id": entry_id}, status=201)


def _ticket_ok(deps: WebDeps, ticket: str, p: Principal, rid: str, download: bool) -> bool:
    try:
        uid, trid, tdownload, _entry = _signer(deps).loads(ticket, max_age=TICKET_MAX_AGE)
    except (itsdangerous.BadData, ValueError, TypeError):
        return False
    return bool(uid == p.user.id and trid == rid and tdownload == int(download))


@router.api_route("/{rid}/audio", methods=["GET", "HEAD"])
async def audio(
    rid: str,
    request: Request,
    p: Supervisor,
    access: Annotated[str, Query(max_length=512)] = "",
    download: bool = False,
) -> Response:
    deps = deps_of(request)
    row = await _row(deps, rid)
    _playable(row)
    try:
        fd = await asyncio.to_thread(deps.root.open, row.path)
    except RecordingNotFound:
        raise ApiError(404, "the recording's file is missing") from None
    size = 0
    try:
        size = await asyncio.to_thread(_fstat_size, fd)
        byte_range = parse_range(request.headers.get("range"), size)
        if not (access and _ticket_ok(deps, access, p, rid, download)):
            action = audit.AuditAction.DOWNLOAD if download else audit.AuditAction.PLAY
            await _audit(
                deps, p, action, recording_id=rid, call_id=row.call_id,
                detail={"range": request.headers.get("range", "")},
            )  # fmt: skip
    except RangeNotSatisfiable:
        os.close(fd)
        unsatisfiable = {"Content-Range": f"bytes */{size}"}
        raise ApiError(416, "range starts past the end", headers=unsatisfiable) from None
    except BaseException:
        os.close(fd)
        raise
    disposition = "attachment" if download else "inline"
    return OpenFileResponse(
        fd,
        size=size,
        byte_range=byte_range,
        media_type=CONTENT_TYPES.get(row.format, "application/octet-stream"),
        headers={
            "ETag": f'"{row.sha256}"',
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'{disposition}; filename="{row.path}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _fstat_size(fd: int) -> int:
    return os.fstat(fd).st_size


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status, headers=NO_STORE)
