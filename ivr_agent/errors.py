"""The exception hierarchy: callers catch by meaning, not by library."""

from __future__ import annotations

from typing import Any


class IvrAgentError(Exception):
    """Base class of every error this service raises on purpose."""


class ConfigError(IvrAgentError):
    """A config or roster file is wrong; the message names the file and the key."""


class LabError(IvrAgentError):
    """The lab PBX could not be provisioned, started or stopped."""


class AmiError(IvrAgentError):
    """Anything that went wrong talking to Asterisk over AMI."""


class AmiNotReady(AmiError):
    """Not connected, or connected but not logged in yet."""


class AmiTimeout(AmiError, TimeoutError):
    """No response within the deadline."""


class AmiDisconnected(AmiError):
    """The connection dropped while the action was in flight; it is never re-sent."""


class AmiActionFailed(AmiError):
    """Asterisk answered `Response: Error`."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class InvalidTransition(IvrAgentError):
    """A call event that the call's current state does not allow."""

    def __init__(self, call_id: str, state: Any, event: Any) -> None:
        super().__init__(f"call {call_id}: {type(event).__name__} not allowed in state {state}")
        self.call_id = call_id
        self.state = state
        self.event = event


class StorageError(IvrAgentError):
    """The database could not be opened, migrated or written."""


class RecordingNotFound(IvrAgentError):
    """No recording with that id, or its file is gone."""
