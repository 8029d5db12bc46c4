"""Hotline misuse (the handbook forbids long private calls on the hotline): a call placed from an
agent's line to a number that is not a hotline caller is a `private_call`.

Pure code. The glue feeds it every DialBegin of a call and the agents the roster knows; it asks
the store whether the number ever called the hotline, and raises the alert.

* "An agent's line": the channel that placed the call (the call's first channel, Uniqueid ==
  Linkedid) is on the device of an agent's interface (`PJSIP/1001-0000002a` on `PJSIP/1001`;
  `Local/agent1@lab-agents-0000001f;1` on `Local/agent1@lab-agents/n`), or its caller ID number
  is an agent's extension (`1001`, `agent1`: the interface's resource). In a hotline call the
  first channel is the caller's, and it dials agents, never the other way round.
* "The number": the calling channel's extension when it is a phone number (the dialplan matched
  what the agent dialed), else the first number in the dial string (`trunk/sip:139...@carrier`).
  Calls to an agent's extension (internal) are not private calls.
* "A hotline caller": a number seen as the caller number of a call, in any of its forms with or
  without the +86 / 0086 country prefix (`number_forms`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ivr_agent.domain.events import DialBegin
from ivr_agent.domain.privacy import mask_number
from ivr_agent.domain.roster import Agent

PRIVATE_CALL: Final = "private_call"
LONG_CALL: Final = "long_call"

_PHONE: Final = re.compile(r"\+?\d{3,20}")
_HEX: Final = frozenset(string.hexdigits)
_CHANNEL_SUFFIX: Final = 8  # Asterisk names channels <device>-%08x (Local adds ;1 / ;2)


def interface_device(interface: str) -> str:
    """The device of a queue interface: 'Local/agent1@lab-agents/n' -> 'Local/agent1@lab-agents'
    (a Local interface's /n, /m options dropped); 'PJSIP/1001' stays."""
    tech, _, resource = interface.partition("/")
    if tech.lower() == "local":
        resource = resource.split("/", 1)[0]
    return f"{tech}/{resource}" if resource else tech


def channel_device(channel: str) -> str:
    """The device a channel is on: 'PJSIP/1001-0000002a' -> 'PJSIP/1001',
    'Local/agent1@lab-agents-0000001f;1' -> 'Local/agent1@lab-agents'."""
    name = channel.split(";", 1)[0]
    base, sep, suffix = name.rpartition("-")
    if sep and len(suffix) >= _CHANNEL_SUFFIX and set(suffix) <= _HEX:
        return base
    return name


def interface_extension(interface: str) -> str:
    """The extension of an interface: 'PJSIP/1001' -> '1001', 'Local/agent1@lab-agents/n' ->
    'agent1' (what the line shows as its caller ID number)."""
    resource = interface_device(interface).partition("/")[2]
    return resource.split("@", 1)[0].split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class AgentLines:
    """The agents' lines: device -> agent name, extension -> agent name."""

    by_device: Mapping[str, str]
    by_extension: Mapping[str, str]

    @classmethod
    def of(cls, agents: Iterable[Agent]) -> AgentLines:
        devices: dict[str, str] = {}
        extensions: dict[str, str] = {}
        for agent in agents:
            devices[interface_device(agent.interface)] = agent.name
            ext = interface_extension(agent.interface)
            if ext:
                extensions[ext] = agent.name
        return cls(devices, extensions)

    def agent_of(self, channel: str, caller_number: str) -> str | None:
        """The agent whose line `channel` (with that caller ID number) is, if any."""
        agent = self.by_device.get(channel_device(channel))
        if agent is None and caller_number:
            agent = self.by_extension.get(caller_number)
        return agent

    def is_internal(self, number: str) -> bool:
        return number in self.by_extension


NO_LINES: Final = AgentLines({}, {})


def dialed_number(exten: str, dial_string: str) -> str:
    """The number an agent dialed (see the module docstring); '' when there is none."""
    if _PHONE.fullmatch(exten):
        return exten
    found = _PHONE.search(dial_string)
    return found.group(0) if found else ""


def number_forms(number: str) -> tuple[str, ...]:
    """`number` as dialed, nationally, and with each international prefix (sorted, unique)."""
    national = number
    if number.startswith("+86"):
        national = number[3:]
    elif number.startswith("0086"):
        national = number[4:]
    elif number.startswith("86") and len(number) == 13 and number[2] == "1":  # 86 + a mobile
        national = number[2:]
    if not national:
        return (number,)
    return tuple(sorted({number, national, f"+86{national}", f"0086{national}", f"86{national}"}))


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """A call an agent's line placed to an outside number."""

    call_id: str
    agent: str
    number: str
    channel: str
    at: float


def outbound_from_agent(event: DialBegin, call_id: str, lines: AgentLines) -> OutboundCall | None:
    """The outside call `event` (a DialBegin of call `call_id`) is, if an agent's line placed it.

    None for a dial by any other channel than the call's first (a hotline caller's Queue dialing
    agents; an Originate's own dial, which names no calling channel), from a line that is no
    agent's, or to no number or an agent's extension.
    """
    if not event.channel or event.uniqueid != call_id:
        return None
    agent = lines.agent_of(event.channel, event.caller_number)
    if agent is None:
        return None
    number = dialed_number(event.exten, event.dial_string)
    if not number or lines.is_internal(number):
        return None
    return OutboundCall(call_id, agent, number, event.channel, event.at)


def is_private(call: OutboundCall, hotline_caller: bool) -> bool:
    """A private call: to a number that never called the hotline (a call back is work)."""
    return not hotline_caller and bool(call.number)


def private_call_detail(call: OutboundCall) -> str:
    """The alert's text for supervisors (the number masked: the call record has it in full)."""
    return f"{call.agent} called {mask_number(call.number)}, not a hotline caller"


def long_call_detail(seconds: float) -> str:
    return f"{seconds:.0f} s"
