"""Integration fixtures: the real lab PBX, brought up once per session. Never skipped: if the lab
cannot come up, every test that needs it ERRORS with the lab's own message."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr_agent.lab.amiprobe import RawAmi
from ivr_agent.lab.pbx import Lab, LabInfo

REPO = Path(__file__).resolve().parents[2]


def lab_dir() -> Path:
    """IVR_AGENT_LAB_DIR, else <repo>/var/lab (independent of the current folder)."""
    return Path(os.environ.get("IVR_AGENT_LAB_DIR", "").strip() or REPO / "var" / "lab").resolve()


@pytest.fixture(scope="session")
def lab_control() -> Lab:
    """The Lab object, for tests that restart Asterisk or run CLI commands in it."""
    return Lab(lab_dir())


@pytest.fixture(scope="session")
def lab(lab_control: Lab) -> LabInfo:
    """The running lab (idempotent `lab up`; takes ~50 s the very first time, 0.3 s after)."""
    return lab_control.up()


@pytest.fixture
async def ami(lab: LabInfo) -> AsyncIterator[RawAmi]:
    """A raw AMI session logged in as the service's user (not the project's AMI adapter)."""
    async with await RawAmi.login(
        lab.ami_host, lab.ami_port, lab.ami_username, lab.ami_secret
    ) as session:
        yield session
