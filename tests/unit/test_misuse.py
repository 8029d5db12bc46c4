"""The hotline misuse rule: which dials are agents' outside calls, and which are private."""

from __future__ import annotations

import pytest

from ivr_agent.domain.events import DialBegin
from ivr_agent.domain.misuse import (
    AgentLines,
    OutboundCall,
    channel_device,
    dialed_number,
    interface_device,
    interface_extension,
    is_private,
    long_call_detail,
    number_forms,
    outbound_from_agent,
    private_call_detail,
)
from ivr_agent.domain.roster import Agent

LINES = AgentLines.of(
    [
        Agent("agent1", "Local/agent1@lab-agents/n", ("support",)),
        Agent("zhang", "PJSIP/1001", ("support",)),
    ]
)


@pytest.mark.parametrize(
    ("interface", "device", "extension"),
    [
        ("Local/agent1@lab-agents/n", "Local/agent1@lab-agents", "agent1"),
        ("Local/agent1@lab-agents/nm", "Local/agent1@lab-agents", "agent1"),
        ("PJSIP/1001", "PJSIP/1001", "1001"),
        ("SIP/2002", "SIP/2002", "2002"),
        ("PJSIP", "PJSIP", ""),
    ],
)
def test_interfaces_give_a_device_and_an_extension(
    interface: str, device: str, extension: str
) -> None:
    assert interface_device(interface) == device
    assert interface_extension(interface) == extension


@pytest.mark.parametrize(
    ("channel", "device"),
    [
        ("PJSIP/1001-0000002a", "PJSIP/1001"),
        ("Local/agent1@lab-agents-0000001f;1", "Local/agent1@lab-agents"),
        ("Local/agent1@lab-agents-0000001f;2", "Local/agent1@lab-agents"),
        ("PJSIP/trunk-a-000000ff", "PJSIP/trunk-a"),
        ("Local/agent1@lab-agents", "Local/agent1@lab-agents"),  # no suffix: "agents" is no id
        ("PJSIP/cafe-bad", "PJSIP/cafe-bad"),  # hex but not an 8-digit channel id
    ],
)
def test_channel_device(channel: str, device: str) -> None:
    assert channel_device(channel) == device


def test_agent_of_a_line_by_device_or_caller_id() -> None:
    assert LINES.agent_of("Local/agent1@lab-agents-0000001f;1", "") == "agent1"
    assert LINES.agent_of("PJSIP/1001-0000002a", "999") == "zhang"
    assert LINES.agent_of("PJSIP/trunk-0000002a", "1001") == "zhang"  # its caller ID
    assert LINES.agent_of("PJSIP/trunk-0000002a", "13800138000") is None
    assert LINES.agent_of("Local/s@lab-caller-talking-00000001;1", "") is None
    assert LINES.is_internal("1001")
    assert not LINES.is_internal("13912345678")


@pytest.mark.parametrize(
    ("exten", "dial_string", "number"),
    [
        ("13912345678", "13912345678@lab-pstn/n", "13912345678"),
        ("s", "trunk/sip:+8613912345678@carrier.example", "+8613912345678"),
        ("_X.", "PJSIP/13912345678@trunk", "13912345678"),
        ("+8613912345678", "", "+8613912345678"),
        ("s", "agent2@lab-agents/n", ""),
        ("12", "", ""),  # too short to be a number
    ],
)
def test_dialed_number(exten: str, dial_string: str, number: str) -> None:
    assert dialed_number(exten, dial_string) == number


def test_number_forms_cover_the_country_prefixes() -> None:
    forms = {"13912345678", "+8613912345678", "008613912345678", "8613912345678"}
    assert set(number_forms("13912345678")) == forms
    assert set(number_forms("+8613912345678")) == forms
    assert set(number_forms("008613912345678")) == forms
    assert set(number_forms("8613912345678")) == forms
    assert "01012345678" in number_forms("01012345678")
    assert number_forms("+86") == ("+86",)


def _dial(**kw: object) -> DialBegin:
    base: dict[str, object] = {
        "at": 100.0,
        "uniqueid": "1795000000.1",
        "linkedid": "1795000000.1",
        "channel": "Local/agent1@lab-agents-0000001f;1",
        "caller_number": "agent1",
        "exten": "13912345678",
        "dest_uniqueid": "1795000000.3",
        "dest_linkedid": "1795000000.1",
        "dest_channel": "Local/13912345678@lab-pstn-00000020;1",
        "dial_string": "13912345678@lab-pstn/n",
    }
    base.update(kw)
    return DialBegin(**base)  # type: ignore[arg-type]


def test_an_agent_line_dialing_out_is_an_outbound_call() -> None:
    got = outbound_from_agent(_dial(), "1795000000.1", LINES)
    assert got == OutboundCall(
        "1795000000.1", "agent1", "13912345678", "Local/agent1@lab-agents-0000001f;1", 100.0
    )


@pytest.mark.parametrize(
    "kw",
    [
        # A hotline call: the caller's leg (the call's first channel) dials an agent.
        {
            "channel": "Local/s@lab-caller-talking-00000001;1",
            "caller_number": "13800138000",
            "exten": "s",
            "dial_string": "agent1@lab-agents/n",
        },
        # An Originate's own dial: no calling channel.
        {"channel": "", "uniqueid": "", "linkedid": ""},
        # The agent's leg of someone else's call (not the call's first channel).
        {"uniqueid": "1795000000.2"},
        # An internal call to another agent's extension.
        {"exten": "1001", "dial_string": "PJSIP/1001"},
        # Nothing that looks like a number.
        {"exten": "s", "dial_string": "agent2@lab-agents/n"},
    ],
)
def test_other_dials_are_not_outbound_calls(kw: dict[str, object]) -> None:
    assert outbound_from_agent(_dial(**kw), "1795000000.1", LINES) is None


def test_a_call_back_is_work_anything_else_private() -> None:
    call = OutboundCall("1.1", "agent1", "13912345678", "PJSIP/1001-0000002a", 1.0)
    assert is_private(call, hotline_caller=False)
    assert not is_private(call, hotline_caller=True)
    assert private_call_detail(call) == "agent1 called 139****5678, not a hotline caller"
    assert long_call_detail(1900.4) == "1900 s"
