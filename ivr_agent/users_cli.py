"""`ivr-agent users ...`: the people who may sign in (agents, supervisors, operators)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ivr_agent.errors import ConfigError
from ivr_agent.service_cli import load
from ivr_agent.store import users
from ivr_agent.store.txn import Db
from ivr_agent.web.passwords import hash_password, password_problem

T = TypeVar("T")
TOKEN_PREFIX = "ivr_"  # noqa: S105  # a visible prefix, not a secret


def add_parser(sub: Any) -> None:
    p = sub.add_parser("users", help="users who may sign in, and their roles")
    s = p.add_subparsers(dest="users_command", metavar="USERS_COMMAND", required=True)
    add = s.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, help="agent | supervisor | operator")
    add.add_argument("--agent", default="", help="queue member name (agents; default: NAME)")
    _common(add, password=True)
    add.set_defaults(handler=_add)
    lst = s.add_parser("list", help="every user")
    lst.add_argument("--json", action="store_true")
    _common(lst)
    lst.set_defaults(handler=_list)
    pw = s.add_parser("passwd", help="set a new password (ends the user's sessions)")
    pw.add_argument("name")
    _common(pw, password=True)
    pw.set_defaults(handler=_passwd)
    for verb, flag, why in (
        ("disable", True, "disable a user (sessions and tokens stop at once)"),
        ("enable", False, "let a disabled user sign in again"),
    ):
        d = s.add_parser(verb, help=why)
        d.add_argument("name")
        _common(d)
        d.set_defaults(handler=_disable, disabled=flag)
    tok = s.add_parser("token", help="make an API token for scripts (printed once)")
    tok.add_argument("name")
    tok.add_argument("--label", default="", help="what the token is for")
    _common(tok)
    tok.set_defaults(handler=_token)


def _common(p: argparse.ArgumentParser, *, password: bool = False) -> None:
    p.add_argument("--config")
    if password:
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")


def _with_db(args: argparse.Namespace, work: Callable[[Db], Awaitable[T]]) -> T:
    settings = load(args)

    async def run() -> T:
        db = await Db.open(settings.storage.database)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        raise ConfigError("no terminal to ask for the password: use --password-stdin")
    problem = password_problem(password)
    if problem:
        raise ConfigError(problem)
    return password


def _add(args: argparse.Namespace) -> int:
    role = users.parse_role(args.role)
    name = users.check_name(args.name)
    hashed = hash_password(read_password(args))

    async def work(db: Db) -> users.User:
        return await users.add_user(db, name, role, hashed, time.time(), agent=args.agent)

    user = _with_db(args, work)
    print(f"added {user.name} ({user.role.value})")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = _with_db(args, lambda db: users.list_users(db.conn))
    out = [
        {"name": u.name, "role": u.role.value, "agent": u.agent, "disabled": u.disabled}
        for u in rows
    ]
    if args.json:
        json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        for u in out:
            state = " (disabled)" if u["disabled"] else ""
            print(f"{u['name']:<20} {u['role']:<10} {u['agent'] or '-'}{state}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    hashed = hash_password(read_password(args))
    if not _with_db(args, lambda db: users.set_password(db, args.name, hashed, time.time())):
        raise ConfigError(f"no user {args.name!r}")
    print(f"password of {args.name} changed; their sessions have ended")
    return 0


def _disable(args: argparse.Namespace) -> int:
    done = _with_db(args, lambda db: users.set_disabled(db, args.name, args.disabled, time.time()))
    if not done:
        raise ConfigError(f"no user {args.name!r}")
    print(f"{args.name} {'disabled' if args.disabled else 'enabled'}")
    return 0


def _token(args: argparse.Namespace) -> int:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)

    async def work(db: Db) -> bool:
        found = await users.by_name(db.conn, args.name)
        if found is None:
            return False
        await users.add_token(db, found[0], token, args.label, time.time())
        return True

    if not _with_db(args, work):
        raise ConfigError(f"no user {args.name!r}")
    # The only time the token is shown; the database keeps its SHA-256 only.
    print(token)
    return 0
