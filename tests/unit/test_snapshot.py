"""Call snapshots (store/snapshot.py): a Call to JSON and back, and older snapshots."""

from __future__ import annotations

import json

import pytest

from ivr_agent.domain.calls import Call, CallState, Disposition
from ivr_agent.errors import StorageError
from ivr_agent.store.snapshot import call_from_json, call_to_json


def test_a_call_survives_the_round_trip() -> None:
    call = Call(
        call_id="1795000000.1", state=CallState.CONNECTED, started_at=1.5, updated_at=2.5,
        caller_number="13800138000", caller_name="张三丰", agent="agent1",
        channels=frozenset({"1795000000.1", "1795000000.2"}), hotline=True,
    )  # fmt: skip
    text = call_to_json(call)
    assert "张三丰" in text  # UTF-8 as is, not \\u escapes
    assert json.loads(text)["channels"] == ["1795000000.1", "1795000000.2"]  # sorted
    assert call_from_json(text) == call
    plain = Call(call_id="x", state=CallState.ENDED, started_at=1.0, updated_at=1.0)
    assert call_from_json(call_to_json(plain)).hotline is False


def test_a_snapshot_from_before_the_hotline_field_is_a_hotline_call() -> None:
    """That version took every call for a hotline call: an adopted one must not end up as
    not_hotline because the field is missing."""
    call = Call(
        call_id="1795000000.1", state=CallState.IVR, started_at=1.0, updated_at=2.0,
        answered_at=1.2,
    )  # fmt: skip
    old = json.loads(call_to_json(call))
    del old["hotline"]
    adopted = call_from_json(json.dumps(old))
    assert adopted.hotline
    assert adopted.disposition is Disposition.UNKNOWN  # not ended yet


def test_an_unreadable_snapshot_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="unreadable call snapshot"):
        call_from_json('{"state": "no-such-state"}')
