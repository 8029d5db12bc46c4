"""What a feature of the service looks like to the lifecycle owner (app.Service).

A feature sees every applied call change on the AMI hot path (`observe`: sync, cheap, no I/O),
hears when the live state was rebuilt after a (re)connect or a gap (`on_resync`: anything it
tracked may have changed unseen), and owns one long-lived task (`run`, cancelled at shutdown).
"""

from __future__ import annotations

from typing import Protocol

from ivr_agent.domain.callbook import CallChange


class Feature(Protocol):
    name: str

    def observe(self, change: CallChange) -> None: ...

    def on_resync(self) -> None: ...

    async def run(self) -> None: ...
