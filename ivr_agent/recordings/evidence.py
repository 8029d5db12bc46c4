"""Flag a call as evidence (extortion, threat, abuse...): its recording is then kept beyond
retention and cannot be deleted; the flag records who, when and why. Used by the API and CLI."""

from __future__ import annotations

import aiosqlite
import structlog

from ivr_agent.domain.recordings import evidence_flag, recording_id_for
from ivr_agent.errors import IvrAgentError
from ivr_agent.store import audit
from ivr_agent.store import recordings as rec_store
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)


class EvidenceRefused(IvrAgentError):
    """The call's recording was deleted already: nothing left to keep."""


async def call_known(conn: aiosqlite.Connection, call_id: str) -> bool:
    async with conn.execute(
        "SELECT 1 FROM calls WHERE call_id = ? UNION ALL "
        "SELECT 1 FROM recordings WHERE call_id = ? LIMIT 1",
        (call_id, call_id),
    ) as cur:
        return await cur.fetchone() is not None


async def flag(
    db: Db,
    call_id: str,
    kind: str,
    reason: str,
    *,
    by: str,
    role: str,
    client: str,
    now: float,
) -> rec_store.EvidenceRow:
    """Validate (InvalidEvidence), append the flag, protect the recording, audit it."""
    k, why = evidence_flag(kind, reason)
    row = await rec_store.add_evidence(db, call_id, k, why, by, now)
    if row is None:
        raise EvidenceRefused(f"call {call_id}: its recording was deleted already")
    await audit.append(
        db,
        audit.AuditEntry(
            actor=by,
            role=role,
            action=audit.AuditAction.FLAG_EVIDENCE,
            at=now,
            recording_id=recording_id_for(call_id),
            call_id=call_id,
            client=client,
            detail={"kind": k.value, "reason": why},
        ),
    )
    log.info("recording_flagged_evidence", call_id=call_id, kind=k.value, agent=by)
    return row
