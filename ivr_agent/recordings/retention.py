"""The retention job: delete recordings past the retention period, never evidence; leave a
tombstone row (who, what, when, why) and an audit row for each."""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from ivr_agent.domain.recordings import RecordingStatus, expired, retention_cutoff
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store import audit
from ivr_agent.store import recordings as rec_store
from ivr_agent.store.db import parse_utc_text
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

ACTOR: Final = "retention"
_BATCH: Final = 500


async def expire(db: Db, root: RecordingsRoot, retention_days: int, now: float) -> int:
    """Delete what is past retention at `now`; returns how many recordings were deleted.

    Order: tombstone first (guarded against evidence in the same statement), then unlink. A
    crash in between leaves a tombstone whose file the next reconcile removes; never a live
    row without its file."""
    if retention_days <= 0:
        return 0
    cutoff = retention_cutoff(now, retention_days)
    reason = f"retention {retention_days} days"
    deleted = 0
    while True:
        rows = await rec_store.expired(db.conn, cutoff, _BATCH)
        progress = 0
        for row in rows:
            status = RecordingStatus(row.status)
            started = parse_utc_text(row.started_at)
            if not expired(status, row.evidence, started, now, retention_days):
                continue
            if not await rec_store.tombstone(db, row.recording_id, ACTOR, reason, now):
                continue  # flagged as evidence meanwhile: kept
            removed = await asyncio.to_thread(root.unlink, row.path)
            await audit.append(
                db,
                audit.AuditEntry(
                    actor=ACTOR,
                    action=audit.AuditAction.DELETE,
                    at=now,
                    recording_id=row.recording_id,
                    call_id=row.call_id,
                    client="local",
                    detail={
                        "path": row.path,
                        "sha256": row.sha256,
                        "size": row.size,
                        "reason": reason,
                        "file_removed": removed,
                    },
                ),
            )
            progress += 1
        deleted += progress
        if len(rows) < _BATCH or not progress:
            break
    if deleted:
        log.info("recordings_expired", count=deleted, retention_days=retention_days)
    return deleted
