"""What the web app needs from the service, passed to `create_app` (tests pass their own)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from ivr_agent.config import Settings
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.store.txn import Db
from ivr_agent.web.limits import LoginLimiter

if TYPE_CHECKING:
    from ivr_agent.callactions import CallActions
    from ivr_agent.desk import Desk
    from ivr_agent.rostering import Rostering


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
    # The agent desk (screen pops, the callers agents were given); None: no desk.
    desk: Desk | None = None
    # The silent-line button: trigger(call_id, by); None when the feature is off.
    silent_line: Callable[[str, str], Awaitable[object]] | None = None
    # The duty roster feature (leader transfer, alerts); None when [roster] is off.
    roster: Rostering | None = None
    # The caller leg's channel of a live call (what a Redirect moves), from the call book.
    caller_channel: Callable[[str], str | None] | None = None
    # Civil-language warning and polite closing on an agent's current call; None: off.
    call_actions: CallActions | None = None
    # Problems an operator must hear about (names only, no subscriber data) for /healthz.
    health: Callable[[], list[str]] | None = None


def deps_of(request: Request) -> WebDeps:
    deps: WebDeps = request.app.state.deps
    return deps
