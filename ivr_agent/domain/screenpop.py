"""The screen pop an agent sees: pure, from the call, the caller's file and the phase."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ivr_agent.domain.calls import Call, CallState
from ivr_agent.domain.phrases import Key, Language, Phase, for_phase, phrase


class PopKind(enum.Enum):
    """What happened to the agent's call; the desk updates the pop for each."""

    RINGING = "ringing"  # AgentCalled: my phone rings
    RING_STOPPED = "ring_stopped"  # AgentRingNoAnswer / another agent answered
    ANSWERED = "answered"
    ON_HOLD = "on_hold"
    UNHOLD = "unhold"  # I take the caller off hold: "很抱歉让您久等了"
    ENDED = "ended"


_PHASE: Final[Mapping[PopKind, Phase]] = {
    PopKind.RINGING: Phase.RINGING,
    PopKind.RING_STOPPED: Phase.RINGING,
    PopKind.ANSWERED: Phase.ANSWERED,
    PopKind.ON_HOLD: Phase.ON_HOLD,
    PopKind.UNHOLD: Phase.ANSWERED,
    PopKind.ENDED: Phase.CLOSING,
}


@dataclass(frozen=True, slots=True)
class CallerFile:
    """What the service knows about the caller; all of it is about this caller only."""

    name: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()
    version: int = 0  # 0: no file yet
    history: tuple[Mapping[str, Any], ...] = ()  # previous calls: at, agent, disposition, dur.
    complaints: tuple[Mapping[str, Any], ...] = ()  # open ones
    callbacks: tuple[Mapping[str, Any], ...] = ()  # open ones
    blacklist: Mapping[str, Any] | None = None  # {status, reason} if proposed or approved
    extra: Mapping[str, Any] = field(default_factory=dict)


def kind_for(state: CallState, previous: CallState | None) -> PopKind:
    """The pop kind a call state change means for the agent on it."""
    if state is CallState.ENDED:
        return PopKind.ENDED
    if state is CallState.ON_HOLD:
        return PopKind.ON_HOLD
    if state is CallState.CONNECTED:
        return PopKind.UNHOLD if previous is CallState.ON_HOLD else PopKind.ANSWERED
    return PopKind.RING_STOPPED


def phrases(
    kind: PopKind, lang: Language, overrides: Mapping[Key, str] | None = None
) -> dict[str, list[dict[str, str]]]:
    """The phrases of the phase, plus the abuse and closing phrases that are always at hand."""
    now = list(for_phase(_PHASE[kind], lang, overrides))
    if kind is PopKind.UNHOLD:
        now.insert(0, phrase(Key.HOLD_RETURN, lang, overrides))
    return {
        "phase": [{"key": p.key.value, "text": p.text} for p in now],
        "abuse": [
            {"key": p.key.value, "text": p.text} for p in for_phase(Phase.ABUSE, lang, overrides)
        ],
        "closing": [
            {"key": p.key.value, "text": p.text} for p in for_phase(Phase.CLOSING, lang, overrides)
        ],
    }


def build(
    call: Call,
    kind: PopKind,
    caller: CallerFile,
    lang: Language,
    *,
    seq: int,
    overrides: Mapping[Key, str] | None = None,
) -> dict[str, Any]:
    """The `pop` frame for the agent on `call`. Only this caller's data goes in it."""
    listed = caller.blacklist
    return {
        "type": "pop",
        "seq": seq,
        "kind": kind.value,
        "call": {
            "call_id": call.call_id,
            "state": call.state.value,
            "caller_number": call.caller_number,
            "caller_name": call.caller_name,
            "queue": call.queue,
            "started_at": call.started_at,
            "answered_at": call.agent_connected_at,
            "ended_at": call.ended_at,
            "talk_time": call.talk_time,
            "disposition": call.disposition.value if call.state is CallState.ENDED else None,
        },
        "customer": {
            "name": caller.name,
            "notes": caller.notes,
            "tags": list(caller.tags),
            "version": caller.version,
        },
        "history": [dict(h) for h in caller.history],
        "complaints": [dict(c) for c in caller.complaints],
        "callbacks": [dict(c) for c in caller.callbacks],
        "blacklist": (
            {"status": str(listed.get("status", "")), "reason": str(listed.get("reason", ""))}
            if listed
            else None
        ),
        "phrases": phrases(kind, lang, overrides),
    }


def strip_numbers(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows for an agent's eyes: never a phone number field."""
    return [{k: v for k, v in r.items() if "number" not in k} for r in rows]
