"""SIP calls into the lab over its carrier-like PJSIP trunk, placed by SIPp (sip-tester).

Each run gets its own working folder under DIR/sipp (scenario, injection file, logs, stats), and is
bounded in count, rate and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import random
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from ivr_agent.errors import LabError
from ivr_agent.lab import host, render, rtp_pcap

log = structlog.get_logger()

# Loaded relative to this module until pyproject's package-data ships ivr_agent/lab/sipp/*.xml.
SCENARIO_FILE = Path(__file__).resolve().parent / "sipp" / "caller.xml"
# talking: 7 s of speech, then silence; silent: RTP silence only. Both send RTP until hangup.
SCENARIOS = ("talking", "silent")
MAX_CALLS = 2000
MAX_RATE = 50.0  # calls/s; the lab box handles ~100, keep headroom for the service under test
_NUMBER = re.compile(r"^\+?[0-9]{1,20}$")
_CALLER_ID = re.compile(r'^\s*(?:"(?P<q>[^"]*)"|(?P<n>[^<>"]*?))\s*<(?P<num>[^<>]*)>\s*$')


@dataclass(frozen=True, slots=True)
class SippResult:
    scenario: str
    returncode: int
    calls_total: int
    successful: int
    failed: int
    seconds: float
    workdir: Path
    log_tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.successful == self.calls_total


def parse_caller_id(text: str) -> tuple[str, str]:
    """`张三 <13800138000>` (or `"张三" <...>`, or a bare number) -> (name, number)."""
    match = _CALLER_ID.match(text)
    if match:
        name = (match.group("q") if match.group("q") is not None else match.group("n")) or ""
        number = match.group("num").strip()
    else:
        name, number = "", text.strip()
    check_caller(number, name.strip())
    return name.strip(), number


def check_caller(number: str, name: str) -> None:
    if not _NUMBER.match(number):
        raise LabError(f"caller number must be digits (optionally with a leading +): {number!r}")
    # The name goes into a quoted SIP display name and a CSV field: keep it plain text.
    if any(ch in name for ch in '"\\;<>') or any(ord(ch) < 32 for ch in name):
        raise LabError(f"caller name must not contain quotes, \\ ; < > or control chars: {name!r}")
    if len(name.encode("utf-8")) > 64:
        raise LabError(f"caller name is too long (max 64 bytes in UTF-8): {name!r}")


def render_scenario(scenario: str, hold_s: float) -> str:
    if scenario not in SCENARIOS:
        raise LabError(f"unknown SIPp scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    text = SCENARIO_FILE.read_text(encoding="utf-8").replace("@NAME@", scenario)
    return text.replace("@HOLD_MS@", str(max(1, int(hold_s * 1000))))


def injection_file(caller_number: str, caller_name: str) -> str:
    """SIPp -inf: every call reads the one line ([field0]=number, [field1]=name)."""
    return f"SEQUENTIAL\n{caller_number};{caller_name};\n"


def sipp_args(
    scenario_file: Path,
    inf_file: Path,
    stats_file: Path,
    dialed: str,
    count: int,
    rate: float,
    sip_port: int,
    media_port: int,
    timeout_s: int,
) -> list[str]:
    return [
        "sipp",
        f"{render.AMI_HOST}:{render.SIP_PORT}",
        "-sf", str(scenario_file),
        "-inf", str(inf_file),
        "-s", dialed,
        "-i", render.AMI_HOST,
        "-p", str(sip_port),
        "-mi", render.AMI_HOST,
        "-mp", str(media_port),
        "-m", str(count),
        "-l", str(count),
        "-r", f"{rate:g}",
        "-rp", "1000",
        "-recv_timeout", "30000",
        "-timeout", f"{timeout_s}s",
        "-timeout_error",
        "-trace_stat", "-stf", str(stats_file),
        "-trace_err",
        "-nostdin",
    ]  # fmt: skip


def parse_stats(stats_file: Path) -> tuple[int, int]:
    """(successful, failed) from the last row of SIPp's -trace_stat CSV."""
    try:
        with stats_file.open(encoding="utf-8") as stats:
            rows = list(csv.DictReader(stats, delimiter=";"))
    except OSError:
        return 0, 0
    if not rows:
        return 0, 0
    last = rows[-1]
    return int(last.get("SuccessfulCall(C)") or 0), int(last.get("FailedCall(C)") or 0)


