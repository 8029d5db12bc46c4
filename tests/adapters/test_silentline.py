"""The silent-line glue over real recorded calls: who gets the Redirect, when, and only once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import pytest

from ivr_agent.domain.callbook import CallBook, CallChange
from ivr_agent.domain.events import AgentConnect, ChannelTalkingStart, parse
from ivr_agent.domain.silence import SilencePolicy
from ivr_agent.errors import AmiActionFailed, AmiDisconnected
from ivr_agent.silentline import SilentLine
from tests.unit.transcript import load

POLICY = SilencePolicy(agent_window=8.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Sender:
    def __init__(self, error: Exception | None = None) -> None:
        self.actions: list[dict[str, str]] = []
        self.error = error

    async def send(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> dict[str, str]:
        self.actions.append(dict(action))
        if self.error is not None:
            raise self.error
        return {"Response": "Success", "Message": "Redirect successful"}


def feed(line: SilentLine, name: str, *, until: type | None = None) -> tuple[str, float]:
    """Apply a transcript up to (and including) the first `until` event; returns call id, at."""
    book = CallBook()
    last: CallChange | None = None
    for frame in load(name):
        event = parse(frame, 0.0)
        if event is None:
            continue
        change = book.apply(event)
        if change is None:
            continue
        line.observe(change)
        last = change
        if until is not None and isinstance(event, until):
            return change.call.call_id, event.at
    assert last is not None
    return last.call.call_id, last.call.updated_at


async def test_silent_caller_is_redirected_after_the_window() -> None:
    clock, sender = Clock(), Sender()
    line = SilentLine(sender, POLICY, clock=clock)
    cid, connected = feed(line, "real_silent_local", until=AgentConnect)
    clock.now = connected + 7.9
    await line._fire_due()
    assert sender.actions == []
    clock.now = connected + 8.0
    await line._fire_due()
    assert len(sender.actions) == 1
    action = sender.actions[0]
    assert action["Action"] == "Redirect"
    assert action["Context"] == "ivr-agent-silent-line"
    assert action["Channel"].startswith("Local/s@lab-caller-silent-")
    assert action["Channel"].endswith(";1")
    assert line.history[-1].ok
    assert line.history[-1].call_id == cid
    clock.now += 100
    await line._fire_due()
    assert len(sender.actions) == 1  # never twice


async def test_talking_caller_is_never_redirected() -> None:
    clock, sender = Clock(), Sender()
    line = SilentLine(sender, POLICY, clock=clock)
    # The caller speaks 18 ms after the agent is connected: inside the window.
    cid, spoke = feed(line, "real_talking_local", until=ChannelTalkingStart)
    watch = line.watching(cid)
    assert watch is not None
    assert watch.heard
    clock.now = spoke + 3600
    await line._fire_due()
    assert sender.actions == []


async def test_sip_caller_with_real_rtp_speech_is_never_redirected() -> None:
    clock, sender = Clock(), Sender()
    line = SilentLine(sender, POLICY, clock=clock)
    feed(line, "real_sip_zhangsanfeng", until=AgentConnect)
    clock.now = 1e12
    await line._fire_due()
    assert sender.actions == []


async def test_caller_hanging_up_in_the_window_is_forgotten() -> None:
    clock, sender = Clock(), Sender()
    line = SilentLine(sender, POLICY, clock=clock)
    cid, _ = feed(line, "real_silent_local")  # the whole call, to its hangup
    assert line.watching(cid) is None
    clock.now = 1e12
    await line._fire_due()
    assert sender.actions == []


async def test_run_loop_fires_on_its_own() -> None:
    clock, sender = Clock(), Sender()
    line = SilentLine(sender, SilencePolicy(agent_window=0.05), clock=clock)
    task = asyncio.create_task(line.run())
    try:
        _, connected = feed(line, "real_silent_local", until=AgentConnect)
        clock.now = connected + 0.06
        line._wake.set()
        async with asyncio.timeout(2):
            while not sender.actions:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sender.actions[0]["Action"] == "Redirect"


async def test_manual_trigger_and_its_errors() -> None:
    clock, sender = Clock(), Sender()
    line = SilentLine(sender, POLICY, clock=clock)
    cid, connected = feed(line, "real_talking_local", until=AgentConnect)
    clock.now = connected + 1
    done = await line.trigger(cid, "agent1")
    assert done.ok
    assert done.by == "agent1"
    with pytest.raises(AmiActionFailed, match="already played"):
        await line.trigger(cid, "agent1")
    with pytest.raises(AmiActionFailed, match="no live call"):
        await line.trigger("nope", "agent1")


async def test_disconnect_during_redirect_allows_a_later_retry_not_a_double() -> None:
    clock, sender = Clock(), Sender(AmiDisconnected("link dropped"))
    line = SilentLine(sender, POLICY, clock=clock)
    cid, connected = feed(line, "real_silent_local", until=AgentConnect)
    clock.now = connected + 8
    await line._fire_due()
    assert not line.history[-1].ok
    watch = line.watching(cid)
    assert watch is not None
    assert not watch.fired
    # After the reconnect, a fresh full window, then the prompt.
    sender.error = None
    clock.now = connected + 20
    line.gap()
    await line._fire_due()
    assert len(sender.actions) == 1
    clock.now = connected + 28
    await line._fire_due()
    assert len(sender.actions) == 2
    assert line.history[-1].ok


async def test_missing_prompt_is_flagged_and_the_call_still_moves(tmp_path: Path) -> None:
    clock, sender = Clock(), Sender()
    line = SilentLine(sender, POLICY, clock=clock, prompt_file=tmp_path / "silent-line.wav")
    _, connected = feed(line, "real_silent_local", until=AgentConnect)
    clock.now = connected + 8
    await line._fire_due()
    assert line.prompt_missing
    assert len(sender.actions) == 1


async def test_no_such_channel_is_reported_not_raised() -> None:
    clock, sender = Clock(), Sender(AmiActionFailed("Redirect", "No such channel"))
    line = SilentLine(sender, POLICY, clock=clock)
    _, connected = feed(line, "real_silent_local", until=AgentConnect)
    clock.now = connected + 8
    await line._fire_due()
    assert line.history[-1].error.endswith("No such channel")
