"""A connection shared by several writers (recordings, users, audit): one transaction at a time.

aiosqlite runs one statement at a time, but a transaction spans several awaits: a statement
from another coroutine sent in between would join it (and be rolled back with it). Every write
on a `Db` goes through `write()`, which holds a lock for the whole transaction. Reads need no
lock. The call store keeps its own connection: WAL lets the two writers take turns.

Two ways a transaction used to fail or stay open under load (replay bench, 2026-11-25):

* A read of another coroutine on this connection, between its SELECT and its cursor's close,
  holds a read transaction. SQLite does not call the busy handler when a connection that
  already reads asks for the write lock (waiting could deadlock), so BEGIN IMMEDIATE failed at
  once with "database is locked" whenever the call store's connection held the lock or had
  committed since that read began. `write()` waits out such a read itself, up to the same
  busy timeout.
* A writer cancelled while its BEGIN waited in aiosqlite's thread: the BEGIN still completed
  there, nobody rolled it back, and every later write failed with "cannot start a transaction
  within a transaction" while the connection kept the write lock. The ROLLBACK is now queued
  behind the BEGIN (aiosqlite runs a connection's statements in order) in that case too.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

import aiosqlite
import structlog

from ivr_agent.errors import StorageError
from ivr_agent.store.db import BUSY_TIMEOUT, open_db

log = structlog.get_logger(__name__)

# Waits between BEGIN attempts while a read on this connection blocks it: a read is done within
# milliseconds (one fetch in aiosqlite's thread), the deadline is the connection's busy timeout.
_RETRY_FIRST: Final = 0.001
_RETRY_MAX: Final = 0.05


class Db:
    """An aiosqlite connection plus the lock that serialises its write transactions."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Db:
        return cls(await open_db(path))

    async def close(self) -> None:
        await self.conn.close()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """`async with db.write() as conn:` one IMMEDIATE transaction, committed on success,
        rolled back on any error (also on cancellation). SQLite errors become StorageError."""
        async with self._lock:
            await self._begin()
            try:
                yield self.conn
                await self.conn.execute("COMMIT")
            except BaseException as err:
                await asyncio.shield(self._rollback())
                if isinstance(err, sqlite3.Error):
                    raise StorageError(f"write failed: {err}") from err
                raise

    async def _begin(self) -> None:
        if self.conn.in_transaction:
            # Only write() may open a transaction here; one left open would fail every writer.
            log.error("db_transaction_left_open")
            await self._rollback()
        deadline = time.monotonic() + BUSY_TIMEOUT
        delay = _RETRY_FIRST
        while True:
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                if _busy(err) and not self.conn.in_transaction and time.monotonic() < deadline:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                raise StorageError(f"cannot start a transaction: {err}") from err
            except BaseException:
                # Cancelled while the BEGIN was queued or waiting: it still runs in the thread.
                await asyncio.shield(self._rollback())
                raise
            return

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            await self.conn.execute("ROLLBACK")


def _busy(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


async def write_one(
    target: Db | aiosqlite.Connection, sql: str, params: Sequence[object], what: str
) -> aiosqlite.Cursor:
    """One statement: in a transaction of its own on a `Db`, or in the caller's transaction on
    a connection. SQLite errors become StorageError naming `what`."""
    try:
        if isinstance(target, Db):
            async with target.write() as conn:
                return await conn.execute(sql, params)
        return await target.execute(sql, params)
    except sqlite3.Error as err:
        raise StorageError(f"cannot {what}: {err}") from err
