"""The lab's prompts: the hotline's own, plus what simulated callers and agents say."""

from __future__ import annotations

from ivr_agent.prompts import hotline_prompts, render_prompts, stale_prompts

__all__ = ["PROMPTS", "render_prompts", "stale_prompts"]

PROMPTS: dict[str, str] = {
    **hotline_prompts(),
    # What a simulated talking caller says: about 9 s, long enough for TALK_DETECT to fire.
    "talk": "你好,我的宽带从昨天晚上开始就上不了网,麻烦你帮我看一下。",
    # What a lab agent says on answering (the handbook's greeting).
    "agent-greeting": "您好!请问有什么可以帮到您?",
}
