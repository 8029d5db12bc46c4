"""Pure parts of the SIPp caller: caller-id parsing, scenario rendering, arguments, stats."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr_agent.errors import LabError
from ivr_agent.lab import sipp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("张三 <13800138000>", ("张三", "13800138000")),
        ('"张三" <13800138000>', ("张三", "13800138000")),
        ("  王 小明  <+8613800138000> ", ("王 小明", "+8613800138000")),
        ("<13800138000>", ("", "13800138000")),
        ("13800138000", ("", "13800138000")),
    ],
)
def test_parse_caller_id(text: str, expected: tuple[str, str]) -> None:
    assert sipp.parse_caller_id(text) == expected


@pytest.mark.parametrize(
    "text",
    ["张三", "张三 <1380013800x>", "张三 <>", "a;b <123>", 'x"y <123>', "张三 <123> tail"],
)
def test_parse_caller_id_rejects(text: str) -> None:
    with pytest.raises(LabError):
        sipp.parse_caller_id(text)


def test_name_length_is_bounded() -> None:
    with pytest.raises(LabError, match="too long"):
        sipp.check_caller("123", "张" * 30)


def test_render_scenarios() -> None:
    for name in sipp.SCENARIOS:
        text = sipp.render_scenario(name, 6.5)
        assert 'timeout="6500"' in text
        assert "@HOLD_MS@" not in text
        assert '"[field1]" <sip:[field0]@' in text
    assert 'name="ivr-agent talking caller"' in sipp.render_scenario("talking", 1)
    assert 'name="ivr-agent silent caller"' in sipp.render_scenario("silent", 1)
    with pytest.raises(LabError, match="unknown SIPp scenario"):
        sipp.render_scenario("shouting", 1)


def test_injection_file() -> None:
    assert sipp.injection_file("13800138000", "张三") == "SEQUENTIAL\n13800138000;张三;\n"


def test_sipp_args_are_bounded(tmp_path: Path) -> None:
    args = sipp.sipp_args(
        tmp_path / "s.xml",
        tmp_path / "c.csv",
        tmp_path / "st.csv",
        "95000",
        3,
        2.0,
        5070,
        30000,
        60,
    )
    joined = " ".join(args)
    assert args[:2] == ["sipp", "127.0.0.1:5060"]
    for flag in ("-m 3", "-l 3", "-r 2", "-timeout 60s", "-timeout_error", "-nostdin", "-s 95000"):
        assert flag in joined
    assert "-p 5070" in joined
    assert "-mp 30000" in joined


def test_parse_stats(tmp_path: Path) -> None:
    stats = tmp_path / "stats.csv"
    stats.write_text(
        "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n"
        "x;0;0;0;0;\n"
        "y;2;2;1;1;\n",
        encoding="utf-8",
    )
    assert sipp.parse_stats(stats) == (2, 1)
    assert sipp.parse_stats(tmp_path / "missing.csv") == (0, 0)


async def test_place_sip_calls_checks_bounds_before_running(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="bounds"):
        await sipp.place_sip_calls(tmp_path, "talking", count=100_000)
    with pytest.raises(LabError, match="unknown SIPp scenario"):
        await sipp.place_sip_calls(tmp_path, "shouting")
    assert not (tmp_path / "sipp").exists()


def test_sip_agent_script_renders_every_step_and_checks_bounds() -> None:
    from ivr_agent.lab.sipp_agent import AgentScript

    text = AgentScript(ring_s=1.5, talk_s=2, hold_s=3, after_s=0).render()
    assert "_MS@" not in text  # every placeholder filled
    assert '<pause milliseconds="1500"/>' in text
    assert '<pause milliseconds="3000"/>' in text
    assert '<pause milliseconds="1"/>' in text  # 0 s: SIPp needs a positive pause
    body = text.split("-->", 1)[1]  # past the comment, which names them too
    assert body.count("a=sendonly") == 1  # HOLD once, then back to sendrecv
    with pytest.raises(LabError, match="hold time"):
        AgentScript(hold_s=-1).render()
