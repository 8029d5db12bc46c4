"""structlog setup: JSON lines off a TTY, a console on one; caller numbers masked, secrets dropped.

Nothing else in the project configures logging.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Fields that hold a subscriber's number. Masked at INFO and above; kept whole at DEBUG.
NUMBER_FIELDS = frozenset(
    {"caller_number", "caller", "callerid", "number", "connected_number", "dialed_number"}
)
# Fields that must never reach a log line, whatever the level.
SECRET_FIELDS = frozenset({"secret", "password", "session_key", "token", "api_key"})

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def mask_number(number: str) -> str:
    """138****8000 for a mobile number; short numbers keep only their last two digits."""
    digits = number.strip()
    if len(digits) >= 8:
        return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
    if len(digits) > 2:
        return "*" * (len(digits) - 2) + digits[-2:]
    return digits


def mask_processor(
    _logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask subscriber numbers above DEBUG and drop secrets always."""
    for key in SECRET_FIELDS & event_dict.keys():
        event_dict[key] = "***"
    if method_name != "debug":
        for key in NUMBER_FIELDS & event_dict.keys():
            value = event_dict[key]
            if isinstance(value, str) and value:
                event_dict[key] = mask_number(value)
    return event_dict


def configure(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *, cache: bool = False
) -> None:
    """Configure structlog for the process. `fmt` is auto|json|console.

    `cache=True` (the long-running service) freezes each logger on first use: faster, but a
    later configure() no longer reaches it, so short-lived commands and tests leave it off.
    """
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            mask_processor,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=cache,
    )
