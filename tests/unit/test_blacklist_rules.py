"""The blacklist treatment rule: which dialplan globals route which callers."""

from __future__ import annotations

from ivr_agent.domain.blacklist_routing import (
    Treatment,
    desired_globals,
    to_send,
    variable_for,
)


def test_the_global_name_holds_only_the_digits_of_the_number() -> None:
    assert variable_for("13800138000") == "IVR_AGENT_BL_13800138000"
    assert variable_for("+86 138-0013-8000") == "IVR_AGENT_BL_8613800138000"
    assert variable_for("${SHELL(rm)}}") is None  # caller-controlled text never reaches a name
    assert variable_for("１２３") is None  # full-width digits are not the dialplan's FILTER(0-9)


def test_leader_treatment_routes_only_approved_entries() -> None:
    entries = [
        ("13800000001", "approved"),
        ("13800000002", "pending"),
        ("13800000003", "rejected"),
        ("13800000004", "removed"),
    ]
    assert desired_globals(entries, Treatment.LEADER) == {
        "IVR_AGENT_BL_13800000001": "leader",
        "IVR_AGENT_BL_13800000002": "",
        "IVR_AGENT_BL_13800000003": "",
        "IVR_AGENT_BL_13800000004": "",
    }


def test_flag_treatment_clears_every_global() -> None:
    entries = [("13800000001", "approved"), ("13800000002", "removed")]
    assert set(desired_globals(entries, Treatment.FLAG).values()) == {""}


def test_an_approved_entry_wins_over_an_older_removed_one_of_the_same_number() -> None:
    removed_then_approved = [("13800000001", "removed"), ("13800000001", "approved")]
    approved_then_removed = [("13800000001", "approved"), ("13800000001", "removed")]
    var = "IVR_AGENT_BL_13800000001"
    assert desired_globals(removed_then_approved, Treatment.LEADER) == {var: "leader"}
    # A number with a still-approved entry stays routed even if a later entry was removed: the
    # store allows one pending/approved entry per number, so this only happens by hand.
    assert desired_globals(approved_then_removed, Treatment.LEADER) == {var: "leader"}


def test_only_what_asterisk_does_not_hold_yet_is_sent() -> None:
    desired = {"A": "leader", "B": "", "C": "leader"}
    assert to_send(desired, {"A": "leader", "B": "leader"}) == {"B": "", "C": "leader"}
    assert to_send(desired, desired) == {}
