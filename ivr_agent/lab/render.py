"""Render the lab state folder: Asterisk configs from `dialplan/`, AMI secret, service config."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from ivr_agent.errors import LabError

# The repo's `dialplan/` (operator snippets at the top, lab-only files in `lab/`).
DIALPLAN_DIR = Path(__file__).resolve().parents[2] / "dialplan"
STATE_DIRS = (
    "etc",
    "var/log",
    "var/log/cdr-custom",
    "var/run",
    "var/lib",
    "var/spool",
    "var/cache",
    "rec",
    "sounds",
)
# Configs Asterisk warns about when absent; empty is enough for the lab.
EMPTY_CONFS = (
    "cel.conf",
    "acl.conf",
    "udptl.conf",
    "ccss.conf",
    "queuerules.conf",
    "musiconhold.conf",
    "features.conf",
    "pjproject.conf",
)
AMI_HOST = "127.0.0.1"
AMI_PORT = 5038
AMI_USERNAME = "ivr-agent"
SIP_PORT = 5060
RTP_PORTS = (20000, 20200)
# File names only; the secret itself is generated per lab.
SECRET_FILE = "ami.secret"  # noqa: S105
SESSION_KEY_FILE = "session.key"
WEB_PORT = 8080
MANAGER_SECRET_CONF = "manager_ivr_agent_secret.conf"  # noqa: S105
CONFIG_FILE = "ivr-agent.toml"
LAB_DATABASE = "ivr-agent.db"


def dialplan_dir() -> Path:
    if not (DIALPLAN_DIR / "extensions_ivr_agent.conf").is_file():
        raise LabError(f"the project's dialplan/ folder is missing at {DIALPLAN_DIR}")
    return DIALPLAN_DIR


def make_state_dirs(lab_dir: Path) -> None:
    for sub in STATE_DIRS:
        (lab_dir / sub).mkdir(parents=True, exist_ok=True)
    # Recordings hold callers' voices: not world-readable.
    (lab_dir / "rec").chmod(0o750)


def install_configs(lab_dir: Path, chroot: Path) -> None:
    """Copy the operator snippets and the lab-only files into DIR/etc (lab files win on a clash)."""
    src = dialplan_dir()
    etc = lab_dir / "etc"
    for folder in (src, src / "lab"):
        for conf in sorted(folder.glob("*.conf")):
            _write_if_changed(etc / conf.name, conf.read_bytes())
    shutil.copyfile(src / "lab" / "roster.csv", lab_dir / "roster.csv")
    for name in EMPTY_CONFS:
        (etc / name).touch()
    # Queue(...,r) needs the country tones; take them from the chroot's own package.
    indications = chroot / "etc/asterisk/indications.conf"
    if indications.is_file():
        _write_if_changed(etc / "indications.conf", indications.read_bytes())
    else:
        (etc / "indications.conf").touch()


def configs_changed(lab_dir: Path) -> list[str]:
    """Names of the dialplan/ files that differ from (or are missing in) DIR/etc."""
    src = dialplan_dir()
    etc = lab_dir / "etc"
    changed = []
    for folder in (src, src / "lab"):
        for conf in sorted(folder.glob("*.conf")):
            target = etc / conf.name
            if folder == src and (src / "lab" / conf.name).is_file():
                continue  # the lab's own file wins
            if not target.is_file() or target.read_bytes() != conf.read_bytes():
                changed.append(conf.name)
    return changed


def ensure_secret(lab_dir: Path) -> str:
    """The AMI secret in DIR/ami.secret (0600): kept if present, generated only if absent."""
    path = lab_dir / SECRET_FILE
    try:
        current = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        current = ""
    if current:
        os.chmod(path, 0o600)
        return current
    # token_urlsafe: only [A-Za-z0-9_-], safe in manager.conf without quoting.
    value = secrets.token_urlsafe(24)
    _write_private(path, value + "\n")
    return value


def ensure_session_key(lab_dir: Path) -> None:
    """The web session signing key in DIR/session.key (0600): kept if present, else generated."""
    path = lab_dir / SESSION_KEY_FILE
    try:
        if path.read_text(encoding="utf-8").strip():
            os.chmod(path, 0o600)
            return
    except FileNotFoundError:
        pass
    _write_private(path, secrets.token_urlsafe(32) + "\n")


def write_manager_secret(lab_dir: Path, secret: str) -> None:
    """The one-line file that the operator template `manager_ivr_agent.conf` #includes."""
    _write_private(lab_dir / "etc" / MANAGER_SECRET_CONF, f"secret = {secret}\n")


def render_service_config() -> str:
    """DIR/ivr-agent.toml; relative paths resolve against its own folder (see config.py)."""
    return (
        "# Written by `ivr-agent lab up`; rewritten on each `lab up`.\n"
        "# No secret is here: the AMI secret is read from ami.secret and the web session key\n"
        "# from session.key (both mode 0600).\n"
        "\n"
        "[ami]\n"
        f'host = "{AMI_HOST}"\n'
        f"port = {AMI_PORT}\n"
        f'username = "{AMI_USERNAME}"\n'
        f'secret_file = "{SECRET_FILE}"\n'
        "\n"
        "[storage]\n"
        f'database = "{LAB_DATABASE}"\n'
        "\n"
        "[hotline]\n"
        'queues = ["support"]\n'
        'recordings_dir = "rec"\n'
        'sounds_dir = "sounds"\n'
        "\n"
        "[recordings]\n"
        "retention_days = 180\n"
        "\n"
        "[web]\n"
        "enabled = true\n"
        f'host = "{AMI_HOST}"\n'
        f"port = {WEB_PORT}\n"
        f'session_key_file = "{SESSION_KEY_FILE}"\n'
        "\n"
        "[log]\n"
        'level = "info"\n'
    )


def write_service_config(lab_dir: Path) -> Path:
    ensure_session_key(lab_dir)
    path = lab_dir / CONFIG_FILE
    _write_if_changed(path, render_service_config().encode("utf-8"))
    return path


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_private(path: Path, text: str) -> None:
    """Write via a 0600 temp file and rename, so the secret is never briefly world-readable."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)
