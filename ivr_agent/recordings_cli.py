"""`ivr-agent recordings ...`: search, fetch (hash-checked), verify, flag as evidence, audit.

Every read of a recording from here is written to the audit log as `cli:<os user>` from `local`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ivr_agent.errors import ConfigError, IvrAgentError, RecordingNotFound
from ivr_agent.recordings import evidence
from ivr_agent.recordings.files import RecordingsRoot
from ivr_agent.service_cli import load
from ivr_agent.store import audit, users
from ivr_agent.store import recordings as rec_store
from ivr_agent.store.db import parse_utc_text
from ivr_agent.store.txn import Db


def add_parser(sub: Any) -> None:
    p = sub.add_parser("recordings", help="call recordings: list, get, verify, flag, audit")
    s = p.add_subparsers(dest="recordings_command", metavar="RECORDINGS_COMMAND", required=True)
    lst = s.add_parser("list", help="recordings, newest first")
    lst.add_argument("--json", action="store_true", help="a JSON array")
    lst.add_argument("--from", dest="since", help="started at or after (ISO-8601)")
    lst.add_argument("--to", dest="until", help="started before (ISO-8601)")
    lst.add_argument("--agent", default="")
    lst.add_argument("--caller", default="", help="caller number")
    lst.add_argument("--disposition", default="")
    lst.add_argument("--status", default="", help="recording|complete|missing|failed|deleted")
    lst.add_argument("--call-id", default="")
    ev = lst.add_mutually_exclusive_group()
    ev.add_argument("--evidence", dest="evidence", action="store_true", default=None)
    ev.add_argument("--no-evidence", dest="evidence", action="store_false")
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--config")
    lst.set_defaults(handler=_list)
    get = s.add_parser("get", help="copy a recording to a file, checking its SHA-256")
    get.add_argument("recording_id")
    get.add_argument("--output", "-o", required=True, type=Path)
    get.add_argument("--config")
    get.set_defaults(handler=_get)
    ver = s.add_parser("verify", help="re-hash every complete recording; report mismatches")
    ver.add_argument("--json", action="store_true")
    ver.add_argument("--config")
    ver.set_defaults(handler=_verify)
    flag = s.add_parser("flag", help="keep a call's recording as evidence")
    flag.add_argument("call_id")
    flag.add_argument("--kind", required=True, help="extortion|threat|abuse|...")
    flag.add_argument("--reason", required=True)
    flag.add_argument("--by", required=True, help="the user (agent) who reports it")
    flag.add_argument("--config")
    flag.set_defaults(handler=_flag)
    aud = s.add_parser("audit", help="who accessed recordings (JSON, newest first)")
    aud.add_argument("--recording", default=None)
    aud.add_argument("--action", default=None)
    aud.add_argument("--limit", type=int, default=100)
    aud.add_argument("--config")
    aud.set_defaults(handler=_audit)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:
        return f"cli:uid{os.getuid()}"


def _entry(action: audit.AuditAction, **kw: Any) -> audit.AuditEntry:
    return audit.AuditEntry(actor=_actor(), action=action, at=time.time(), client="local", **kw)


def _time(text: str | None, flag: str) -> float | None:
    if not text:
        return None
    try:
        return parse_utc_text(text)
    except ValueError:
        raise ConfigError(f"{flag}: not an ISO-8601 time: {text!r}") from None


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


async def _open(args: argparse.Namespace) -> tuple[Db, RecordingsRoot]:
    settings = load(args)
    return await Db.open(settings.storage.database), RecordingsRoot(settings.hotline.recordings_dir)


def _list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100_000:
        raise ConfigError("--limit must be 1..100000")
    query = rec_store.RecordingQuery(
        since=_time(args.since, "--from"), until=_time(args.until, "--to"), agent=args.agent,
        caller=args.caller, disposition=args.disposition, evidence=args.evidence,
        status=args.status, call_id=args.call_id, limit=args.limit,
    )  # fmt: skip

    async def run() -> list[rec_store.RecordingRow]:
        db, _root = await _open(args)
        try:
            rows = await rec_store.search(db.conn, query)
            filters = {k: v for k, v in vars(args).items() if k not in ("handler", "config")}
            detail = {"filters": filters, "count": len(rows), "ids": [r.recording_id for r in rows]}
            await audit.append(db, _entry(audit.AuditAction.LIST, detail=detail))
            return rows
        finally:
            await db.close()

    rows = asyncio.run(run())
    if args.json:
        _dump([r.as_dict() for r in rows])
        return 0
    for r in rows:
        dur = f"{r.duration:.1f}s" if r.duration is not None else "-"
        mark = " EVIDENCE" if r.evidence else ""
        print(
            f"{r.started_at}  {r.recording_id}  {r.call_id:<22} {r.caller_number or '-':<14} "
            f"{r.agent or '-':<10} {r.status:<9} {dur:>8}{mark}"
        )
    return 0


def _get(args: argparse.Namespace) -> int:
    async def run() -> tuple[int, str]:
        db, root = await _open(args)
        try:
            row = await rec_store.get(db.conn, args.recording_id)
            if row is None:
                raise RecordingNotFound(f"no recording {args.recording_id!r}")
            if row.status != "complete" or not row.sha256:
                raise RecordingNotFound(f"recording {row.recording_id} is {row.status}")
            size = await asyncio.to_thread(_copy_checked, root, row.path, args.output, row.sha256)
            await audit.append(
                db,
                _entry(
                    audit.AuditAction.DOWNLOAD,
                    recording_id=row.recording_id,
                    call_id=row.call_id,
                    detail={"output": str(args.output.resolve())},
                ),
            )
            return size, row.sha256
        finally:
            await db.close()

    size, digest = asyncio.run(run())
    print(f"saved {args.output} ({size} bytes, sha256 {digest} verified)")
    return 0


def _copy_checked(root: RecordingsRoot, name: str, output: Path, expected: str) -> int:
    """Copy to OUTPUT.partial while hashing; rename only if the hash matches the record."""
    fd = root.open(name)
    partial = output.with_name(output.name + ".partial")
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "rb") as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                dst.write(chunk)
                size += len(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if h.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise IvrAgentError(
            f"sha256 mismatch for {name}: recorded {expected}, file has {h.hexdigest()}; "
            "the file changed after it was recorded (nothing written)"
        )
    partial.replace(output)
    return size


def _verify(args: argparse.Namespace) -> int:
    async def run() -> dict[str, Any]:
        db, root = await _open(args)
        try:
            rows = await rec_store.complete(db.conn)
        finally:
            await db.close()
        mismatched, missing = [], []
        for row in rows:
            try:
                digest = await asyncio.to_thread(root.sha256, row.path)
            except RecordingNotFound:
                missing.append({"recording_id": row.recording_id, "path": row.path})
                continue
            if digest != row.sha256:
                mismatched.append(
                    {"recording_id": row.recording_id, "path": row.path,
                     "recorded": row.sha256, "actual": digest}
                )  # fmt: skip
        ok = len(rows) - len(mismatched) - len(missing)
        return {"checked": len(rows), "ok": ok, "mismatched": mismatched, "missing": missing}

    report = asyncio.run(run())
    if args.json:
        _dump(report)
    else:
        print(f"checked {report['checked']}, ok {report['ok']}")
        for m in report["mismatched"]:
            print(f"MISMATCH {m['recording_id']} {m['path']}: {m['recorded']} != {m['actual']}")
        for m in report["missing"]:
            print(f"MISSING  {m['recording_id']} {m['path']}")
    return 1 if report["mismatched"] or report["missing"] else 0


def _flag(args: argparse.Namespace) -> int:
    async def run() -> rec_store.EvidenceRow:
        db, _root = await _open(args)
        try:
            found = await users.by_name(db.conn, args.by)
            if found is None:
                raise ConfigError(f"--by: no user {args.by!r}")
            if not await evidence.call_known(db.conn, args.call_id):
                raise ConfigError(f"no call {args.call_id!r}")
            user = found[0]
            return await evidence.flag(
                db, args.call_id, args.kind, args.reason,
                by=user.name, role=user.role.value, client=f"local ({_actor()})", now=time.time(),
            )  # fmt: skip
        finally:
            await db.close()

    row = asyncio.run(run())
    print(f"call {row.call_id} kept as evidence ({row.kind}), flagged by {row.flagged_by}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    async def run() -> list[dict[str, Any]]:
        db, _root = await _open(args)
        try:
            return await audit.entries(
                db.conn, recording_id=args.recording, action=args.action, limit=args.limit
            )
        finally:
            await db.close()

    _dump(asyncio.run(run()))
    return 0
