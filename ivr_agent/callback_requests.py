"""After hours: the dialplan's `IvrAgentCallback` UserEvent (the caller pressed 1) becomes a row of
`callbacks` (reason after_hours). `observe` notes it on the hot path; `store` writes it later."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import structlog

from ivr_agent.domain.callbook import CallChange
from ivr_agent.domain.events import UserEvent
from ivr_agent.errors import IvrAgentError
from ivr_agent.store import callbacks
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

CALLBACK_EVENT: Final = "IvrAgentCallback"


class CallbackRequests:
    def __init__(self, *, who: str, clock: Callable[[], float]) -> None:
        self._who = who
        self._clock = clock
        self.pending: list[tuple[str, str]] = []  # (call_id, caller number) to store

    def observe(self, change: CallChange) -> bool:
        """True when `change` asked for a callback (the loop should store it now)."""
        event = change.event
        if isinstance(event, UserEvent) and event.name == CALLBACK_EVENT:
            number = event.field("CallerNumber") or change.call.caller_number
            self.pending.append((change.call.call_id, number))
            return True
        return False

    async def store(self, db: Db) -> None:
        while self.pending:
            call_id, number = self.pending.pop(0)
            now = self._clock()
            try:
                cid = await callbacks.add_callback(
                    db,
                    call_id=call_id,
                    caller_number=number,
                    reason="after_hours",
                    due_at=now,
                    note="",
                    created_by=self._who,
                    at=now,
                )
            except IvrAgentError as err:
                log.warning("callback_not_stored", call_id=call_id, error=str(err))
                continue
            log.info("callback_requested", call_id=call_id, callback_id=cid, caller_number=number)
