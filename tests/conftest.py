"""Shared fixtures: structlog reset, tmp database path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ivr-agent.db"
