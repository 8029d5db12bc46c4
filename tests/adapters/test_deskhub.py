"""The desk's fan-out: a slow desk is closed, the others keep getting their frames."""

from __future__ import annotations

import asyncio
import json

from ivr_agent.deskhub import QUEUE_FRAMES, Hub


def _frame(n: int) -> dict[str, dict[str, object]]:
    return {"zh-CN": {"type": "pop", "n": n}, "en": {"type": "pop", "n": n}}


async def test_slow_client_is_closed_and_does_not_delay_others() -> None:
    hub = Hub()
    stuck = hub.subscribe("agent1", "zh-CN", "10.0.0.1")
    live = hub.subscribe("agent1", "en", "10.0.0.2")
    other = hub.subscribe("agent2", "zh-CN", "10.0.0.3")
    got: list[str] = []
    for n in range(QUEUE_FRAMES + 5):
        hub.publish("agent1", _frame(n))
        got.append(live.queue.get_nowait())  # a desk that keeps up
    assert stuck.closed.is_set()
    assert stuck.reason == "slow"
    assert not live.closed.is_set()
    assert len(got) == QUEUE_FRAMES + 5
    assert json.loads(got[-1])["seq"] == QUEUE_FRAMES + 5
    assert other.queue.empty()  # frames go to their agent only
    assert hub.dropped == 5  # ... and stuck's overflow
    hub.unsubscribe(stuck)
    assert hub.connected() == 2


async def test_replay_after_reconnect() -> None:
    hub = Hub()
    for n in range(3):
        hub.publish("agent1", _frame(n))
    conn = hub.subscribe("agent1", "en", "x")
    assert hub.replay(conn, 1) == 2
    assert [json.loads(conn.queue.get_nowait())["seq"] for _ in range(2)] == [2, 3]
    conn.close("test")
    assert not conn.offer("x")
    hub.close_all("bye")
    await asyncio.sleep(0)
