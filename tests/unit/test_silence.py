"""The silent-line rule: who gets the prompt, when, and who never does."""

from __future__ import annotations

import dataclasses

import pytest

from ivr_agent.domain import silence as s
from ivr_agent.domain.silence import Phase, Signal, SilencePolicy

POLICY = SilencePolicy(agent_window=8.0)


def connected(at: float = 100.0, *, talking: bool = False) -> s.Watch:
    w = s.start("c1", 90.0, talking=talking)
    return s.apply(w, Signal.AGENT_CONNECTED, at)


def test_silent_caller_fires_at_window_end() -> None:
    w = connected()
    assert s.due_at(w, POLICY) == 108.0
    assert not s.is_silent(w, POLICY, 107.99)
    assert s.is_silent(w, POLICY, 108.0)


def test_speech_in_window_cancels_for_good() -> None:
    w = s.apply(connected(), Signal.TALK_START, 107.9)
    w = s.apply(w, Signal.TALK_STOP, 108.5)
    assert s.due_at(w, POLICY) is None
    assert not s.is_silent(w, POLICY, 500.0)


def test_caller_already_talking_at_connect_counts_as_speech() -> None:
    w = s.apply(s.start("c1", 90.0), Signal.TALK_START, 95.0)
    w = s.apply(w, Signal.AGENT_CONNECTED, 100.0)
    assert w.heard
    assert not s.is_silent(w, POLICY, 200.0)


def test_speech_before_connect_that_stopped_does_not_count() -> None:
    w = s.apply(s.start("c1", 90.0), Signal.TALK_START, 91.0)
    w = s.apply(w, Signal.TALK_STOP, 92.0)
    w = s.apply(w, Signal.AGENT_CONNECTED, 100.0)
    assert s.is_silent(w, POLICY, 108.0)


def test_no_ivr_window_by_default() -> None:
    w = s.start("c1", 90.0)
    assert s.due_at(w, POLICY) is None
    assert not s.is_silent(w, POLICY, 1e9)


def test_ivr_window_when_configured() -> None:
    policy = SilencePolicy(agent_window=8.0, ivr_window=15.0)
    w = s.start("c1", 90.0)
    assert s.due_at(w, policy) == 105.0
    assert s.is_silent(w, policy, 105.0)


def test_hold_suspends_and_unhold_restarts_a_full_window() -> None:
    w = s.apply(connected(), Signal.HOLD, 103.0)
    assert s.due_at(w, POLICY) is None
    assert not s.is_silent(w, POLICY, 200.0)
    w = s.apply(w, Signal.UNHOLD, 200.0)
    assert s.due_at(w, POLICY) == 208.0
    assert s.is_silent(w, POLICY, 208.0)


def test_connect_while_on_hold_opens_no_window() -> None:
    w = s.apply(s.start("c1", 90.0), Signal.HOLD, 95.0)
    w = s.apply(w, Signal.AGENT_CONNECTED, 100.0)
    assert w.phase is Phase.AGENT
    assert s.due_at(w, POLICY) is None


def test_gap_restarts_the_window_and_forgets_talk_state() -> None:
    w = s.apply(connected(), Signal.TALK_START, 101.0)  # heard...
    w = s.apply(w, Signal.GAP, 150.0)  # ...but a gap: we cannot know what happened since
    assert s.due_at(w, POLICY) == 158.0
    w2 = s.apply(s.apply(connected(), Signal.HOLD, 101.0), Signal.GAP, 150.0)
    assert s.due_at(w2, POLICY) is None  # still on hold after the gap


def test_talking_at_due_time_is_not_silent() -> None:
    w = s.apply(connected(), Signal.GAP, 100.0)
    w = dataclasses.replace(w, talking=True)
    assert not s.is_silent(w, POLICY, 200.0)


def test_fires_once_and_ended_calls_never_fire() -> None:
    w = s.fired(connected())
    assert s.due_at(w, POLICY) is None
    assert s.apply(w, Signal.UNHOLD, 300.0) == w
    assert s.apply(w, Signal.ENDED, 301.0).ended
    e = s.apply(connected(), Signal.ENDED, 104.0)
    assert s.due_at(e, POLICY) is None
    assert not s.is_silent(e, POLICY, 1e9)
    assert s.apply(e, Signal.TALK_START, 105.0) == e


@pytest.mark.parametrize(("agent", "ivr"), [(0.0, None), (-1.0, None), (8.0, 0.0)])
def test_bad_policy(agent: float, ivr: float | None) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        SilencePolicy(agent_window=agent, ivr_window=ivr)
