"""Host-side facts and helpers for the lab: root, tools, mirror, disk, mounts, processes, locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ivr_agent.errors import LabError

DEB822_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LEGACY_SOURCES = Path("/etc/apt/sources.list")
# Why these tools: debootstrap builds the chroot, espeak-ng + sox make the prompts,
# sipp places SIP calls. mount/umount/chroot come with every Debian (util-linux, coreutils).
TOOL_PACKAGES = {"debootstrap": "debootstrap", "espeak-ng": "espeak-ng", "sox": "sox"}
TOOL_PACKAGES["sipp"] = "sip-tester"


def require_root(what: str) -> None:
    """Fail first, before touching anything, when not root (chroot and mount need it)."""
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root (chroot, mount): run it with sudo or as root")


def require_tools(*tools: str) -> None:
    """Fail with one line naming every missing tool and how to install it."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pkgs = " ".join(sorted({TOOL_PACKAGES.get(t, t) for t in missing}))
        raise LabError(
            f"missing tools: {', '.join(missing)}; "
            f"run `make bootstrap` or `apt-get install -y {pkgs}`"
        )


def parse_mirror(deb822: str | None, legacy: str | None) -> str:
    """The Debian mirror the host's apt uses: the first non-security `URIs:` (else `deb` line)."""
    for stanza in (deb822 or "").split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith(("#", " ", "\t")) or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if (
            fields.get("enabled", "yes").lower() == "no"
            or "deb" not in fields.get("types", "deb").split()
        ):
            continue
        for uri in fields.get("uris", "").split():
            if _is_mirror(uri):
                return uri
    for line in (legacy or "").splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        # Drop the optional `[arch=... signed-by=...]` block before the URI.
        rest = words[1:]
        if rest and rest[0].startswith("["):
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if rest and _is_mirror(rest[0]):
            return rest[0]
    raise LabError(
        f"cannot find the Debian mirror: no usable URIs in {DEB822_SOURCES} or {LEGACY_SOURCES}; "
        "set IVR_AGENT_LAB_MIRROR"
    )


def _is_mirror(uri: str) -> bool:
    # The security archive carries no `sid` suite, so it cannot seed the chroot.
    return uri.startswith(("http://", "https://", "file:/")) and "security" not in uri


def host_mirror() -> str:
    """IVR_AGENT_LAB_MIRROR, else the host's own apt mirror (never a hard-coded host)."""
    override = os.environ.get("IVR_AGENT_LAB_MIRROR", "").strip()
    if override:
        return override
    return parse_mirror(_read_or_none(DEB822_SOURCES), _read_or_none(LEGACY_SOURCES))


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def require_free_space(path: Path, need_bytes: int, what: str) -> None:
    free = shutil.disk_usage(path).free
    if free < need_bytes:
        raise LabError(
            f"not enough free disk space for {what} in {path}: "
            f"{free // 2**20} MiB free, need {need_bytes // 2**20} MiB"
        )


@dataclass(frozen=True, slots=True)
class Mount:
    mount_point: str
    fs_root: str  # the folder of the source filesystem that is mounted (bind source)


def mounts() -> list[Mount]:
    """Current mounts from /proc/self/mountinfo (paths with octal escapes decoded)."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        out.append(Mount(mount_point=_unescape(parts[4]), fs_root=_unescape(parts[3])))
    return out


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    return sorted(
        {m.mount_point for m in mounts() if (m.mount_point + "/").startswith(prefix)},
        key=len,
        reverse=True,
    )


def same_folder(a: Path, b: Path) -> bool:
    """True when a and b are the same inode, i.e. `a` is a bind mount of `b` (or b itself)."""
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def run(args: list[str], timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout; a timeout or a missing program becomes a LabError."""
    try:
        return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            args, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: `{' '.join(args)}` did not finish within {timeout:g}s") from None
    except OSError as err:
        raise LabError(f"{what}: cannot run {args[0]}: {err.strerror}") from None


def unmount(path: Path) -> None:
    res = run(["umount", str(path)], 30, f"unmount {path}")
    if res.returncode != 0:
        raise LabError(f"cannot unmount {path}: {res.stderr.strip()}")


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (our orphaned Asterisk may linger as a zombie until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_root(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def processes_in(chroot: Path) -> list[int]:
    """PIDs of live processes whose root folder is `chroot`."""
    target = str(chroot)
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if process_root(pid) == target and pid_alive(pid):
                pids.append(pid)
    return sorted(pids)


def wait_until_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """An exclusive flock, waited for at most `timeout` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"{what}: another ivr-agent holds {path} for more than {timeout:g}s"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"
