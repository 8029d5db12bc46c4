"""`ivr-agent users ...` and `ivr-agent recordings ...` in-process, on a tmp config and database:
what they print, what they store, and one clear line (exit 2) for every bad input."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from ivr_agent.cli import main
from tests.adapters.recfiles import write_wav


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "rec").mkdir()
    path = tmp_path / "ivr-agent.toml"
    path.write_text(
        '[storage]\ndatabase = "db.sqlite"\n[hotline]\nrecordings_dir = "rec"\n', encoding="utf-8"
    )
    return path


def run(
    config: Path, *args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None
) -> int:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main([*args, "--config", str(config)])


def test_users_lifecycle(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = "a long password\n"
    add = ("users", "add", "张主管", "--role", "supervisor", "--password-stdin")
    assert run(config, *add, stdin=pw, monkeypatch=monkeypatch) == 0
    assert "added 张主管 (supervisor)" in capsys.readouterr().out
    assert run(config, *add, stdin=pw, monkeypatch=monkeypatch) == 2
    assert "exists already" in capsys.readouterr().err
    agent = ("users", "add", "agent7", "--role", "agent", "--password-stdin")
    assert run(config, *agent, stdin=pw, monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert run(config, "users", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {"name": "agent7", "role": "agent", "agent": "agent7", "disabled": False},
        {"name": "张主管", "role": "supervisor", "agent": "", "disabled": False},
    ]
    assert run(config, "users", "disable", "agent7") == 0
    assert run(config, "users", "token", "张主管", "--label", "nightly export") == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("ivr_")
    assert len(token) > 40
    with sqlite3.connect(config.parent / "db.sqlite") as db:
        stored = db.execute("SELECT password FROM users WHERE name = '张主管'").fetchone()[0]
        digest = db.execute("SELECT token_sha256 FROM api_tokens").fetchone()[0]
    assert stored.startswith("scrypt$")
    assert "a long password" not in stored
    assert token not in digest
    passwd = ("users", "passwd", "张主管", "--password-stdin")
    assert run(config, *passwd, stdin="another long one\n", monkeypatch=monkeypatch) == 0


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("users", "add", "x", "--role", "admin", "--password-stdin"), "long enough\n", "role"),
        (("users", "add", "a/b", "--role", "agent", "--password-stdin"), "long enough\n", "1-64"),
        (("users", "add", "x", "--role", "agent", "--password-stdin"), "short\n", "at least 8"),
        (("users", "add", "x", "--role", "agent"), "", "use --password-stdin"),
        (("users", "passwd", "nobody", "--password-stdin"), "long enough\n", "no user"),
        (("users", "disable", "nobody"), "", "no user"),
        (("users", "token", "nobody"), "", "no user"),
        (("recordings", "list", "--from", "yesterday"), "", "--from"),
        (("recordings", "list", "--limit", "0"), "", "--limit"),
        (("recordings", "get", "0123456789abcdef", "-o", "/tmp/x.wav"), "", "no recording"),
        (
            ("recordings", "flag", "1.1", "--kind", "threat", "--reason", "r", "--by", "x"),
            "",
            "--by",
        ),
    ],
)
def test_bad_input_is_one_line(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    stdin: str,
    message: str,
) -> None:
    assert run(config, *args, stdin=stdin, monkeypatch=monkeypatch) == 2
    # (A fresh database also logs its migrations on stderr, as JSON lines, before the error.)
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("ivr-agent: error: ")
    assert message in last


def test_recordings_list_verify_audit_text(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A service run would have filed this; here the reconcile of a fresh database adopts it.
    import asyncio

    from ivr_agent.recordings.files import RecordingsRoot
    from ivr_agent.recordings.keeper import RecordingKeeper
    from ivr_agent.recordings.reconcile import reconcile
    from ivr_agent.store.txn import Db

    write_wav(config.parent / "rec", "1795000000.1", 2.0)

    async def adopt() -> None:
        db = await Db.open(config.parent / "db.sqlite")
        keeper = RecordingKeeper(
            db, RecordingsRoot(config.parent / "rec"), finalise_timeout=0.1, tolerance=1
        )
        await reconcile(keeper, lambda _c: False)
        await db.close()

    asyncio.run(adopt())
    assert run(config, "recordings", "list") == 0
    line = capsys.readouterr().out.strip()
    assert "1795000000.1" in line
    assert "complete" in line
    assert "2.0s" in line
    assert run(config, "recordings", "verify") == 0
    assert capsys.readouterr().out.startswith("checked 1, ok 1")
    (config.parent / "rec" / "1795000000.1.wav").unlink()
    assert run(config, "recordings", "verify") == 1
    assert "MISSING" in capsys.readouterr().out
    assert run(config, "recordings", "audit", "--action", "list") == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) == 1
    assert entries[0]["actor"].startswith("cli:")
    assert entries[0]["client"] == "local"
