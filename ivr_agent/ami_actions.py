"""AMI actions in flight: header checks before sending, the pending record a reply completes, one
deadline per exchange (AmiTimeout) and the typed failure of an error reply (AmiActionFailed).

Which frame completes a pending action (its ActionID routing) is the connection's job:
`AmiProtocol._route` in `ami_protocol`. Failing in-flight actions with `AmiDisconnected` when the
link drops is `AmiProtocol.connection_lost`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ivr_agent.amiframes import Frame
from ivr_agent.errors import AmiActionFailed, AmiTimeout

if TYPE_CHECKING:
    from ivr_agent.ami_protocol import AmiProtocol

# How a pending action completes: on its first Response; on its list's `EventList: Complete`;
# Login, whose reply goes to the client's login gate instead of a waiter.
SINGLE, LIST, LOGIN = 0, 1, 2
SUCCESS = frozenset({"Success", "Follows", "Goodbye"})


class Pending:
    """An action sent and not yet answered: the frames received so far, the future they complete."""

    __slots__ = ("action", "frames", "future", "kind")

    def __init__(self, action: str, kind: int, future: asyncio.Future[list[Frame]]) -> None:
        self.action = action
        self.kind = kind
        self.future = future
        self.frames: list[Frame] = []


async def exchange(
    proto: AmiProtocol,
    aid: str,
    action: str,
    fields: Mapping[str, str],
    kind: int,
    seconds: float,
) -> list[Frame]:
    """Send one action on `proto` and wait at most `seconds` for its reply (or its whole list)."""
    p = proto.submit(aid, action, fields, kind)
    try:
        async with asyncio.timeout(seconds):
            return await p.future
    except TimeoutError as err:
        if kind == LIST:
            proto.abandon(aid)
        raise AmiTimeout(f"{action} {aid}: no response within {seconds}s") from err
    finally:
        proto.pending.pop(aid, None)
        if p.future.done() and not p.future.cancelled():
            p.future.exception()  # retrieved: a drop racing a cancel must not log "never retrieved"


def prepare(action: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The action's name and the headers to write; ValueError for a header that would break the
    frame or take over its ActionID."""
    name = action.get("Action")
    if not name:
        raise ValueError("an AMI action needs an 'Action' header")
    fields: dict[str, str] = {}
    for key, value in action.items():
        if key.lower() == "actionid":
            raise ValueError(f"{name}: ActionID is assigned by AmiClient")
        # A CR or LF would let a value inject headers or a whole second action.
        if not key or ":" in key or any(c in s for s in (key, value) for c in "\r\n"):
            raise ValueError(f"{name}: header {key!r} contains ':', CR or LF")
        fields[key] = value
    if name.lower() == "originate":
        # A synchronous Originate holds its reply until the call is answered or fails, and
        # panoramisk waits for more after "successfully queued". Async, the reply is immediate
        # and the result arrives as an OriginateResponse event.
        fields = {k: v for k, v in fields.items() if k.lower() != "async"}
        fields["Async"] = "true"
    return name, fields


def check_reply(action: str, response: Frame) -> None:
    """Raise AmiActionFailed unless `response`, an action's first reply, reports success."""
    if response.get("Response") not in SUCCESS:
        message = response.get("Message", "")
        if "Output" in response:  # Command errors carry the CLI's text here
            message = f"{message}: {response['Output']}" if message else response["Output"]
        raise AmiActionFailed(action, message or f"Response: {response.get('Response')}")
