"""A connection shared by several writers (recordings, users, audit): one transaction at a time.

aiosqlite runs one statement at a time, but a transaction spans several awaits: a statement
from another coroutine sent in between would join it (and be rolled back with it). Every write
on a `Db` goes through `write()`, which holds a lock for the whole transaction. Reads need no
lock. The call store keeps its own connection: WAL lets the two writers take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from ivr_agent.errors import StorageError
from ivr_agent.store.db import open_db


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
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise StorageError(f"cannot start a transaction: {err}") from err
            try:
                yield self.conn
                await self.conn.execute("COMMIT")
            except BaseException as err:
                await asyncio.shield(self._rollback())
                if isinstance(err, sqlite3.Error):
                    raise StorageError(f"write failed: {err}") from err
                raise

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            await self.conn.execute("ROLLBACK")
