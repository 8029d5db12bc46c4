"""A domain Call to JSON and back, so a restarted service can adopt calls still in progress."""

from __future__ import annotations

import dataclasses
import enum
import json
import operator
from collections.abc import Callable
from typing import Any

from ivr_agent.domain.calls import Call, CallState, Disposition
from ivr_agent.errors import StorageError

_ENUMS: dict[str, type[enum.Enum]] = {"state": CallState, "disposition": Disposition}
_FIELDS = {f.name for f in dataclasses.fields(Call)}


# One encoder built once (json.dumps with arguments builds a new one per call): every call row
# of every flush goes through here.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


_Reader = tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]
_READERS: dict[type, _Reader] = {}


def _fields_of(cls: type) -> _Reader:
    """A dataclass's field names in order, and one attrgetter that reads them all (cached)."""
    found = _READERS.get(cls)
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        read = operator.attrgetter(*names)
        found = _READERS[cls] = (names, read if len(names) > 1 else lambda obj: (read(obj),))
    return found


def call_to_json(call: object) -> str:
    """Every field of the call; enums by value, frozensets as sorted lists."""
    names, read = _fields_of(type(call))
    out: dict[str, Any] = {}
    for name, value in zip(names, read(call), strict=True):
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
