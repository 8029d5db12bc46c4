"""The lab PBX as one object: `Lab(dir).up()` gives a real Asterisk 22 on loopback, ready for AMI.

The API is synchronous (subprocess calls with timeouts); the AMI readiness probe runs its own
short event loop with `asyncio.run`, so call these methods from sync code, or from async code
through `await asyncio.to_thread(lab.up)`.

Environment: IVR_AGENT_LAB_DIR (default ./var/lab), IVR_AGENT_LAB_CACHE (default
/var/cache/ivr-agent, holds the chroot), IVR_AGENT_LAB_MIRROR (default: the host's apt mirror).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ivr_agent.errors import LabError
from ivr_agent.lab import asterisk, chroot, host, prompts, render, seed

log = structlog.get_logger()

LOCK_TIMEOUT_S = 120.0
DELETED_SUFFIX = "//deleted"  # how /proc/self/mountinfo names a bind source since removed
LAB_NEED_BYTES = 100 * 2**20  # configs, prompts, logs and a few recordings


def default_lab_dir() -> Path:
    """IVR_AGENT_LAB_DIR, else ./var/lab, as an absolute path."""
    return Path(os.environ.get("IVR_AGENT_LAB_DIR", "").strip() or "var/lab").resolve()


@dataclass(frozen=True, slots=True)
class LabInfo:
    """What a client of the running lab needs: where the config is, and how to reach AMI/SIP."""

    lab_dir: Path
    config_path: Path
    ami_host: str
    ami_port: int
    ami_username: str
    ami_secret: str = field(repr=False)
    recordings_dir: Path
    sounds_dir: Path
    sip_port: int


@dataclass(frozen=True, slots=True)
class LabStatus:
    lab_dir: Path
    chroot: Path
    chroot_present: bool
    mounted: bool
    pid: int | None
    asterisk_running: bool
    ami_ready: bool
    ami: str
    sip: str
    rtp_ports: str

    @property
    def up(self) -> bool:
        return self.mounted and self.asterisk_running and self.ami_ready

    def as_dict(self) -> dict[str, Any]:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        return {**data, "up": self.up}


class Lab:
    """The lab state folder `lab_dir`, bind-mounted at /lab in the cached sid chroot."""

    def __init__(
        self,
        lab_dir: Path,
        cache_dir: Path | None = None,
        *,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.lab_dir = Path(lab_dir).resolve()
        self.cache_dir = Path(cache_dir).resolve() if cache_dir else chroot.cache_dir_from_env()
        self.chroot = chroot.chroot_path(self.cache_dir)
        self._echo = echo or (lambda _line: None)

    @property
    def _mount_point(self) -> Path:
        return self.chroot / "lab"

    def _lock(self) -> Any:
        return host.file_lock(self.lab_dir / ".lab.lock", LOCK_TIMEOUT_S, str(self.lab_dir))

    def info(self) -> LabInfo:
        """How to reach this lab (it must have been brought up once: the secret must exist)."""
        try:
            secret = self._secret()
        except OSError:
            raise LabError(f"no lab in {self.lab_dir}: run `ivr-agent lab up`") from None
        return LabInfo(
            lab_dir=self.lab_dir,
            config_path=self.lab_dir / render.CONFIG_FILE,
            ami_host=render.AMI_HOST,
            ami_port=render.AMI_PORT,
            ami_username=render.AMI_USERNAME,
            ami_secret=secret,
            recordings_dir=self.lab_dir / "rec",
            sounds_dir=self.lab_dir / "sounds",
            sip_port=render.SIP_PORT,
        )

    def up(self) -> LabInfo:
        """Build/verify the chroot, render DIR, mount, start Asterisk, wait for AMI. Idempotent."""
        host.require_root("lab up")
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self._healthy():
                render.write_service_config(self.lab_dir)
                self._seed()
                changed = render.configs_changed(self.lab_dir)
                stale = prompts.stale_prompts(self.lab_dir / "sounds")
                if not changed and not stale:
                    self._echo(f"lab already up in {self.lab_dir}")
                    return self.info()
                # dialplan/ or the prompts changed since the lab started: render and restart.
                self._echo(f"lab out of date ({', '.join(changed + stale)}): restarting")
            needed = [] if chroot.chroot_ok(self.chroot) else ["debootstrap"]
            if prompts.stale_prompts(self.lab_dir / "sounds"):
                needed += ["espeak-ng", "sox"]
            host.require_tools(*needed)
            self._check_mount_conflict()
            host.require_free_space(self.lab_dir, LAB_NEED_BYTES, "the lab folder")
            root = chroot.ensure_chroot(self.cache_dir, self._echo)
            render.make_state_dirs(self.lab_dir)
            made = prompts.render_prompts(self.lab_dir / "sounds")
            if made:
                self._echo(f"prompts rendered: {', '.join(made)}")
            secret = self._render(root)
            self._seed()
            self._mount()
            # Running but unhealthy (stale secret, hung AMI): restart with the fresh config.
            stopped = asterisk.stop(self.lab_dir, self.chroot)
            if stopped:
                self._echo(f"stopped an unhealthy Asterisk (PID {stopped})")
            pid = asterisk.start(self.lab_dir, self.chroot, secret)
            self._echo(f"Asterisk started (PID {pid}); AMI ready on 127.0.0.1:{render.AMI_PORT}")
            log.info("lab_up", lab_dir=str(self.lab_dir), pid=pid)
            return self.info()

    def down(self) -> None:
        """Stop Asterisk and unmount /lab. Idempotent."""
        host.require_root("lab down")
        if not self.lab_dir.is_dir():
            self._echo(f"no lab in {self.lab_dir}: nothing to stop")
            return
        with self._lock():
            pid = asterisk.stop(self.lab_dir, self.chroot)
            self._echo(f"Asterisk stopped (PID {pid})" if pid else "Asterisk was not running")
            if self._mounted_here():
                busy = host.processes_in(self.chroot)
                if busy:
                    raise LabError(f"cannot unmount {self._mount_point}: PIDs {busy} run there")
                while self._mounted_here():
                    host.unmount(self._mount_point)
                self._echo(f"unmounted {self._mount_point}")
            log.info("lab_down", lab_dir=str(self.lab_dir))

    def restart(self) -> LabInfo:
        """Restart only Asterisk: same secret and service config; dialplan/ files re-installed."""
        host.require_root("lab restart")
        with self._lock():
            if not (chroot.chroot_ok(self.chroot) and self._mounted_here()):
                raise LabError(f"the lab in {self.lab_dir} is not up: run `ivr-agent lab up`")
            pid = asterisk.stop(self.lab_dir, self.chroot)
            if pid:
                self._echo(f"Asterisk stopped (PID {pid})")
            secret = self._render(self.chroot)
            pid = asterisk.start(self.lab_dir, self.chroot, secret)
            self._echo(f"Asterisk started (PID {pid}); AMI ready on 127.0.0.1:{render.AMI_PORT}")
            return self.info()

    def status(self) -> LabStatus:
        present = (self.chroot / chroot.MARKER).is_file()
        mounted = self._mounted_here()
        pid = asterisk.running_pid(self.lab_dir, self.chroot) if present else None
        secret_file = self.lab_dir / render.SECRET_FILE
        ready = bool(pid) and secret_file.is_file() and asterisk.probe(self._secret())
        return LabStatus(
            lab_dir=self.lab_dir,
            chroot=self.chroot,
            chroot_present=present,
            mounted=mounted,
            pid=pid,
            asterisk_running=pid is not None,
            ami_ready=ready,
            ami=f"{render.AMI_HOST}:{render.AMI_PORT}/tcp",
            sip=f"{render.AMI_HOST}:{render.SIP_PORT}/udp",
            rtp_ports=f"{render.RTP_PORTS[0]}-{render.RTP_PORTS[1]}/udp",
        )

    def asterisk_cli(self, command: str) -> str:
        """Run an Asterisk CLI command (`asterisk -rx`) in the lab and return its output."""
        if asterisk.running_pid(self.lab_dir, self.chroot) is None:
            raise LabError(f"the lab Asterisk is not running in {self.lab_dir}")
        res = asterisk.cli(self.chroot, command)
        if res.returncode != 0:
            raise LabError(f"asterisk -rx {command!r} failed: {res.stderr.strip() or res.stdout}")
        return res.stdout

    def _secret(self) -> str:
        return (self.lab_dir / render.SECRET_FILE).read_text(encoding="utf-8").strip()

    def _healthy(self) -> bool:
        if not (self._mounted_here() and (self.lab_dir / render.SECRET_FILE).is_file()):
            return False
        if not chroot.chroot_ok(self.chroot):
            return False
        pid = asterisk.running_pid(self.lab_dir, self.chroot)
        return pid is not None and asterisk.probe(self._secret())

    def _render(self, root: Path) -> str:
        secret = render.ensure_secret(self.lab_dir)
        render.install_configs(self.lab_dir, root)
        render.write_manager_secret(self.lab_dir, secret)
        config = render.write_service_config(self.lab_dir)
        self._echo(f"configs rendered in {self.lab_dir}/etc; service config {config}")
        return secret

    def _seed(self) -> None:
        """The lab agents and roster in the lab's database (the service adds the members)."""
        made = seed.seed_sync(self.lab_dir / render.LAB_DATABASE, if_needed=True)
        if made:
            self._echo(f"lab roster imported: {made} shifts (dialplan/lab/roster.csv)")

    def _mounted_here(self) -> bool:
        """/lab in the chroot is a mount of *this* lab folder."""
        point = str(self._mount_point)
        return any(m.mount_point == point for m in host.mounts()) and host.same_folder(
            self._mount_point, self.lab_dir
        )

    def _check_mount_conflict(self) -> None:
        """Fail, naming it, when another lab folder is mounted at /lab and its Asterisk runs."""
        if self._mounted_here():
            return
        others = [m for m in host.mounts() if m.mount_point == str(self._mount_point)]
        if others and others[-1].fs_root.endswith(DELETED_SUFFIX):
            # That lab folder was deleted (a CI checkout removed with its lab still up): its
            # Asterisk is an orphan nobody can stop by folder any more; stop it and take over.
            stopped = asterisk.stop_orphans(self.chroot)
            self._echo(
                f"{self._mount_point} was mounted from a deleted lab folder "
                f"({others[-1].fs_root}); stopped its Asterisk {stopped or '(none running)'}"
            )
            log.warning("lab_orphan_stopped", fs_root=others[-1].fs_root, pids=stopped)
        busy = host.processes_in(self.chroot) if others else []
        if busy:
            cmd = " ".join(host.process_cmdline(busy[0]))
            raise LabError(
                f"{self._mount_point} is mounted from another lab folder ({others[-1].fs_root}) "
                f"and its Asterisk runs there (PID {busy[0]}: {cmd}); stop it first with "
                "`ivr-agent lab down --dir <that folder>`"
            )

    def _mount(self) -> None:
        point = self._mount_point
        point.mkdir(exist_ok=True)
        if self._mounted_here():
            return
        self._check_mount_conflict()
        # Mounted from another lab folder with nothing running there: take the mount point over.
        for _ in [m for m in host.mounts() if m.mount_point == str(point)]:
            host.unmount(point)
        res = host.run(["mount", "--bind", str(self.lab_dir), str(point)], 30, "mount")
        if res.returncode != 0:
            raise LabError(f"cannot bind-mount {self.lab_dir} at {point}: {res.stderr.strip()}")
        self._echo(f"mounted {self.lab_dir} at {point}")
