"""A SIP phone on an agent's desk, played by SIPp (scenario sipp/agent.xml): it takes one call
to the lab's PJSIP endpoint `agent-sip` (contact 127.0.0.1:5071), answers, presses HOLD and
takes the caller back like a desk phone does (re-INVITEs), then hangs up. The lab's other
agents are Local channels, which cannot put a caller on hold.

    async with SipAgent(lab_dir, AgentScript(talk_s=2, hold_s=2)) as phone:
        ...  # QueueAdd PJSIP/agent-sip, place a call
        result = await phone.finished(within=30)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

import structlog

from ivr_agent.errors import LabError
from ivr_agent.lab import host, render
from ivr_agent.lab.sipp import SippResult, free_media_port, parse_stats

log = structlog.get_logger()

AGENT_PORT: Final = 5071  # dialplan/lab/pjsip.conf: [agent-sip] contact
AGENT_INTERFACE: Final = "PJSIP/agent-sip"
SCENARIO_FILE: Final = Path(__file__).resolve().parent / "sipp" / "agent.xml"


@dataclass(frozen=True, slots=True)
class AgentScript:
    """Seconds of each step of the one call the phone takes."""

    ring_s: float = 0.5
    talk_s: float = 2.0
    hold_s: float = 2.0
    after_s: float = 2.0

    def render(self) -> str:
        steps = {"RING": self.ring_s, "TALK": self.talk_s, "HOLD": self.hold_s}
        steps["AFTER"] = self.after_s
        text = SCENARIO_FILE.read_text(encoding="utf-8")
        for name, seconds in steps.items():
            if not 0 <= seconds <= 600:
                raise LabError(f"SIP agent {name.lower()} time must be 0..600 s, got {seconds}")
            text = text.replace(f"@{name}_MS@", str(max(1, int(seconds * 1000))))
        return text

    @property
    def total_s(self) -> float:
        return self.ring_s + self.talk_s + self.hold_s + self.after_s


def agent_args(scenario_file: Path, stats_file: Path, media_port: int, timeout_s: int) -> list[str]:
    return [
        "sipp",
        "-sf", str(scenario_file),
        "-i", render.AMI_HOST,
        "-p", str(AGENT_PORT),
        "-mi", render.AMI_HOST,
        "-mp", str(media_port),
        "-m", "1",
        "-timeout", f"{timeout_s}s",
        "-timeout_error",
        "-trace_stat", "-stf", str(stats_file),
        "-trace_err",
        "-nostdin",
    ]  # fmt: skip


class SipAgent:
    """The phone's SIPp process: listening from `__aenter__`, never left behind by `__aexit__`."""

    def __init__(self, lab_dir: Path, script: AgentScript, *, wait_for_call_s: float = 60) -> None:
        self._lab_dir = Path(lab_dir).resolve()
        self._script = script
        self._timeout_s = int(wait_for_call_s + script.total_s + 15)
        self._proc: asyncio.subprocess.Process | None = None
        self._started = 0.0
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-agent-{random.randrange(1 << 32):08x}"  # noqa: S311
        self.workdir = self._lab_dir / "sipp" / run_id

    async def __aenter__(self) -> SipAgent:
        host.require_tools("sipp")
        self.workdir.mkdir(parents=True)
        scenario = self.workdir / "agent.xml"
        scenario.write_text(self._script.render(), encoding="utf-8")
        args = agent_args(scenario, self.workdir / "stats.csv", free_media_port(), self._timeout_s)
        out = (self.workdir / "sipp.log").open("wb")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *args, cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        finally:
            out.close()
        self._started = time.monotonic()
        await asyncio.sleep(0.3)  # SIPp binds its port before it reads anything
        if self._proc.returncode is not None:
            raise LabError(
                f"the SIP agent exited at once (port {AGENT_PORT} busy?): {self._tail()}"
            )
        log.info("lab_sip_agent_listening", port=AGENT_PORT, workdir=str(self.workdir))
        return self

    async def finished(self, within: float) -> SippResult:
        """Wait until the phone's call is over; its result (ok: the whole script ran)."""
        proc = self._proc
        if proc is None:
            raise LabError("the SIP agent was not started")
        try:
            async with asyncio.timeout(within):
                rc = await proc.wait()
        except TimeoutError:
            raise LabError(
                f"the SIP agent's call did not end within {within}s: {self._tail()}"
            ) from None
        successful, failed = parse_stats(self.workdir / "stats.csv")
        return SippResult(
            scenario="agent",
            returncode=rc,
            calls_total=1,
            successful=successful,
            failed=failed,
            seconds=round(time.monotonic() - self._started, 2),
            workdir=self.workdir,
            log_tail=self._tail(),
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(proc.wait(), 10)

    def _tail(self) -> str:
        parts = [host.tail(p, 10) for p in sorted(self.workdir.glob("*_errors.log"))]
        return "\n".join(parts) if parts else host.tail(self.workdir / "sipp.log", 10)
