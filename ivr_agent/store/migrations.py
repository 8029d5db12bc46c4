"""Explicit, versioned schema migrations. Append new steps; never edit a released one."""

from __future__ import annotations

# Times are stored as UTC ISO-8601 text with microseconds and a trailing Z (sortable, readable).
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE calls (
            call_id            TEXT PRIMARY KEY,      -- Asterisk Linkedid
            state              TEXT NOT NULL,
            caller_number      TEXT NOT NULL DEFAULT '',
            caller_name        TEXT NOT NULL DEFAULT '',
            dialed_number      TEXT NOT NULL DEFAULT '',
            queue              TEXT NOT NULL DEFAULT '',
            agent              TEXT NOT NULL DEFAULT '',
            started_at         TEXT,
            answered_at        TEXT,
            queued_at          TEXT,
            agent_connected_at TEXT,
            ended_at           TEXT,
            hold_time          REAL,
            talk_time          REAL,
            disposition        TEXT,
            hangup_cause       INTEGER,
            hangup_cause_txt   TEXT NOT NULL DEFAULT '',
            reconciled         INTEGER NOT NULL DEFAULT 0,
            updated_at         TEXT NOT NULL
        );
        CREATE INDEX calls_started_at ON calls(started_at);
        CREATE INDEX calls_open ON calls(ended_at) WHERE ended_at IS NULL;

        -- The audit timeline: one row per call event we model, append-only.
        CREATE TABLE call_events (
            id        INTEGER PRIMARY KEY,
            call_id   TEXT NOT NULL,
            at        TEXT NOT NULL,
            kind      TEXT NOT NULL,
            uniqueid  TEXT NOT NULL DEFAULT '',
            detail    TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX call_events_call ON call_events(call_id, id);
        """,
    ),
    (
        2,
        """
        -- The full domain Call as JSON, so that a restarted service can adopt calls still live
        -- in Asterisk (after a kill -9) without losing what it already knew about them.
        ALTER TABLE calls ADD COLUMN snapshot TEXT NOT NULL DEFAULT '{}';
        """,
    ),
)
