"""The Local-channel call simulator: the Originate it sends, its bounds, its accounting."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest

from ivr_agent.errors import AmiTimeout
from ivr_agent.lab.simulator import LocalCall, place_local_calls


class Sender:
    def __init__(self, fail_every: int = 0) -> None:
        self.sent: list[tuple[float, dict[str, str]]] = []
        self.fail_every = fail_every

    async def send(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> dict[str, str]:
        self.sent.append((time.monotonic(), dict(action)))
        if self.fail_every and len(self.sent) % self.fail_every == 0:
            raise AmiTimeout("Originate after 5s")
        return {"Response": "Success"}


def test_originate_shape() -> None:
    action = LocalCall("silent", "13800138000", "张三", "95000", 7).originate()
    assert action == {
        "Action": "Originate",
        "Channel": "Local/s@lab-caller-silent/n",
        "Context": "ivr-agent-hotline",
        "Exten": "95000",
        "Priority": "1",
        "CallerID": '"张三" <13800138000>',
        "Variable": "CALLER_WAIT=7",
        "Timeout": "15000",
    }


def test_caller_name_cannot_break_quoting() -> None:
    action = LocalCall("talking", "138", 'a"<b>\\\r\nc').originate()
    assert action["CallerID"] == '"abc" <138>'
    assert LocalCall("talking", "138", "").originate()["CallerID"] == "138"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (LocalCall("shouting", "1", "x"), "unknown scenario"),
        (LocalCall("talking", "1", "x", dialed="95000;x"), "dialed number must be digits"),
        (LocalCall("talking", "1x", "x"), "caller number must be digits"),
    ],
)
def test_bad_calls_are_refused(call: LocalCall, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        call.originate()


async def test_rate_and_count() -> None:
    sender = Sender()
    result = await place_local_calls(sender, LocalCall("talking", "1", "x"), count=5, rate=50)
    assert result.queued == 5
    assert result.failed == 0
    times = [t for t, _ in sender.sent]
    assert times[-1] - times[0] >= 4 / 50 * 0.8  # paced, not a burst


async def test_failures_are_counted_not_raised() -> None:
    sender = Sender(fail_every=2)
    result = await place_local_calls(sender, LocalCall("talking", "1", "x"), count=4, rate=100)
    assert (result.queued, result.failed) == (2, 2)
    assert "Originate after 5s" in result.errors[0]


async def test_time_bound_stops_early() -> None:
    sender = Sender()
    result = await place_local_calls(
        sender, LocalCall("talking", "1", "x"), count=100, rate=10, max_seconds=0.25
    )
    assert result.queued < 10
    assert any("stopped after" in e for e in result.errors)


@pytest.mark.parametrize(("count", "rate"), [(0, 1), (10_001, 1), (1, 0), (1, 1000)])
async def test_bounds(count: int, rate: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        await place_local_calls(Sender(), LocalCall("talking", "1", "x"), count=count, rate=rate)
