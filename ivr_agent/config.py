"""Service settings: frozen dataclasses loaded once from TOML, then `IVR_AGENT_*` env overrides.

Every error names the file and the key, in one line, so an operator can fix it without reading code.
Secrets never live in the TOML: they come from `IVR_AGENT_<SECTION>_<NAME>` or from a file named
by `<name>_file`, and are hidden from `repr`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr_agent.errors import ConfigError

ENV_PREFIX = "IVR_AGENT_"


@dataclass(frozen=True, slots=True)
class SiteConfig:
    name: str = "客服热线"
    timezone: str = "Asia/Shanghai"
    language: str = "zh-CN"


@dataclass(frozen=True, slots=True)
class AmiConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "ivr-agent"
    secret_file: str = ""
    secret: str = field(default="", repr=False)
    connect_timeout: float = 10.0
    action_timeout: float = 5.0
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    event_queue_size: int = 50_000


@dataclass(frozen=True, slots=True)
class StorageConfig:
    database: str = "/var/lib/ivr-agent/ivr-agent.db"
    flush_interval: float = 0.05
    flush_max_rows: int = 2000


@dataclass(frozen=True, slots=True)
class HotlineConfig:
    queues: tuple[str, ...] = ("support",)
    recordings_dir: str = "/var/spool/asterisk/monitor"
    sounds_dir: str = "/var/lib/asterisk/sounds/ivr-agent"
    # What a caller on the approved blacklist gets: "flag" (queues as usual, the screen pop says
    # so) or "leader" (straight to the shift leaders' queue): domain/blacklist_routing.py.
    blacklist_treatment: str = "flag"
    blacklist_sync_interval: float = 5.0  # seconds between reads of the blacklist table


@dataclass(frozen=True, slots=True)
class SilentLineConfig:
    enabled: bool = True
    agent_window: float = 8.0
    ivr_window: float = 0.0  # 0: no silent-line before an agent answers
    context: str = "ivr-agent-silent-line"


@dataclass(frozen=True, slots=True)
class RosterConfig:
    enabled: bool = True  # the service keeps the queues' members equal to the agents on duty
    leader_queues: tuple[str, ...] = ("leaders",)
    leader_gap: str = "error"  # an import/change leaving agents without a leader: error|warning
    long_call_alert: float = 1800.0  # seconds with an agent before a supervisor alert (0: off)
    reconcile_interval: float = 60.0  # also compare QueueStatus with the roster this often


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class RecordingsConfig:
    retention_days: int = 180
    retention_interval: float = 3600.0
    finalise_timeout: float = 15.0
    duration_tolerance: float = 2.0
    reconcile_interval: float = 300.0


@dataclass(frozen=True, slots=True)
class WebConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    session_key_file: str = ""
    session_key: str = field(default="", repr=False)
    session_max_age: int = 8 * 3600
    secure_cookies: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    site: SiteConfig = SiteConfig()
    ami: AmiConfig = AmiConfig()
    storage: StorageConfig = StorageConfig()
    hotline: HotlineConfig = HotlineConfig()
    recordings: RecordingsConfig = RecordingsConfig()
    silent_line: SilentLineConfig = SilentLineConfig()
    log: LogConfig = LogConfig()
    web: WebConfig = WebConfig()
    roster: RosterConfig = RosterConfig()
    source: str = "<defaults>"


_SECTIONS: dict[str, type[Any]] = {
    "site": SiteConfig,
    "ami": AmiConfig,
    "storage": StorageConfig,
    "hotline": HotlineConfig,
    "recordings": RecordingsConfig,
    "silent_line": SilentLineConfig,
    "log": LogConfig,
    "web": WebConfig,
    "roster": RosterConfig,
}
# (section, secret field) pairs that must never be written in the TOML itself.
_SECRETS = {("ami", "secret"), ("web", "session_key")}
# Keys holding paths: relative values are resolved against the config file's folder.
_PATHS = {
    ("ami", "secret_file"),
    ("storage", "database"),
    ("hotline", "recordings_dir"),
    ("hotline", "sounds_dir"),
    ("web", "session_key_file"),
}
_LOG_LEVELS = {"debug", "info", "warning", "error"}
_LOG_FORMATS = {"auto", "json", "console"}
_LANGUAGES = {"zh-CN", "en"}


def load_settings(path: str | Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Load settings from `path` (or defaults when None) and apply env overrides; validate all."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    where = "<defaults>"
    base = Path.cwd()
    if path is not None:
        p = Path(path)
        where = str(p)
        base = p.resolve().parent
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{where}: file not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{where}: cannot read: {err}") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{where}: not valid TOML: {err}") from None

    sections: dict[str, Any] = {}
    for key in raw:
        if key not in _SECTIONS:
            raise ConfigError(f"{where}: unknown section [{key}]")
    for name, cls in _SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        sections[name] = _build_section(name, cls, values, env, where, base)
    settings = Settings(source=where, **sections)
    _validate(settings, where)
    return settings


def _build_section(
    name: str,
    cls: type[Any],
    values: dict[str, Any],
    env: Mapping[str, str],
    where: str,
    base: Path,
) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {name}.{key}")
        if (name, key) in _SECRETS:
            raise ConfigError(
                f"{where}: {name}.{key} must not be written in the config file; "
                f"set {ENV_PREFIX}{name.upper()}_{key.upper()} or {name}.{key}_file"
            )
        kwargs[key] = _coerce(value, hints[key], f"{name}.{key}", where)
    for key in known:
        env_name = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if env_name in env:
            kwargs[key] = _coerce_env(env[env_name], hints[key], f"{name}.{key}", env_name)
    for key in known:
        if (name, key) in _PATHS and kwargs.get(key):
            kwargs[key] = str((base / str(kwargs[key])).resolve())
    for section, secret in _SECRETS:
        if section == name and not kwargs.get(secret) and kwargs.get(f"{secret}_file"):
            kwargs[secret] = _read_secret(kwargs[f"{secret}_file"], f"{name}.{secret}_file", where)
    return cls(**kwargs)


def _read_secret(path: str, key: str, where: str) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(f"{where}: {key} = {path!r}: cannot read: {err.strerror}") from None
    if not value:
        raise ConfigError(f"{where}: {key} = {path!r}: file is empty")
    return value


def _coerce(value: Any, hint: Any, key: str, where: str) -> Any:
    expected = _type_name(hint)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool):
        if type(value) is not hint:
            raise ConfigError(f"{where}: {key} must be {expected}, got {value!r}")
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be {expected}, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{where}: {key} has an unsupported type")  # pragma: no cover


def _coerce_env(text: str, hint: Any, key: str, env_name: str) -> Any:
    try:
        if hint is str:
            return text
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if typing.get_origin(hint) is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"environment {env_name}: {key} must be {_type_name(hint)}, got {text!r}"
        ) from None
    raise ConfigError(f"environment {env_name}: unsupported type")  # pragma: no cover


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    if isinstance(hint, type | types.GenericAlias):
        return {"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false"}[
            getattr(hint, "__name__", str(hint))
        ]
    return str(hint)  # pragma: no cover


def _validate(s: Settings, where: str) -> None:
    def fail(key: str, why: str) -> ConfigError:
        return ConfigError(f"{where}: {key} {why}")

    try:
        zoneinfo.ZoneInfo(s.site.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise fail("site.timezone", f"is not a known time zone: {s.site.timezone!r}") from None
    if s.site.language not in _LANGUAGES:
        raise fail("site.language", f"must be one of {sorted(_LANGUAGES)}")
    if not 0 < s.ami.port < 65536:
        raise fail("ami.port", f"must be 1..65535, got {s.ami.port}")
    if not 0 <= s.web.port < 65536:
        raise fail("web.port", f"must be 0..65535 (0: any free port), got {s.web.port}")
    if s.web.session_max_age < 60:
        raise fail("web.session_max_age", "must be >= 60 seconds")
    for key in ("connect_timeout", "action_timeout", "ping_interval", "ping_timeout"):
        if getattr(s.ami, key) <= 0:
            raise fail(f"ami.{key}", "must be > 0")
    if not 0 < s.ami.reconnect_min <= s.ami.reconnect_max:
        raise fail("ami.reconnect_min", "must be > 0 and <= ami.reconnect_max")
    if s.ami.event_queue_size < 100:
        raise fail("ami.event_queue_size", "must be >= 100")
    if s.storage.flush_interval <= 0 or s.storage.flush_max_rows < 1:
        raise fail("storage.flush_interval", "and storage.flush_max_rows must be positive")
    if s.log.level not in _LOG_LEVELS:
        raise fail("log.level", f"must be one of {sorted(_LOG_LEVELS)}")
    if s.log.format not in _LOG_FORMATS:
        raise fail("log.format", f"must be one of {sorted(_LOG_FORMATS)}")
    if not s.hotline.queues:
        raise fail("hotline.queues", "must name at least one queue")
    if s.hotline.blacklist_treatment not in ("flag", "leader"):
        raise fail("hotline.blacklist_treatment", "must be flag or leader")
    if s.hotline.blacklist_sync_interval <= 0:
        raise fail("hotline.blacklist_sync_interval", "must be > 0 seconds")
    _validate_recordings(s.recordings, fail)
    if s.silent_line.agent_window <= 0:
        raise fail("silent_line.agent_window", "must be > 0 seconds")
    if s.silent_line.ivr_window < 0:
        raise fail("silent_line.ivr_window", "must be >= 0 seconds (0: off)")
    if not s.silent_line.context.strip():
        raise fail("silent_line.context", "must name the dialplan context of the prompt")
    if s.roster.leader_gap not in ("error", "warning"):
        raise fail("roster.leader_gap", "must be error or warning")
    if s.roster.long_call_alert < 0:
        raise fail("roster.long_call_alert", "must be >= 0 seconds (0: off)")
    if s.roster.reconcile_interval <= 0:
        raise fail("roster.reconcile_interval", "must be > 0")


def _validate_recordings(r: RecordingsConfig, fail: Callable[[str, str], ConfigError]) -> None:
    if r.retention_days < 0:
        raise fail("recordings.retention_days", "must be >= 0 (0: keep forever)")
    for key in ("retention_interval", "finalise_timeout", "reconcile_interval"):
        if getattr(r, key) <= 0:
            raise fail(f"recordings.{key}", "must be > 0")
    if r.duration_tolerance < 0:
        raise fail("recordings.duration_tolerance", "must be >= 0")


def require_session_key(s: Settings) -> str:
    """The web session signing key, or a ConfigError saying where to put it."""
    if not s.web.session_key:
        raise ConfigError(
            f"{s.source}: web.enabled needs a session key: set {ENV_PREFIX}WEB_SESSION_KEY "
            "or web.session_key_file"
        )
    return s.web.session_key


def require_ami_secret(s: Settings) -> str:
    """The AMI secret, or a ConfigError saying where to put it."""
    if not s.ami.secret:
        raise ConfigError(
            f"{s.source}: missing AMI secret: set {ENV_PREFIX}AMI_SECRET or ami.secret_file"
        )
    return s.ami.secret
