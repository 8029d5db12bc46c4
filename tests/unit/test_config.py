"""Config loading: defaults, overrides, and one clear line for every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr_agent.config import load_settings, require_ami_secret
from ivr_agent.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "ivr-agent.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_config_loads_and_every_key_is_known() -> None:
    # The example names a secret file under /etc; the env secret takes precedence over it.
    s = load_settings(EXAMPLE, env={"IVR_AGENT_AMI_SECRET": "x", "IVR_AGENT_WEB_SESSION_KEY": "k"})
    assert s.ami.port == 5038
    assert s.site.timezone == "Asia/Shanghai"
    assert s.hotline.queues == ("support",)


def test_env_overrides_and_types(tmp_path: Path) -> None:
    p = write(tmp_path, "[ami]\nport = 5038\n")
    s = load_settings(
        p,
        env={
            "IVR_AGENT_AMI_PORT": "6000",
            "IVR_AGENT_AMI_PING_TIMEOUT": "2.5",
            "IVR_AGENT_HOTLINE_QUEUES": "a, b",
            "IVR_AGENT_AMI_SECRET": "s3cret",
        },
    )
    assert s.ami.port == 6000
    assert s.ami.ping_timeout == 2.5
    assert s.hotline.queues == ("a", "b")
    assert require_ami_secret(s) == "s3cret"


def test_secret_is_hidden_from_repr(tmp_path: Path) -> None:
    s = load_settings(None, env={"IVR_AGENT_AMI_SECRET": "topsecret"})
    assert "topsecret" not in repr(s)
    assert s.ami.secret == "topsecret"


def test_secret_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "ami.secret").write_text("abc\n")
    p = write(tmp_path, '[ami]\nsecret_file = "ami.secret"\n')
    assert load_settings(p, env={}).ami.secret == "abc"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[ami]\nprot = 1\n", "unknown key ami.prot"),
        ("[amy]\n", "unknown section [amy]"),
        ('[ami]\nport = "x"\n', "ami.port must be an integer"),
        ("[ami]\nport = 70000\n", "ami.port must be 1..65535"),
        ('[ami]\nsecret = "x"\n', "ami.secret must not be written in the config file"),
        ("[ami\n", "not valid TOML"),
        ('[site]\ntimezone = "Mars/Base"\n', "site.timezone is not a known time zone"),
        ('[log]\nlevel = "loud"\n', "log.level must be one of"),
        ("[hotline]\nqueues = []\n", "hotline.queues must name at least one queue"),
        ("[hotline]\nqueues = [1]\n", "hotline.queues must be a list of strings"),
        ('[hotline]\nblacklist_treatment = "hangup"\n', "hotline.blacklist_treatment must be"),
        ("[hotline]\nblacklist_sync_interval = 0\n", "hotline.blacklist_sync_interval must"),
        ('[ami]\nsecret_file = "missing.secret"\n', "ami.secret_file = "),
        ("ami = 3\n", "[ami] must be a table"),
        ("[ami]\nreconnect_min = 40.0\n", "ami.reconnect_min must be > 0"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(p, env={})
    msg = str(info.value)
    assert needle in msg
    assert str(p) in msg
    assert "\n" not in msg


def test_bad_env_value_names_variable() -> None:
    with pytest.raises(ConfigError, match="IVR_AGENT_AMI_PORT"):
        load_settings(None, env={"IVR_AGENT_AMI_PORT": "many"})


def test_missing_file_and_missing_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", env={})
    s = load_settings(None, env={})
    with pytest.raises(ConfigError, match="missing AMI secret"):
        require_ami_secret(s)


def test_unreadable_file(tmp_path: Path) -> None:
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(p, env={})
