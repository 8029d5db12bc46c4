"""Bring the recordings folder and the database back into agreement (at start-up, then now and
then): orphan files are adopted, rows whose file is gone are flagged missing, recordings left
'recording' by a previous run (a kill -9) are finalised, interrupted deletions are finished.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import structlog

from ivr_agent.domain.recordings import (
    CallFacts,
    RecordingStatus,
    parse_file_name,
    recording_id_for,
)
from ivr_agent.errors import StorageError
from ivr_agent.recordings.files import FileState
from ivr_agent.recordings.keeper import RecordingKeeper, facts_of
from ivr_agent.store import recordings as rec_store
from ivr_agent.store.db import parse_utc_text
from ivr_agent.store.snapshot import call_from_json

log = structlog.get_logger(__name__)

# A file that is not finalised and was written to within this many seconds may still be in use
# by a call the service does not know yet: leave it for the next pass. (MixMonitor writes a
# 32 KiB block every 2 s for WAV, every ~20 s for Ogg Vorbis.)
STALE_AFTER: Final = 120.0
_SETTLED: Final = frozenset({RecordingStatus.COMPLETE.value, RecordingStatus.FAILED.value})


@dataclass(slots=True)
class ReconcileResult:
    adopted: int = 0
    settled: int = 0
    missing: int = 0
    purged: int = 0
    skipped_live: int = 0
    errors: list[str] = field(default_factory=list)


async def reconcile(
    keeper: RecordingKeeper,
    is_live: Callable[[str], bool],
    *,
    clock: Callable[[], float] = time.time,
) -> ReconcileResult:
    """One pass. `is_live(call_id)`: the call is still in progress (its file is being written)."""
    result = ReconcileResult()
    root, db = keeper.root, keeper.db
    if not await asyncio.to_thread(root.exists):
        log.error("recordings_dir_missing", path=str(root.root))
        result.errors.append(f"{root.root}: not a folder")
        return result
    started = time.perf_counter()
    files = await asyncio.to_thread(root.scan)
    known = await rec_store.inventory(db.conn)
    known_ids = {rid for rid, _ in known.values()}
    now = clock()

    async def settle(call_id: str, name: str, *, row: rec_store.RecordingRow | None) -> None:
        """Finalise a file whose call is over, unless it may still be written to."""
        if is_live(call_id):
            result.skipped_live += 1
            return
        state = files.get(name)
        if state is not None and not await _quiet(keeper, name, state, now):
            result.skipped_live += 1
            return
        facts = await _facts(keeper, call_id, row)
        mtime = state.mtime if state is not None else None
        try:
            if await keeper.finalise(facts, 0.0, file_mtime=mtime):
                if row is None:
                    result.adopted += 1
                    log.info("recording_adopted", call_id=call_id, path=name)
                else:
                    result.settled += 1
        except StorageError as err:
            result.errors.append(f"{name}: {err}")

    for name in sorted(files):
        parsed = parse_file_name(name)
        if name in known or parsed is None:
            continue
        call_id = parsed[0]
        if recording_id_for(call_id) in known_ids:
            continue  # the call's row names another file (another format): not an orphan
        await settle(call_id, name, row=None)

    for row in await rec_store.unsettled(db.conn):
        await settle(row.call_id, row.path, row=row)

    for path, (rid, status) in known.items():
        if path in files:
            if status == RecordingStatus.DELETED.value:
                # The tombstone was written but the process died before the unlink.
                if await asyncio.to_thread(root.unlink, path):
                    result.purged += 1
            elif status == RecordingStatus.MISSING.value:
                found = await rec_store.get(db.conn, rid)
                if found is not None:
                    await settle(found.call_id, path, row=found)
        elif status in _SETTLED and await rec_store.mark_missing(db, rid, clock()):
            result.missing += 1
            log.warning("recording_missing", recording_id=rid, path=path)

    log.info(
        "recordings_reconciled",
        files=len(files),
        adopted=result.adopted,
        settled=result.settled,
        missing=result.missing,
        purged=result.purged,
        skipped_live=result.skipped_live,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return result


async def _quiet(keeper: RecordingKeeper, name: str, scanned: FileState, now: float) -> bool:
    """The writer is done with the file: closed properly, or untouched for STALE_AFTER s."""
    state = await asyncio.to_thread(keeper.root.state, name)
    if state is None:
        return True  # gone since the scan: finalise() will find it missing
    return state.finalised or now - scanned.mtime >= STALE_AFTER


async def _facts(
    keeper: RecordingKeeper, call_id: str, row: rec_store.RecordingRow | None
) -> CallFacts:
    """The call as the database knows it (its snapshot), else what the row says."""
    async with keeper.db.conn.execute(
        "SELECT snapshot FROM calls WHERE call_id = ?", (call_id,)
    ) as cur:
        found = await cur.fetchone()
    if found is not None:
        try:
            call = call_from_json(str(found[0]))
        except StorageError:
            call = None
        if call is not None and call.call_id == call_id:
            facts = facts_of(call)
            if facts.ended_at is None:
                # Left open by a killed run and gone from Asterisk: the span is unknowable.
                return dataclasses.replace(facts, reconciled=True)
            return facts
    if row is not None:
        return CallFacts(
            call_id=call_id,
            started_at=parse_utc_text(row.started_at),
            recording_started_at=parse_utc_text(row.started_at),
            reconciled=True,
            caller_number=row.caller_number,
            caller_name=row.caller_name,
            agent=row.agent,
            disposition=row.disposition,
            queue=row.queue,
        )
    return CallFacts(call_id=call_id, started_at=0.0, reconciled=True)
