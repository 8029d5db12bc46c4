"""The lab's prompts: the hotline's own, plus what simulated callers and agents say."""

from __future__ import annotations

from pathlib import Path

from ivr_agent import prompts as hotline

PROMPTS: dict[str, str] = {
    **hotline.hotline_prompts(),
    # What a simulated talking caller says: about 9 s, long enough for TALK_DETECT to fire.
    "talk": "你好,我的宽带从昨天晚上开始就上不了网,麻烦你帮我看一下。",
    # What a lab agent says on answering (the handbook's greeting).
    "agent-greeting": "您好!请问有什么可以帮到您?",
}


def stale_prompts(sounds_dir: Path) -> list[str]:
    """The lab prompts (hotline + simulated callers and agents) whose wav is missing or stale."""
    return hotline.stale_prompts(sounds_dir, PROMPTS)


def render_prompts(sounds_dir: Path) -> list[str]:
    """Render every stale lab prompt; return their names."""
    return hotline.render_prompts(sounds_dir, PROMPTS)
