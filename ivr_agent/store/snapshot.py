"""A domain Call to JSON and back, so a restarted service can adopt calls still in progress."""

from __future__ import annotations

import dataclasses
import enum
import json
import operator
from collections.abc import Iterable
from typing import Any

from ivr_agent.domain.calls import Call, CallState, Disposition
from ivr_agent.errors import StorageError

_ENUMS: dict[str, type[enum.Enum]] = {"state": CallState, "disposition": Disposition}
_FIELDS = {f.name for f in dataclasses.fields(Call)}


# A Call's fields in order, read with one attrgetter; one encoder built once (json.dumps with
# arguments builds a new encoder per call). Every call row of every flush goes through here.
_NAMES = tuple(f.name for f in dataclasses.fields(Call))
_VALUES = operator.attrgetter(*_NAMES)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def call_to_json(call: object) -> str:
    """Every field of the call; enums by value, frozensets as sorted lists."""
    if type(call) is Call:
        pairs: Iterable[tuple[str, Any]] = zip(_NAMES, _VALUES(call), strict=True)
    else:  # another dataclass shaped like a Call (tests, older snapshots)
        pairs = ((f.name, getattr(call, f.name)) for f in dataclasses.fields(call))  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for name, value in pairs:
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, frozenset):
            value = sorted(value)
        out[name] = value
    return _ENCODE(out)


def call_from_json(text: str) -> Call:
    """Rebuild a Call; unknown keys (from a newer version) are ignored, missing ones default."""
    try:
        data = json.loads(text)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in _FIELDS:
                continue
            if key in _ENUMS:
                value = _ENUMS[key](value)
            elif isinstance(value, list):
                value = frozenset(value)
            kwargs[key] = value
        # Snapshots written before `hotline` existed: that version took every call for a
        # hotline call, and an adopted call must not turn into not_hotline on that account.
        kwargs.setdefault("hotline", "hotline" not in data)
        return Call(**kwargs)
    except (ValueError, TypeError, AttributeError) as err:
        raise StorageError(f"unreadable call snapshot: {err}") from err
