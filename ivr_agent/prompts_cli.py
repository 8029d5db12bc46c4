"""`ivr-agent prompts render --dir DIR`: the hotline's prompts from the handbook's phrases."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ivr_agent.prompts import PROMPTS, render_prompts, stale_prompts


def add_parser(sub: Any) -> None:
    prompts = sub.add_parser("prompts", help="the hotline's spoken prompts")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", metavar="CMD", required=True)
    render = prompts_sub.add_parser(
        "render", help="make the prompt files (espeak-ng Mandarin, 8 kHz WAV) that are missing"
    )
    render.add_argument(
        "--dir", type=Path, required=True, help="the dialplan's IVR_AGENT_SOUNDS folder"
    )
    render.add_argument("--check", action="store_true", help="only list what is missing")
    render.set_defaults(handler=_render)


def _render(args: argparse.Namespace) -> int:
    if args.check:
        stale = stale_prompts(args.dir, PROMPTS)
        for name in stale:
            print(f"missing or outdated: {args.dir / (name + '.wav')}")
        return 1 if stale else 0
    made = render_prompts(args.dir, PROMPTS)
    for name in PROMPTS:
        state = "rendered" if name in made else "kept"
        print(f"{state}: {args.dir / (name + '.wav')}  {PROMPTS[name]}")
    return 0
