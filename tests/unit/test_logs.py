"""Logging: caller numbers masked at INFO, kept at DEBUG, secrets never printed."""

from __future__ import annotations

import io
import json

import structlog

from ivr_agent import logs


def test_mask_number() -> None:
    assert logs.mask_number("13800138000") == "138****8000"
    assert logs.mask_number("95000") == "***00"
    assert logs.mask_number("1") == "1"


def test_json_lines_mask_numbers_and_drop_secrets() -> None:
    out = io.StringIO()
    logs.configure(level="debug", fmt="json", stream=out)
    log = structlog.get_logger()
    log.info("call_state_changed", call_id="1.2", caller_number="13800138000", secret="pw")
    log.debug("ami_frame", caller_number="13800138000")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "call_state_changed"
    assert first["caller_number"] == "138****8000"
    assert first["secret"] == "***"
    assert first["call_id"] == "1.2"
    assert "timestamp" in first
    assert second["caller_number"] == "13800138000"


def test_level_filters_debug() -> None:
    out = io.StringIO()
    logs.configure(level="info", fmt="json", stream=out)
    structlog.get_logger().debug("noise")
    assert out.getvalue() == ""


def test_chinese_is_not_escaped() -> None:
    out = io.StringIO()
    logs.configure(level="info", fmt="json", stream=out)
    structlog.get_logger().info("caller", caller_name="张三")
    assert "张三" in out.getvalue()
