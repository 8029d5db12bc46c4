"""Start, find, probe and stop the lab's Asterisk in the chroot (by PID, never by name)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import structlog

from ivr_agent.errors import LabError
from ivr_agent.lab import amiprobe, host, render

log = structlog.get_logger()
T = TypeVar("T")

CONF = "/lab/etc/asterisk.conf"  # as Asterisk sees it inside the chroot
PID_FILE = "asterisk.pid"
READY_TIMEOUT_S = 15.0  # measured 0.2 s to AMI-ready; generous for a loaded CI box
STOP_TIMEOUT_S = 10.0  # measured 1.5-2.1 s for `core stop now`
KILL_WAIT_S = 5.0
# `$!` is the PID of chroot, which exec()s asterisk: so it IS the Asterisk PID. The shell exits
# at once and Asterisk is reparented, so it outlives this process (and no Popen is left behind).
_START = 'chroot "$1" /usr/sbin/asterisk -C "$2" -f -n </dev/null >>"$3" 2>&1 & echo $!'


def is_lab_asterisk(pid: int, chroot: Path) -> bool:
    """The PID is alive, runs in our chroot (when we may look) and is Asterisk with our config."""
    if not host.pid_alive(pid):
        return False
    root = host.process_root(pid)
    cmdline = host.process_cmdline(pid)
    in_chroot = root is None or root == str(chroot)  # the root link is readable by root only
    return in_chroot and bool(cmdline) and cmdline[0].endswith("asterisk") and CONF in cmdline


def running_pid(lab_dir: Path, chroot: Path) -> int | None:
    """The recorded PID if it is still our Asterisk, else one found in the chroot, else None."""
    try:
        pid = int((lab_dir / PID_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        pid = 0
    if pid and is_lab_asterisk(pid, chroot):
        return pid
    # The PID file may be lost (a wiped lab dir): then ask the chroot who runs there, but only
    # when /lab is *our* folder; an Asterisk of another lab folder is not ours to report or stop.
    if not host.same_folder(chroot / "lab", lab_dir):
        return None
    found = [p for p in host.processes_in(chroot) if is_lab_asterisk(p, chroot)]
    return found[0] if found else None


def check_ports_free() -> None:
    """Fail early, naming the port, when something else holds the lab's loopback ports."""
    checks = [
        (socket.SOCK_STREAM, render.AMI_PORT, "AMI (tcp)"),
        (socket.SOCK_DGRAM, render.SIP_PORT, "SIP (udp)"),
    ]
    for kind, port, what in checks:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((render.AMI_HOST, port))
            except OSError:
                raise LabError(
                    f"port {render.AMI_HOST}:{port} for {what} is taken by {_port_holder()} "
                    f"(see `ss -lntup | grep {port}`)"
                ) from None


