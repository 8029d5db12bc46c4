"""Glue for the blacklist treatment: keeps the dialplan's IVR_AGENT_BL_<digits> globals equal to
the blacklist in the database (the rule and its reasons: domain/blacklist_routing.py).

The table is read every `interval` seconds (a supervisor's decision in the web UI or the CLI
takes effect within that time) and after every AMI (re)connect, when everything is sent again:
Asterisk forgets its globals when it restarts. A Setvar that fails is retried on the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import structlog

from ivr_agent.ami import ActionSender
from ivr_agent.domain.blacklist_routing import (
    VARIABLE_PREFIX,
    Treatment,
    desired_globals,
    to_send,
)
from ivr_agent.domain.callbook import CallChange
from ivr_agent.errors import AmiError, StorageError
from ivr_agent.store import blacklist
from ivr_agent.store.txn import Db

log = structlog.get_logger(__name__)

_SETVAR_TIMEOUT: Final = 3.0


class BlacklistRouting:
    name = "blacklist-routing"

    def __init__(
        self,
        ami: ActionSender,
        database: str | Db,
        *,
        treatment: Treatment,
        interval: float = 5.0,
    ) -> None:
        self._ami = ami
        self._db_or_path = database
        self._treatment = treatment
        self._interval = interval
        self._sent: dict[str, str] = {}  # global -> value Asterisk holds (as far as we know)
        self._wake = asyncio.Event()
        self.rounds = 0

    def observe(self, change: CallChange) -> None:
        """Nothing per call: the PBX routes by the globals on its own."""

    def on_resync(self) -> None:
        # Asterisk may have restarted and lost every global: send all of them again.
        self._sent.clear()
        self._wake.set()

    @property
    def routed(self) -> frozenset[str]:
        """Globals currently set to route a caller (for health and tests)."""
        return frozenset(var for var, value in self._sent.items() if value)

    async def run(self) -> None:
        own = isinstance(self._db_or_path, str)
        db = self._db_or_path
        if isinstance(db, str):
            db = await Db.open(db)
        try:
            while True:
                try:
                    await self.sync(db)
                except (AmiError, StorageError) as err:
                    log.warning("blacklist_routing_failed", error=str(err))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval)
                self._wake.clear()
        finally:
            if own:
                await db.close()

    async def sync(self, db: Db) -> int:
        """Send the Setvars still needed; the number sent."""
        try:
            entries = await blacklist.numbers_and_status(db.conn)
        except Exception as err:  # sqlite3.Error and friends: typed for the loop
            raise StorageError(f"blacklist: cannot read: {err}") from err
        todo = to_send(desired_globals(entries, self._treatment), self._sent)
        for var, value in todo.items():
            await self._ami.send(
                {"Action": "Setvar", "Variable": var, "Value": value}, timeout=_SETVAR_TIMEOUT
            )
            self._sent[var] = value
            number = var.removeprefix(VARIABLE_PREFIX)  # masked at INFO by logs.mask_processor
            log.info("blacklist_route_set", caller_number=number, route=value or "none")
        self.rounds += 1
        return len(todo)
