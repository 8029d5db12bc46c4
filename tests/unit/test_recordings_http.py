"""The pure parts of the recordings web side: Range parsing, password hashes, the sign-in limiter,
the zh-CN/en dictionary."""

from __future__ import annotations

import pytest

from ivr_agent.web.i18n import MESSAGES, messages, pick_language
from ivr_agent.web.limits import LoginLimiter
from ivr_agent.web.passwords import (
    dummy_hash,
    hash_password,
    password_problem,
    verify_password,
)
from ivr_agent.web.ranges import RangeNotSatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (None, None),
        ("", None),
        ("bytes=0-", (0, 999)),
        ("bytes=0-0", (0, 0)),
        ("bytes=500-", (500, 999)),
        ("bytes=500-599", (500, 599)),
        ("bytes=900-5000", (900, 999)),  # clamped to the end
        ("bytes=-100", (900, 999)),  # the last 100 bytes
        ("bytes=-5000", (0, 999)),
        ("BYTES = 10-19", (10, 19)),
        ("items=0-5", None),  # unknown unit: ignored
        ("bytes=0-5,10-20", None),  # multi-range: the whole file
        ("bytes=5-1", None),  # invalid: ignored
        ("bytes=abc-", None),
        ("bytes=-", None),
        ("bytes=5", None),
    ],
)
def test_parse_range(header: str | None, want: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == want


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 10), ("bytes=-5", 0)]
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_password_hash_round_trip_and_salt() -> None:
    a, b = hash_password("correct horse", n=2**10), hash_password("correct horse", n=2**10)
    assert a != b  # per-user random salt
    assert a.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse", a)
    assert not verify_password("correct hors", a)
    assert "correct" not in a


@pytest.mark.parametrize(
    "stored", ["", "md5$x", "scrypt$1$2$3", "scrypt$16384$8$1$!!$!!", "bcrypt$1$1$1$AA==$AA=="]
)
def test_malformed_hashes_never_verify(stored: str) -> None:
    assert not verify_password("x", stored)


def test_dummy_hash_is_a_real_hash_nobody_knows() -> None:
    assert dummy_hash().startswith("scrypt$")
    assert not verify_password("", dummy_hash())


def test_password_rules() -> None:
    assert password_problem("short") is not None
    assert password_problem(" padded-password ") is not None
    assert password_problem("long enough") is None


def test_limiter_blocks_after_five_failures_per_key_for_the_window() -> None:
    lim = LoginLimiter(max_failures=5, window=300)
    keys = ("user:a", "ip:1.2.3.4")
    for i in range(4):
        lim.failed(keys, 100.0 + i)
        assert lim.blocked(keys, 100.0 + i) is None
    lim.failed(keys, 104.0)
    assert lim.blocked(keys, 105.0) == pytest.approx(295.0)
    assert lim.blocked(("user:b", "ip:1.2.3.4"), 105.0) is not None  # same address
    assert lim.blocked(("user:b", "ip:5.6.7.8"), 105.0) is None
    assert lim.blocked(keys, 400.1) is None  # the window slid past the failures


def test_limiter_reset_on_success() -> None:
    lim = LoginLimiter(max_failures=2, window=60)
    lim.failed(["user:a"], 0.0)
    lim.failed(["user:a"], 1.0)
    assert lim.blocked(["user:a"], 2.0) is not None
    lim.reset("user:a")
    assert lim.blocked(["user:a"], 2.0) is None


def test_limiter_memory_is_bounded() -> None:
    lim = LoginLimiter()
    for i in range(10_050):
        lim.failed([f"ip:{i}"], 0.0)
    assert len(lim._failures) == 10_000


def test_both_languages_have_every_key() -> None:
    assert set(MESSAGES["zh-CN"]) == set(MESSAGES["en"])
    assert all(v.strip() for lang in MESSAGES.values() for v in lang.values())


def test_language_choice() -> None:
    assert pick_language(None, None, "zh-CN") == "zh-CN"
    assert pick_language("en", None, "zh-CN") == "en"
    assert pick_language(None, "en", "zh-CN") == "en"
    assert pick_language("fr", "xx", "en") == "en"
    assert pick_language(None, None, "fr") == "zh-CN"
    assert messages("fr") is MESSAGES["zh-CN"]
    assert messages("en")["play"] == "Play"