def _port_holder() -> str:
    """Name another lab's Asterisk (any chroot, any lab folder) if one runs; else be vague."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and CONF in host.process_cmdline(int(entry.name)):
            pid = int(entry.name)
            return f"another lab Asterisk (PID {pid}, root {host.process_root(pid)})"
    return "another program"


def start(lab_dir: Path, chroot: Path, secret: str) -> int:
    """Start Asterisk (asterisk-lab.md section 1), wait until AMI is ready; return its PID."""
    check_ports_free()
    stdout_log = lab_dir / "var/log/stdout.log"
    res = host.run(
        ["sh", "-c", _START, "sh", str(chroot), CONF, str(stdout_log)], 10, "start Asterisk"
    )
    try:
        pid = int(res.stdout.strip())
    except ValueError:
        raise LabError(f"cannot start Asterisk: {res.stderr.strip() or res.stdout!r}") from None
    (lab_dir / PID_FILE).write_text(f"{pid}\n", encoding="utf-8")
    try:
        seconds = _run_sync(lambda: _wait_ready(pid, secret))
    except LabError as err:
        raise LabError(
            f"Asterisk (PID {pid}) did not become ready: {err}\n"
            f"--- {lab_dir}/var/log/messages.log (tail) ---\n"
            f"{host.tail(lab_dir / 'var/log/messages.log')}\n"
            f"--- {stdout_log} (tail) ---\n{host.tail(stdout_log, 5)}"
        ) from None
    log.info("lab_asterisk_started", pid=pid, ready_s=round(seconds, 3))
    return pid


async def _wait_ready(pid: int, secret: str) -> float:
    """AMI-ready, or fail fast if the process dies meanwhile (no point waiting out the timeout)."""

    async def died() -> None:
        # Not our child (reparented), so there is nothing to await: poll /proc.
        while host.pid_alive(pid):  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    probe = amiprobe.wait_ready(
        render.AMI_HOST, render.AMI_PORT, render.AMI_USERNAME, secret, READY_TIMEOUT_S
    )
    ready = asyncio.ensure_future(probe)
    watch = asyncio.ensure_future(died())
    try:
        done, _ = await asyncio.wait({ready, watch}, return_when=asyncio.FIRST_COMPLETED)
        if ready in done:
            return ready.result()
        raise LabError("the process exited")
    finally:
        for task in (ready, watch):
            task.cancel()
        await asyncio.gather(ready, watch, return_exceptions=True)


def _run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run, refusing up front (before a coroutine exists) inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    raise RuntimeError(
        "the Lab API is synchronous; from async code call it as `await asyncio.to_thread(...)`"
    )


def probe(secret: str, timeout: float = 3.0) -> bool:
    """One readiness check (login + FullyBooted) for `status` and `up`'s health test."""
    try:
        _run_sync(
            lambda: amiprobe.wait_ready(
                render.AMI_HOST, render.AMI_PORT, render.AMI_USERNAME, secret, timeout
            )
        )
    except LabError:
        return False
    return True


def cli(chroot: Path, command: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """`asterisk -rx` through the control socket in /lab/var/run (-C is required for that)."""
    args = ["chroot", str(chroot), "/usr/sbin/asterisk", "-C", CONF, "-rx", command]
    return host.run(args, timeout, f"asterisk -rx {command!r}")


def stop(lab_dir: Path, chroot: Path) -> int | None:
    """Stop our Asterisk cleanly, then SIGTERM/SIGKILL that PID only; return the PID stopped."""
    pid = running_pid(lab_dir, chroot)
    if pid is None:
        (lab_dir / PID_FILE).unlink(missing_ok=True)
        return None
    _stop_pid(pid, chroot)
    (lab_dir / PID_FILE).unlink(missing_ok=True)
    return pid


def stop_orphans(chroot: Path) -> list[int]:
    """Stop every lab Asterisk in the chroot whatever its lab folder (that folder was deleted)."""
    pids = [p for p in host.processes_in(chroot) if is_lab_asterisk(p, chroot)]
    for pid in pids:
        _stop_pid(pid, chroot)
    return pids


def _stop_pid(pid: int, chroot: Path) -> None:
    started = time.monotonic()
    try:
        res = cli(chroot, "core stop now", timeout=STOP_TIMEOUT_S)
        asked = res.returncode == 0
        if not asked:  # no control socket (a broken lab folder): go straight to signals
            log.warning("lab_asterisk_cli_stop_failed", pid=pid, error=res.stderr.strip()[:200])
    except LabError as err:  # a hung Asterisk may not answer its control socket either
        log.warning("lab_asterisk_cli_stop_failed", pid=pid, error=str(err))
        asked = False
    remaining = max(1.0, STOP_TIMEOUT_S - (time.monotonic() - started)) if asked else 0.2
    if not host.wait_until_gone(pid, remaining):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            # Re-check identity right before signalling: the PID must still be our Asterisk.
            if not is_lab_asterisk(pid, chroot):
                break
            log.warning("lab_asterisk_signal", pid=pid, signal=sig.name)
            os.kill(pid, sig)
            if host.wait_until_gone(pid, KILL_WAIT_S):
                break
        else:
            raise LabError(f"Asterisk PID {pid} survived SIGKILL")
    log.info("lab_asterisk_stopped", pid=pid, duration_ms=int((time.monotonic() - started) * 1000))
