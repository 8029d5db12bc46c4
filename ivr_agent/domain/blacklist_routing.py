"""What a blacklisted caller gets (handbook 六: malicious complainants go on a blacklist).

Two treatments, chosen by the operator (`hotline.blacklist_treatment`):

* ``flag``: the call queues as any other; the agent's screen pop shows the blacklist flag and
  its reason (domain/screenpop.py).
* ``leader``: the caller goes straight to the shift leaders' queue, so that a 值班班长 handles
  the call from the first word (the dialplan's [ivr-agent-blacklisted]; when no leader is logged
  in, the caller queues as usual, flagged). The disposition is ``blacklisted`` either way the
  call is routed there.

The PBX decides per call without asking the service: the service keeps one dialplan global per
blacklisted number, ``IVR_AGENT_BL_<digits>`` = ``leader`` (AMI Setvar without a Channel), and
clears it (empty value) when the entry is removed or the treatment is ``flag``. Only ASCII
digits go into the name: caller ID is caller-controlled text and the dialplan builds the same
name with ``FILTER(0-9,...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

VARIABLE_PREFIX: Final = "IVR_AGENT_BL_"
ROUTE_TO_LEADER: Final = "leader"
_DIGITS: Final = frozenset("0123456789")


class Treatment(StrEnum):
    FLAG = "flag"
    LEADER = "leader"


def variable_for(number: str) -> str | None:
    """The dialplan global for `number`, or None when it holds no digit at all."""
    digits = "".join(c for c in number if c in _DIGITS)
    return VARIABLE_PREFIX + digits if digits else None


def desired_globals(entries: Iterable[tuple[str, str]], treatment: Treatment) -> dict[str, str]:
    """Each known number's global: ``leader`` if an approved entry routes it, else ``''``.

    `entries` are (number, status) of every blacklist row; numbers that were rejected or
    removed get ``''`` so that a global set earlier (by this or a previous run) is cleared.
    """
    out: dict[str, str] = {}
    for number, status in entries:
        var = variable_for(number)
        if var is None:
            continue
        routed = status == "approved" and treatment is Treatment.LEADER
        if routed or var not in out:
            out[var] = ROUTE_TO_LEADER if routed else ""
    return out


def to_send(desired: Mapping[str, str], sent: Mapping[str, str]) -> dict[str, str]:
    """The Setvars still needed: globals whose value in Asterisk is not known to be right."""
    return {var: value for var, value in desired.items() if sent.get(var) != value}
