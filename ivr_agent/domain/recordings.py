"""Recording rules, pure: ids and safe file names, the integrity verdict, retention, evidence.

A call's recording is the file MixMonitor writes in the dialplan from the moment the hotline
answers: `<CALL_ID>.<format>` in the recordings root, CALL_ID being the caller leg's UNIQUEID
(never caller-controlled text). The service measures it when the call ends and judges it here.
No I/O, no clock: times are passed in.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from ivr_agent.errors import IvrAgentError

# File formats the dialplan may write (IVR_AGENT_REC_FORMAT) and what a browser is told.
CONTENT_TYPES: Final = {"wav": "audio/wav", "ogg": "audio/ogg"}
FORMATS: Final = tuple(CONTENT_TYPES)
_ID_RE: Final = re.compile(r"[0-9a-f]{16}")
# A recording file name: one path component, no leading dot, a known extension. Asterisk's
# UNIQUEID is `epoch.seq`, or `systemname-epoch.seq` when asterisk.conf sets systemname.
_NAME_RE: Final = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,63}(?:\.[0-9]{1,12})?)\.(wav|ogg)")
SECONDS_PER_DAY: Final = 86_400.0


class RecordingStatus(enum.Enum):
    RECORDING = "recording"  # MixMonitor is writing (the call is live)
    COMPLETE = "complete"  # finalised and measured (it may still carry a `problem`)
    MISSING = "missing"  # the call was answered but its file is not there
    FAILED = "failed"  # the file is there but empty or unreadable
    DELETED = "deleted"  # a tombstone: the retention job deleted the file


class EvidenceKind(enum.Enum):
    EXTORTION = "extortion"
    THREAT = "threat"
    ABUSE = "abuse"
    UNREASONABLE_DEMAND = "unreasonable_demand"
    COMPLAINT = "complaint"


class InvalidEvidence(IvrAgentError, ValueError):
    """An evidence flag without a known kind or without a reason."""


MAX_REASON: Final = 2000


def recording_id_for(call_id: str) -> str:
    """The recording's id: 16 hex digits derived from the call id (stable across restarts, so
    adopting a file twice cannot make two rows; never derived from or mapped to a path)."""
    return hashlib.blake2b(call_id.encode("utf-8"), digest_size=8).hexdigest()


def valid_recording_id(text: str) -> bool:
    return _ID_RE.fullmatch(text) is not None


def file_name(call_id: str, fmt: str) -> str | None:
    """`<call_id>.<fmt>` when that is a safe recording file name, else None."""
    name = f"{call_id}.{fmt}"
    return name if parse_file_name(name) else None


def parse_file_name(name: str) -> tuple[str, str] | None:
    """(call_id, format) of a safe recording file name; None for anything else, including
    paths (`/`, `..`), hidden files and unknown extensions."""
    m = _NAME_RE.fullmatch(name)
    return (m.group(1), m.group(2)) if m else None


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the recording rules need to know about the call (copied from the call record)."""

    call_id: str
    started_at: float
    answered_at: float | None = None
    recording_started_at: float | None = None  # MixMonitorStart seen
    ended_at: float | None = None
    reconciled: bool = False  # the service did not see the whole call: its times are partial
    caller_number: str = ""
    caller_name: str = ""
    agent: str = ""
    disposition: str = ""
    queue: str = ""

    @property
    def expects_recording(self) -> bool:
        """The hotline answered, so MixMonitor ran: a file must exist. Not for a call that never
        reached the hotline (an agent's outbound call): no MixMonitor runs for it."""
        if self.recording_started_at is not None:
            return True
        return self.answered_at is not None and self.disposition != "not_hotline"

    @property
    def recording_start(self) -> float:
        for at in (self.recording_started_at, self.answered_at):
            if at is not None:
                return at
        return self.started_at

    @property
    def span(self) -> float | None:
        """Seconds from the start of the recording to the hangup, when the service saw both."""
        if self.reconciled or self.ended_at is None or not self.expects_recording:
            return None
        return max(0.0, self.ended_at - self.recording_start)


@dataclass(frozen=True, slots=True)
class Measured:
    """What the file holds: from the adapter that read it."""

    size: int
    sha256: str
    duration: float | None  # None: not a readable recording
    finalised: bool  # the writer closed it (WAV sizes filled in, Ogg end-of-stream page)
    error: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    status: RecordingStatus
    problem: str  # '' when the recording is sound


def judge(measured: Measured | None, span: float | None, tolerance: float) -> Verdict:
    """The integrity verdict: missing, empty or unreadable files and durations far from the
    call's span are flagged, never silently accepted."""
    if measured is None:
        return Verdict(RecordingStatus.MISSING, "file_missing")
    if measured.duration is None:
        return Verdict(RecordingStatus.FAILED, f"unreadable: {measured.error}")
    if measured.size == 0 or measured.duration <= 0:
        return Verdict(RecordingStatus.FAILED, "file_empty")
    problems = []
    if not measured.finalised:
        problems.append("not_finalised")
    if span is not None and abs(measured.duration - span) > tolerance:
        problems.append(f"duration_mismatch: {measured.duration:.2f} s of audio, call {span:.2f} s")
    return Verdict(RecordingStatus.COMPLETE, "; ".join(problems))


def expired(
    status: RecordingStatus, evidence: bool, started_at: float, now: float, retention_days: int
) -> bool:
    """Whether the retention job deletes this recording now. Evidence never expires, nor does a
    recording still being written; retention_days 0 keeps everything."""
    if evidence or retention_days <= 0:
        return False
    if status in (RecordingStatus.RECORDING, RecordingStatus.DELETED):
        return False
    return started_at < retention_cutoff(now, retention_days)


def retention_cutoff(now: float, retention_days: int) -> float:
    """Recordings started before this instant are past retention."""
    return now - retention_days * SECONDS_PER_DAY


def evidence_flag(kind: str, reason: str) -> tuple[EvidenceKind, str]:
    """Validate an evidence flag: a known kind and a reason (why) that a reviewer can read."""
    try:
        k = EvidenceKind(kind)
    except ValueError:
        known = ", ".join(e.value for e in EvidenceKind)
        raise InvalidEvidence(f"unknown evidence kind {kind!r}; one of {known}") from None
    text = reason.strip()
    if not text:
        raise InvalidEvidence("an evidence flag needs a reason")
    if len(text) > MAX_REASON:
        raise InvalidEvidence(f"reason is longer than {MAX_REASON} characters")
    return k, text