async def place_sip_calls(
    lab_dir: Path,
    scenario: str,
    caller_number: str = "13800138000",
    caller_name: str = "张三",
    dialed: str = "95000",
    count: int = 1,
    rate: float = 1.0,
    hold_s: float = 10.0,
) -> SippResult:
    """Place `count` SIP calls at `rate`/s from `"caller_name" <caller_number>` to `dialed`."""
    host.require_tools("sipp")
    if scenario not in SCENARIOS:
        raise LabError(f"unknown SIPp scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    check_caller(caller_number, caller_name)
    if not _NUMBER.match(dialed):
        raise LabError(f"dialed number must be digits: {dialed!r}")
    if not 1 <= count <= MAX_CALLS or not 0 < rate <= MAX_RATE or not 0 < hold_s <= 600:
        raise LabError(f"bounds: 1 <= count <= {MAX_CALLS}, 0 < rate <= {MAX_RATE}, hold <= 600s")
    workdir, args, timeout_s = _prepare(
        Path(lab_dir), scenario, caller_number, caller_name, dialed, count, rate, hold_s
    )
    started = time.monotonic()
    log.info("lab_sipp_started", scenario=scenario, count=count, rate=rate, dialed_number=dialed)
    with (workdir / "sipp.log").open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=workdir, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            async with asyncio.timeout(timeout_s + 15):
                rc = await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise LabError(f"sipp did not exit within {timeout_s + 15}s; see {workdir}") from None
        finally:
            if proc.returncode is None:  # cancelled: never leave a SIPp behind
                proc.kill()
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
    successful, failed = parse_stats(workdir / "stats.csv")
    result = SippResult(
        scenario=scenario,
        returncode=rc,
        calls_total=count,
        successful=successful,
        failed=failed,
        seconds=round(time.monotonic() - started, 2),
        workdir=workdir,
        log_tail=_log_tail(workdir),
    )
    log.info("lab_sipp_done", scenario=scenario, rc=rc, successful=successful, failed=failed)
    return result


def _prepare(
    lab_dir: Path,
    scenario: str,
    caller_number: str,
    caller_name: str,
    dialed: str,
    count: int,
    rate: float,
    hold_s: float,
) -> tuple[Path, list[str], int]:
    """Create the run's working folder (scenario, injection file, RTP stream); return the argv."""
    lab_dir = lab_dir.resolve()
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}-{random.randrange(1 << 32):08x}"  # noqa: S311
    workdir = lab_dir / "sipp" / run_id
    workdir.mkdir(parents=True)
    scenario_file = workdir / f"{scenario}.xml"
    scenario_file.write_text(render_scenario(scenario, hold_s), encoding="utf-8")
    inf_file = workdir / "caller.csv"
    inf_file.write_text(injection_file(caller_number, caller_name), encoding="utf-8")
    # The scenario plays caller.pcap from its working folder; 1 s longer than the call, so RTP
    # flows until the BYE.
    stream = rtp_pcap.caller_stream(hold_s + 1.0, speech=scenario == "talking")
    (workdir / "caller.pcap").write_bytes(stream)
    # Whole run: calls spread over count/rate seconds, each held hold_s, plus setup slack.
    timeout_s = int(count / rate + hold_s + 30)
    args = sipp_args(
        scenario_file, inf_file, workdir / "stats.csv", dialed, count, rate,
        _free_port(socket.SOCK_DGRAM), free_media_port(), timeout_s,
    )  # fmt: skip
    return workdir, args, timeout_s


def _log_tail(workdir: Path) -> str:
    parts = [host.tail(p, 10) for p in sorted(workdir.glob("*_errors.log"))]
    return "\n".join(parts) if parts else host.tail(workdir / "sipp.log", 10)


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((render.AMI_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def free_media_port() -> int:
    """An even port with the next three free too (SIPp uses port..port+3 for audio/video RTP)."""
    for _ in range(50):
        base = random.randrange(30000, 39990, 2)  # noqa: S311 - not security relevant
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + 4):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((render.AMI_HOST, port))
        except OSError:
            continue
        return base
    raise LabError("no free UDP port range for SIPp media on 127.0.0.1")
