"""The shared connection's write transactions (store/txn.py) under the conditions of a flood: the
call store's connection holding the write lock, reads of other coroutines on the same
connection, and writers cancelled while they wait."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from ivr_agent.store.txn import Db


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Db]:
    shared = await Db.open(db_path)
    async with shared.write() as conn:
        await conn.execute("CREATE TABLE t (n INTEGER)")
        await conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(10)])
    yield shared
    await shared.close()


def _other_writer(path: Path) -> sqlite3.Connection:
    """Another connection (the call store's) holding the write lock, with a commit behind it."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (100)")
    other.execute("COMMIT")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (101)")
    return other


async def test_a_write_waits_for_a_read_in_progress_on_the_same_connection(
    db: Db, db_path: Path
) -> None:
    # A reader of another coroutine is between its SELECT and the cursor's close (its statement
    # holds a read transaction) when a writer begins while the other connection holds the
    # lock. SQLite does not call the busy handler then (waiting could deadlock): BEGIN
    # IMMEDIATE failed at once with "database is locked" (replay bench: recording_row_failed).
    cur = await db.conn.execute("SELECT n FROM t ORDER BY n")
    assert await cur.fetchone() == (0,)  # more rows to come: the statement stays active
    with closing(_other_writer(db_path)) as other:

        async def write() -> None:
            async with db.write() as conn:
                await conn.execute("INSERT INTO t VALUES (200)")

        writer = asyncio.create_task(write())
        await asyncio.sleep(0.1)
        await cur.close()  # the reader is done
        await asyncio.sleep(0.1)
        await asyncio.to_thread(other.execute, "COMMIT")  # the call store's batch is done
        async with asyncio.timeout(5):
            await writer
    assert not db.conn.in_transaction
    rows = await (await db.conn.execute("SELECT count(*) FROM t WHERE n >= 100")).fetchone()
    assert rows == (3,)


async def test_a_writer_cancelled_while_it_waits_leaves_no_transaction_open(
    db: Db, db_path: Path
) -> None:
    # BEGIN IMMEDIATE waits in aiosqlite's thread (busy handler) for the other connection; the
    # waiting coroutine is cancelled (a shutdown, a request timeout), but the BEGIN still
    # completes in the thread. Left open, every later write failed with "cannot start a
    # transaction within a transaction" and the connection kept the write lock.
    with closing(_other_writer(db_path)) as other:

        async def write() -> None:
            async with db.write() as conn:
                await conn.execute("INSERT INTO t VALUES (300)")

        writer = asyncio.create_task(write())
        await asyncio.sleep(0.2)  # the BEGIN is waiting on the lock
        writer.cancel()
        await asyncio.sleep(0.1)
        await asyncio.to_thread(other.execute, "COMMIT")  # now the BEGIN gets the lock
        with pytest.raises(asyncio.CancelledError):
            await writer
    async with asyncio.timeout(5), db.write() as conn:
        await conn.execute("INSERT INTO t VALUES (400)")
    assert not db.conn.in_transaction
    with closing(sqlite3.connect(db_path, timeout=0.1)) as reader:
        got = reader.execute("SELECT n FROM t WHERE n >= 300").fetchall()
        reader.execute("BEGIN IMMEDIATE")  # nobody holds the write lock any more
        reader.execute("ROLLBACK")
    assert got == [(400,)]


async def test_a_roster_transaction_cancelled_while_it_waits_leaves_none_open(
    db: Db, db_path: Path
) -> None:
    """store.roster.transaction() had the same gap as Db.write(): a BEGIN cancelled while it
    waits for the lock still completes in aiosqlite's thread and must be rolled back."""
    from ivr_agent.store.roster import transaction

    with closing(_other_writer(db_path)) as other:

        async def write() -> None:
            async with transaction(db.conn):
                await db.conn.execute("INSERT INTO t VALUES (500)")

        writer = asyncio.create_task(write())
        await asyncio.sleep(0.2)  # the BEGIN is waiting on the lock
        writer.cancel()
        await asyncio.sleep(0.1)
        await asyncio.to_thread(other.execute, "COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await writer
    await asyncio.sleep(0.3)  # the thread's BEGIN got the lock (busy handler) long since
    await db.conn.execute("SELECT 1")  # anything queued before this has run
    assert not db.conn.in_transaction  # rolled back, not left holding the write lock
    with closing(sqlite3.connect(db_path, timeout=0.1)) as reader:
        reader.execute("BEGIN IMMEDIATE")  # nobody holds the write lock any more
        reader.execute("ROLLBACK")
