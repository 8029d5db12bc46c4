"""Recording rules: ids, safe names, the integrity verdict, retention, evidence validation."""

from __future__ import annotations

import pytest

from ivr_agent.domain.recordings import (
    SECONDS_PER_DAY,
    CallFacts,
    EvidenceKind,
    InvalidEvidence,
    Measured,
    RecordingStatus,
    evidence_flag,
    expired,
    file_name,
    judge,
    parse_file_name,
    recording_id_for,
    retention_cutoff,
    valid_recording_id,
)

S = RecordingStatus


def test_recording_id_is_stable_hex_and_distinct() -> None:
    a = recording_id_for("1795637726.0")
    assert a == recording_id_for("1795637726.0")
    assert a != recording_id_for("1795637726.4")
    assert valid_recording_id(a)
    assert len(a) == 16


@pytest.mark.parametrize(
    "text",
    ["", "../etc/passwd", "/etc/passwd", "%2e%2e%2f", "ABCDEF0123456789", "0123456789abcdef0"],
)
def test_invalid_recording_ids(text: str) -> None:
    assert not valid_recording_id(text)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("1795637726.0.wav", ("1795637726.0", "wav")),
        ("1795637726.12.ogg", ("1795637726.12", "ogg")),
        ("pbx-1-1795637726.12.wav", ("pbx-1-1795637726.12", "wav")),
        ("../1795637726.0.wav", None),
        ("/tmp/1795637726.0.wav", None),
        (".1795637726.0.wav", None),
        ("1795637726.0.wav/x", None),
        ("1795637726.0.mp3", None),
        ("1795637726.0", None),
        ("张三.wav", None),
        ("a b.wav", None),
        ("..wav", None),
    ],
)
def test_parse_file_name(name: str, parsed: tuple[str, str] | None) -> None:
    assert parse_file_name(name) == parsed


def test_file_name_refuses_unsafe_call_ids() -> None:
    assert file_name("1795637726.0", "wav") == "1795637726.0.wav"
    assert file_name("../x", "wav") is None
    assert file_name("1795637726.0", "exe") is None


def facts(**kw: object) -> CallFacts:
    base: dict[str, object] = {"call_id": "1.1", "started_at": 100.0}
    base.update(kw)
    return CallFacts(**base)  # type: ignore[arg-type]


def test_span_prefers_the_recording_start_and_needs_a_whole_call() -> None:
    assert facts(answered_at=101.0, recording_started_at=101.2, ended_at=111.2).span == 10.0
    assert facts(answered_at=101.0, ended_at=111.0).span == 10.0
    assert facts(answered_at=101.0).span is None  # not ended
    assert facts(answered_at=101.0, ended_at=111.0, reconciled=True).span is None
    assert facts(ended_at=111.0).span is None  # never answered: nothing was recorded


def test_recording_start_falls_back_to_answer_then_start() -> None:
    assert facts(recording_started_at=102.0, answered_at=101.0).recording_start == 102.0
    assert facts(answered_at=101.0).recording_start == 101.0
    assert facts().recording_start == 100.0
    assert facts(answered_at=101.0).expects_recording
    assert not facts().expects_recording
    # An agent's own outbound call: answered, but no MixMonitor ever ran for it.
    assert not facts(answered_at=101.0, disposition="not_hotline").expects_recording
    assert facts(recording_started_at=101.0, disposition="not_hotline").expects_recording


def m(duration: float | None, *, size: int = 1000, finalised: bool = True) -> Measured:
    return Measured(size, "ab" * 32, duration, finalised, "" if duration is not None else "bad")


def test_judge_sound_recording() -> None:
    v = judge(m(10.1), 10.0, 0.5)
    assert (v.status, v.problem) == (S.COMPLETE, "")


def test_judge_flags_but_keeps_a_duration_far_from_the_call() -> None:
    v = judge(m(3.0), 10.0, 2.0)
    assert v.status is S.COMPLETE
    assert v.problem.startswith("duration_mismatch: 3.00 s of audio, call 10.00 s")


def test_judge_unknown_span_is_not_a_problem() -> None:
    assert judge(m(3.0), None, 0.0).problem == ""


def test_judge_missing_empty_unreadable_unfinished() -> None:
    assert judge(None, 10.0, 2.0).status is S.MISSING
    assert judge(m(0.0), 10.0, 2.0) == judge(m(0.0, size=44), 10.0, 2.0)
    assert judge(m(0.0), 10.0, 2.0).problem == "file_empty"
    assert judge(m(5.0, size=0), None, 2.0).status is S.FAILED
    bad = judge(m(None), 10.0, 2.0)
    assert (bad.status, bad.problem) == (S.FAILED, "unreadable: bad")
    both = judge(m(3.0, finalised=False), 10.0, 2.0)
    assert both.status is S.COMPLETE
    assert both.problem.startswith("not_finalised; duration_mismatch")


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("status", "evidence", "age_days", "days", "want"),
    [
        (S.COMPLETE, False, 181, 180, True),
        (S.COMPLETE, False, 179, 180, False),
        (S.MISSING, False, 181, 180, True),
        (S.FAILED, False, 181, 180, True),
        (S.COMPLETE, True, 1000, 180, False),  # evidence is never deleted
        (S.RECORDING, False, 1000, 180, False),
        (S.DELETED, False, 1000, 180, False),
        (S.COMPLETE, False, 1000, 0, False),  # 0: keep forever
    ],
)
def test_retention(status: S, evidence: bool, age_days: int, days: int, want: bool) -> None:
    started = NOW - age_days * SECONDS_PER_DAY
    assert expired(status, evidence, started, NOW, days) is want


def test_retention_cutoff() -> None:
    assert retention_cutoff(NOW, 1) == NOW - 86_400


def test_evidence_flag_validates() -> None:
    assert evidence_flag("threat", "  威胁要炸大楼 ") == (EvidenceKind.THREAT, "威胁要炸大楼")
    with pytest.raises(InvalidEvidence, match="unknown evidence kind"):
        evidence_flag("rude", "x")
    with pytest.raises(InvalidEvidence, match="needs a reason"):
        evidence_flag("abuse", "   ")
    with pytest.raises(InvalidEvidence, match="longer than"):
        evidence_flag("abuse", "x" * 2001)
