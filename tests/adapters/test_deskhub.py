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
    first = hub.subscribe("agent1", "en", "x")
    hub.publish("agent1", _frame(0))
    hub.unsubscribe(first)  # the desk's link drops ...
    for n in (1, 2):
        hub.publish("agent1", _frame(n))  # ... while two pops go out
    conn = hub.subscribe("agent1", "en", "x")
    assert hub.replay(conn, 1) == 2
    assert [json.loads(conn.queue.get_nowait())["seq"] for _ in range(2)] == [2, 3]
    conn.close("test")
    assert not conn.offer("x")
    hub.close_all("bye")
    await asyncio.sleep(0)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_frames_are_kept_only_for_a_desk_that_is_open_or_just_closed() -> None:
    clock = _Clock()
    hub = Hub(grace=60, clock=clock)
    assert hub.listening("agent1") == frozenset()  # never had a desk: nothing to render
    hub.publish("agent1", _frame(0))
    assert hub.kept_bytes == 0
    desk = hub.subscribe("agent1", "zh-CN", "x")
    assert hub.listening("agent1") == {"zh-CN"}
    hub.publish("agent1", _frame(1))
    kept = hub.kept_bytes
    assert kept > 0  # its own language only
    hub.unsubscribe(desk)
    clock.now += 59
    assert hub.listening("agent1") == {"zh-CN"}  # a reconnecting desk resumes
    hub.publish("agent1", _frame(2))
    assert hub.kept_bytes > kept
    clock.now += 2
    assert hub.listening("agent1") == frozenset()  # gone for longer than the grace: forgotten
    assert hub.kept_bytes == 0
    back = hub.subscribe("agent1", "zh-CN", "x")
    assert hub.replay(back, 0) == 0


async def test_kept_frames_are_bounded_per_agent_and_in_total() -> None:
    hub = Hub(keep_frames=4, keep_bytes=10_000)
    desks = [hub.subscribe(f"agent{i}", "en", "x") for i in range(10)]
    big = {"en": {"type": "pop", "pad": "x" * 900}}
    for _ in range(50):
        for i in range(10):
            hub.publish(f"agent{i}", {k: dict(v) for k, v in big.items()})
            desks[i].queue.get_nowait()
        assert hub.kept_bytes <= 10_000
        assert len(hub._order) <= 2 * sum(len(k) for k in hub._kept.values()) + 10
    assert hub.kept_bytes == sum(len(t) for k in hub._kept.values() for _, _, t in k)
    # The newest frames survive: each agent can still resume its last pop.
    for i, desk in enumerate(desks):
        assert hub.replay(desk, hub.seq - 10) == 1, i
    small = Hub(keep_frames=4)
    one = small.subscribe("agent1", "en", "x")
    for n in range(10):
        small.publish("agent1", _frame(n))
    assert small.replay(one, 0) == 4
