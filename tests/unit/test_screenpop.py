"""The screen pop payload, the privacy rules and the complaint procedure: pure code."""

from __future__ import annotations

import json

import pytest

from ivr_agent.domain import complaints as rules
from ivr_agent.domain import privacy
from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.phrases import Language
from ivr_agent.domain.screenpop import CallerFile, PopKind, build, kind_for, strip_numbers

CALL = Call(
    call_id="1.1", state=CallState.AGENT_RINGING, started_at=1.0, updated_at=1.0,
    caller_number="13800138000", caller_name="张三",
)  # fmt: skip


@pytest.mark.parametrize(
    ("state", "previous", "kind"),
    [
        (CallState.AGENT_RINGING, CallState.QUEUED, PopKind.RING_STOPPED),
        (CallState.CONNECTED, CallState.AGENT_RINGING, PopKind.ANSWERED),
        (CallState.ON_HOLD, CallState.CONNECTED, PopKind.ON_HOLD),
        (CallState.CONNECTED, CallState.ON_HOLD, PopKind.UNHOLD),
        (CallState.ENDED, CallState.CONNECTED, PopKind.ENDED),
    ],
)
def test_kind_for(state: CallState, previous: CallState, kind: PopKind) -> None:
    assert kind_for(state, previous) is kind


def test_ringing_pop_has_the_caller_and_the_greeting() -> None:
    caller = CallerFile(
        name="张三", tags=("VIP",), version=3,
        history=({"at": "2026-01-01", "agent": "agent2", "disposition": "answered"},),
        blacklist={"status": "approved", "reason": "骚扰", "number": "x"},
    )  # fmt: skip
    pop = build(CALL, PopKind.RINGING, caller, Language.ZH_CN, seq=7)
    assert pop["seq"] == 7
    assert pop["call"]["caller_name"] == "张三"
    assert pop["customer"] == {"name": "张三", "notes": "", "tags": ["VIP"], "version": 3}
    assert pop["blacklist"] == {"status": "approved", "reason": "骚扰"}
    assert pop["phrases"]["phase"][0]["text"] == "您好!请问有什么可以帮到您?"
    assert pop["phrases"]["closing"][-1]["key"] == "closing"
    assert pop["call"]["disposition"] is None
    json.dumps(pop)  # it goes over the wire as is


def test_unhold_leads_with_sorry_to_keep_you_waiting() -> None:
    pop = build(CALL, PopKind.UNHOLD, CallerFile(), Language.ZH_CN, seq=1)
    assert pop["phrases"]["phase"][0]["text"] == "很抱歉让您久等了。"
    en = build(CALL, PopKind.ON_HOLD, CallerFile(), Language.EN, seq=1)
    assert en["phrases"]["phase"][0]["text"] == "Sorry to have kept you waiting."
    assert en["blacklist"] is None


def test_ended_pop_has_the_disposition_and_closing() -> None:
    ended = Call(call_id="1.1", state=CallState.ENDED, started_at=1.0, updated_at=2.0)
    pop = build(ended, PopKind.ENDED, CallerFile(), Language.ZH_CN, seq=1)
    assert pop["call"]["disposition"] == "unknown"
    assert [p["key"] for p in pop["phrases"]["phase"]] == [
        "anything_else",
        "free_the_line",
        "closing",
    ]


def test_strip_numbers() -> None:
    assert strip_numbers([{"caller_number": "1", "agent": "a"}]) == [{"agent": "a"}]


@pytest.mark.parametrize(
    ("number", "masked"),
    [("13800138000", "138****8000"), ("12345", "***45"), ("12", "**"), ("", "")],
)
def test_mask_number(number: str, masked: str) -> None:
    assert privacy.mask_number(number) == masked


def test_who_may_see_a_call() -> None:
    assert privacy.may_see_call("agent1", "agent1", None, 100.0)
    assert privacy.may_see_call("agent1", "agent1", 100.0, 100.0 + privacy.RECENT_SECONDS)
    assert not privacy.may_see_call("agent1", "agent1", 0.0, 1.0 + privacy.RECENT_SECONDS)
    assert not privacy.may_see_call("agent2", "agent1", None, 100.0)
    assert not privacy.may_see_call("", "", None, 100.0)
    seen = [
        privacy.Assignment("a", "1", None),
        privacy.Assignment("b", "2", 0.0),
        privacy.Assignment("c", "", None),
    ]
    assert privacy.visible_numbers(seen, privacy.RECENT_SECONDS + 1) == {"1"}


def test_complaint_steps_and_status() -> None:
    steps = ("说了什么", "", "", "", "")
    assert rules.check_steps(steps) == steps
    assert rules.initial_status(steps, wants_callback=True) is rules.Status.AWAITING_CALLBACK
    assert rules.initial_status(steps, wants_callback=False) is rules.Status.OPEN
    assert rules.initial_status(("a", "b", "c", "", ""), False) is rules.Status.IN_PROGRESS
    for bad in (("a",) * 4, ("",) * 5, ("x" * (rules.MAX_TEXT + 1),) + ("",) * 4):
        with pytest.raises(rules.ComplaintError):
            rules.check_steps(bad)
    s = rules.Status
    assert rules.change_status(s.OPEN, s.OPEN) is s.OPEN
    assert rules.change_status(s.AWAITING_CALLBACK, s.RESOLVED) is s.RESOLVED
    with pytest.raises(rules.ComplaintError):
        rules.change_status(s.CLOSED, s.OPEN)
