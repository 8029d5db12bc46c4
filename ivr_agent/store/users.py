"""Users (agent, supervisor, operator) with scrypt password hashes, and API tokens."""

from __future__ import annotations

import enum
import hashlib
import re
import sqlite3
from dataclasses import dataclass
from typing import Final

import aiosqlite

from ivr_agent.errors import IvrAgentError, StorageError
from ivr_agent.store.db import utc_text
from ivr_agent.store.txn import Db

_NAME_RE: Final = re.compile(r"[\w.@-]{1,64}")


class Role(enum.Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"


class UserError(IvrAgentError, ValueError):
    """A user name, role or password that cannot be accepted; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    agent: str  # the queue member name the user answers calls as ('' if not an agent)
    disabled: bool
    session_gen: int

    @property
    def actor(self) -> str:
        return self.name


_COLS: Final = "id, name, role, agent, disabled, session_gen"


def _user(row: sqlite3.Row | tuple[object, ...]) -> User:
    uid, name, role, agent, disabled, gen = tuple(row)
    return User(int(str(uid)), str(name), Role(role), str(agent), bool(disabled), int(str(gen)))


def check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise UserError(f"user name {name!r}: 1-64 letters, digits or . _ @ -")
    return name


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise UserError(
            f"unknown role {text!r}; one of {', '.join(r.value for r in Role)}"
        ) from None


def token_digest(token: str) -> str:
    """Tokens are 256-bit random strings: a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def add_user(
    db: Db, name: str, role: Role, password_hash: str, now: float, *, agent: str = ""
) -> User:
    check_name(name)
    if role is Role.AGENT and not agent:
        agent = name
    try:
        async with db.write() as conn:
            cur = await conn.execute(
                "INSERT INTO users (name, role, agent, password, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, role.value, agent, password_hash, utc_text(now), utc_text(now)),
            )
            uid = cur.lastrowid
    except StorageError as err:
        if isinstance(err.__cause__, sqlite3.IntegrityError):
            raise UserError(f"user {name!r} exists already") from None
        raise
    return User(int(uid or 0), name, role, agent, False, 0)


async def by_name(conn: aiosqlite.Connection, name: str) -> tuple[User, str] | None:
    """The user and their password hash (for login), or None."""
    async with conn.execute(f"SELECT {_COLS}, password FROM users WHERE name = ?", (name,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    values = tuple(row)
    return _user(values[:-1]), str(values[-1])


async def by_id(conn: aiosqlite.Connection, uid: int) -> User | None:
    async with conn.execute(f"SELECT {_COLS} FROM users WHERE id = ?", (uid,)) as cur:
        row = await cur.fetchone()
    return _user(row) if row else None


async def list_users(conn: aiosqlite.Connection) -> list[User]:
    async with conn.execute(f"SELECT {_COLS} FROM users ORDER BY name") as cur:
        return [_user(r) for r in await cur.fetchall()]


async def set_password(db: Db, name: str, password_hash: str, now: float) -> bool:
    """New password; every open session of the user ends (session_gen bumps)."""
    async with db.write() as conn:
        cur = await conn.execute(
            "UPDATE users SET password = ?, session_gen = session_gen + 1, updated_at = ? "
            "WHERE name = ?",
            (password_hash, utc_text(now), name),
        )
        return cur.rowcount == 1


async def set_disabled(db: Db, name: str, disabled: bool, now: float) -> bool:
    """Disable (sessions and tokens stop working at once) or enable a user."""
    async with db.write() as conn:
        cur = await conn.execute(
            "UPDATE users SET disabled = ?, session_gen = session_gen + 1, updated_at = ? "
            "WHERE name = ?",
            (int(disabled), utc_text(now), name),
        )
        return cur.rowcount == 1


async def add_token(db: Db, user: User, token: str, label: str, now: float) -> None:
    async with db.write() as conn:
        await conn.execute(
            "INSERT INTO api_tokens (user_id, token_sha256, label, created_at) VALUES (?, ?, ?, ?)",
            (user.id, token_digest(token), label, utc_text(now)),
        )


async def by_token(conn: aiosqlite.Connection, token: str) -> User | None:
    async with conn.execute(
        f"SELECT {', '.join('u.' + c for c in _COLS.split(', '))} FROM api_tokens t "
        "JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ? AND t.revoked = 0",
        (token_digest(token),),
    ) as cur:
        row = await cur.fetchone()
    return _user(row) if row else None
