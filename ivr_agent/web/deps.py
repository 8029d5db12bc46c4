"""What the web app needs from the service, passed to `create_app` (tests pass their own)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from ivr_agent.config import Settings
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store.txn import Db
from ivr_agent.web.limits import LoginLimiter


def _no_live_call(_agent: str) -> str | None:
    return None


@dataclass(slots=True)
class WebDeps:
    db: Db
    root: RecordingsRoot
    settings: Settings
    clock: Callable[[], float] = time.time
    # The call an agent (queue member name) is on right now, from the live call book.
    current_call: Callable[[str], str | None] = _no_live_call
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


def deps_of(request: Request) -> WebDeps:
    deps: WebDeps = request.app.state.deps
    return deps
