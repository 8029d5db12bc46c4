"""The recording finaliser: a row when MixMonitor starts, measured and judged when the call ends.

`call_started`/`call_ended` are called from the AMI hot path: they only enqueue. `run()` (owned
by the app's TaskGroup) writes the 'recording' row, then, when the call has ended, waits for
Asterisk to close the file (MixMonitor finishes writing a moment after the hangup), measures it
(size, SHA-256, duration from the audio) in a thread, judges it and writes the result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import structlog

from ivr_agent.domain.calls import Call
from ivr_agent.domain.recordings import CallFacts, Measured, file_name, judge
from ivr_agent.errors import StorageError
from ivr_agent.recordings.files import FileState, RecordingsRoot
from ivr_agent.store import recordings as rec_store
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

# Concurrent measurements (each hashes a file in a worker thread).
_MEASURE_SLOTS: Final = 8
# At shutdown, how long finalisations in flight may take; the rest is settled at the next start.
_STOP_GRACE: Final = 3.0
_POLL_FIRST: Final = 0.05
_POLL_MAX: Final = 1.0


def facts_of(call: Call) -> CallFacts:
    return CallFacts(
        call_id=call.call_id,
        started_at=call.started_at,
        answered_at=call.answered_at,
        recording_started_at=call.recording_started_at,
        ended_at=call.ended_at,
        reconciled=call.reconciled,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        agent=call.agent,
        disposition=call.disposition.value if call.ended_at is not None else "",
        queue=call.queue,
    )


@dataclass(frozen=True, slots=True)
class _Item:
    facts: CallFacts
    ended: bool


_STOP: Final = _Item(CallFacts("", 0.0), False)


class RecordingKeeper:
    def __init__(
        self,
        db: Db,
        root: RecordingsRoot,
        *,
        finalise_timeout: float,
        tolerance: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.root = root
        self.finalise_timeout = finalise_timeout
        self.tolerance = tolerance
        self._clock = clock
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._slots = asyncio.Semaphore(_MEASURE_SLOTS)
        self._tasks: set[asyncio.Task[None]] = set()
        self.finalised = 0
        self.flagged = 0

    # -- hot path: no awaits, no I/O ---------------------------------------------------------
    def call_started(self, call: Call) -> None:
        self._queue.put_nowait(_Item(facts_of(call), ended=False))

    def call_ended(self, call: Call) -> None:
        self._queue.put_nowait(_Item(facts_of(call), ended=True))

    def stop(self) -> None:
        self._queue.put_nowait(_STOP)

    @property
    def busy(self) -> int:
        """Items queued plus finalisations in flight."""
        return self._queue.qsize() + len(self._tasks)

    # -- the task ------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while (item := await self._queue.get()) is not _STOP:
                if item.ended:
                    task = asyncio.create_task(self._finalise_logged(item.facts))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    await self._started(item.facts)
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=_STOP_GRACE)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._tasks or self._queue.qsize():
                log.info("recordings_left_for_next_start", count=self.busy)

    async def _started(self, facts: CallFacts) -> None:
        found = await asyncio.to_thread(self.root.locate, facts.call_id)
        name, fmt = found or (file_name(facts.call_id, "wav") or "", "wav")
        if not name:
            log.warning("recording_name_unsafe", call_id=facts.call_id)
            return
        try:
            await rec_store.record_started(self.db, facts, name, fmt, self._clock())
        except StorageError as err:
            log.exception("recording_row_failed", call_id=facts.call_id, error=str(err))

    async def _finalise_logged(self, facts: CallFacts) -> None:
        try:
            await self.finalise(facts, self.finalise_timeout)
        except StorageError as err:
            log.exception("recording_finalise_failed", call_id=facts.call_id, error=str(err))

    async def finalise(
        self, facts: CallFacts, wait: float, *, file_mtime: float | None = None
    ) -> bool:
        """Wait up to `wait` s for the file to be closed, then measure, judge and save it.
        Returns False when there is nothing to record (never answered, no file).

        `file_mtime`: for a file adopted without any call record, the recording is taken to
        have ended at its last write."""
        deadline = time.monotonic() + wait
        delay = _POLL_FIRST
        while True:
            found = await asyncio.to_thread(self._find, facts.call_id)
            if found is not None and found[2].finalised:
                break
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
        measured: Measured | None = None
        if found is None:
            if not facts.expects_recording:
                return False
            name, fmt = file_name(facts.call_id, "wav") or "", "wav"
        else:
            name, fmt, _ = found
            async with self._slots:
                measured = await asyncio.to_thread(self.root.measure, name)
            if facts.started_at <= 0 and file_mtime is not None:
                start = file_mtime - (measured.duration or 0.0) if measured else file_mtime
                facts = replace(
                    facts, started_at=start, recording_started_at=start, ended_at=file_mtime
                )
        verdict = judge(measured, facts.span, self.tolerance)
        await rec_store.save_final(self.db, facts, name, fmt, measured, verdict, self._clock())
        self.finalised += 1
        fields = {
            "call_id": facts.call_id,
            "status": verdict.status.value,
            "duration": measured.duration if measured else None,
            "call_span": round(facts.span, 3) if facts.span is not None else None,
        }
        if verdict.problem:
            self.flagged += 1
            log.warning("recording_flagged", problem=verdict.problem, **fields)
        else:
            log.info("recording_finalised", **fields)
        return True

    def _find(self, call_id: str) -> tuple[str, str, FileState] | None:
        found = self.root.locate(call_id)
        if found is None:
            return None
        state = self.root.state(found[0])
        return None if state is None else (found[0], found[1], state)
