"""The cached Debian sid chroot that holds Asterisk: verify it, or build it atomically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from ivr_agent.errors import LabError
from ivr_agent.lab import host

log = structlog.get_logger()

DEFAULT_CACHE = Path("/var/cache/ivr-agent")
CHROOT_NAME = "chroot-sid"
MARKER = ".ivr-agent-chroot.json"
# Bump when the package set changes, so old caches are rebuilt instead of half-working.
CHROOT_FORMAT = 1
PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm")
# Measured: 499 MB for 193 packages; the apt cache inside debootstrap needs headroom.
NEED_BYTES = 1 << 30
BUILD_TIMEOUT_S = 1800.0  # measured 42 s; a slow mirror may take minutes
ASTERISK_MAJOR = "22."


def cache_dir_from_env() -> Path:
    value = os.environ.get("IVR_AGENT_LAB_CACHE", "").strip()
    return Path(value).resolve() if value else DEFAULT_CACHE


def chroot_path(cache_dir: Path) -> Path:
    return cache_dir / CHROOT_NAME


def asterisk_version(chroot: Path) -> str | None:
    """`Asterisk 22.x.y` from the chroot's binary, or None when it does not run."""
    if not (chroot / "usr/sbin/asterisk").exists():
        return None
    res = host.run(["chroot", str(chroot), "/usr/sbin/asterisk", "-V"], 30, "asterisk -V")
    out = res.stdout.strip()
    return out if res.returncode == 0 and out.startswith("Asterisk ") else None


def chroot_ok(chroot: Path) -> bool:
    """Marker present with our format, and the Asterisk inside runs and is 22.x."""
    try:
        marker = json.loads((chroot / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("format") != CHROOT_FORMAT:
        return False
    version = asterisk_version(chroot)
    return version is not None and version.split()[1].startswith(ASTERISK_MAJOR)


def ensure_chroot(cache_dir: Path, echo: Callable[[str], None]) -> Path:
    """Return a verified chroot, building it (into a temp dir, then rename) if absent or broken."""
    chroot = chroot_path(cache_dir)
    if chroot_ok(chroot):
        return chroot
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One builder at a time; a second `lab up` waits, then finds the fresh chroot.
    with host.file_lock(cache_dir / ".build.lock", BUILD_TIMEOUT_S, "building the chroot"):
        if chroot_ok(chroot):
            return chroot
        host.require_tools("debootstrap")
        _remove_leftovers(cache_dir)
        host.require_free_space(cache_dir, NEED_BYTES, "the Debian sid chroot")
        mirror = host.host_mirror()
        build = cache_dir / f"{CHROOT_NAME}.build-{os.getpid()}"
        echo(f"building the Debian sid chroot in {chroot} from {mirror} (about a minute)")
        _debootstrap(build, mirror, cache_dir / "debootstrap.log")
        (build / "lab").mkdir(exist_ok=True)
        marker = {"format": CHROOT_FORMAT, "mirror": mirror, "built_at": time.time()}
        (build / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        if not chroot_ok(build):
            _remove_tree(build)
            raise LabError(f"the new chroot does not run Asterisk {ASTERISK_MAJOR}x: {mirror}")
        if chroot.exists():
            broken = cache_dir / f"{CHROOT_NAME}.broken-{os.getpid()}"
            chroot.rename(broken)
            _remove_tree(broken)
        build.rename(chroot)
        log.info("lab_chroot_built", chroot=str(chroot), mirror=mirror)
        echo(f"chroot ready: {asterisk_version(chroot)}")
    return chroot


def _debootstrap(build: Path, mirror: str, log_path: Path) -> None:
    args = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        "sid",
        str(build),
        mirror,
    ]
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as out:
        try:
            rc = subprocess.run(  # noqa: S603 - fixed argument list
                args, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S
            ).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    if rc != 0:
        # debootstrap keeps its own detailed log inside the target; save it before cleaning up.
        inner_log = build / "debootstrap/debootstrap.log"
        inner = f"\n--- {inner_log} ---\n{host.tail(inner_log, 8)}" if inner_log.is_file() else ""
        _remove_tree(build)
        raise LabError(
            f"debootstrap failed (exit {rc}) building sid from {mirror}; see {log_path}:\n"
            f"{host.tail(log_path, 12)}{inner}"
        )
    log.info("lab_debootstrap_done", seconds=round(time.monotonic() - started, 1))


def _remove_leftovers(cache_dir: Path) -> None:
    """Old temp builds and broken chroots from an interrupted run (we hold the build lock)."""
    for path in cache_dir.glob(f"{CHROOT_NAME}.*-*"):
        _remove_tree(path)
    chroot = chroot_path(cache_dir)
    if chroot.exists() and not chroot_ok(chroot):
        busy = host.processes_in(chroot)
        if busy:
            raise LabError(f"the cached chroot {chroot} is broken but processes {busy} run in it")


def _remove_tree(path: Path) -> None:
    """rm -rf that first unmounts anything below `path`, so it never deletes through a mount.

    An interrupted debootstrap leaves /proc and /sys mounted in its target; a broken chroot may
    still have the lab folder bind-mounted at /lab.
    """
    if not path.exists():
        return
    for mount_point in host.mounts_under(path):
        host.unmount(Path(mount_point))
    if host.mounts_under(path):
        raise LabError(f"refusing to delete {path}: something is still mounted below it")
    shutil.rmtree(path)
