"""Explicit, versioned schema migrations. Append new steps; never edit a released one."""

from __future__ import annotations

# Times are stored as UTC ISO-8601 text with microseconds and a trailing Z (sortable, readable).
# The duty roster (store.roster reads it from here). No ';' inside a statement or a comment:
# the migration runner splits on it.
ROSTER_SCHEMA = """
CREATE TABLE agents (
    name         TEXT PRIMARY KEY,            -- the queue MemberName
    display_name TEXT NOT NULL DEFAULT '',
    interface    TEXT NOT NULL UNIQUE,        -- Local/agent1@lab-agents/n, PJSIP/1001
    queues       TEXT NOT NULL DEFAULT '[]',  -- JSON array of queue names
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE shifts (
    id         INTEGER PRIMARY KEY,
    agent      TEXT NOT NULL REFERENCES agents(name),
    start_utc  TEXT NOT NULL,
    end_utc    TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('agent', 'leader')),
    source     TEXT NOT NULL DEFAULT '',     -- import:FILE, change:ID, edit
    note       TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CHECK (end_utc > start_utc)
);
CREATE INDEX shifts_start ON shifts(start_utc);
CREATE INDEX shifts_agent ON shifts(agent, start_utc);

CREATE TABLE shift_breaks (
    shift_id  INTEGER NOT NULL REFERENCES shifts(id) ON DELETE CASCADE,
    start_utc TEXT NOT NULL,
    end_utc   TEXT NOT NULL,
    PRIMARY KEY (shift_id, start_utc),
    CHECK (end_utc > start_utc)
);

CREATE TABLE roster_changes (
    id            INTEGER PRIMARY KEY,
    requested_by  TEXT NOT NULL,
    requested_at  TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('swap', 'change')),
    payload       TEXT NOT NULL,             -- JSON: what is asked
    reason        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by    TEXT,
    decided_at    TEXT,
    decision_note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX roster_changes_status ON roster_changes(status, id);

-- Append-only: who did what to the roster and the queues, when, with the details as JSON.
CREATE TABLE roster_audit (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    who    TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX roster_audit_at ON roster_audit(at)
"""

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
    (
        3,
        """
        -- One row per call recording. `path` is a bare file name in the recordings root, and rows
        -- are never deleted: retention turns them into tombstones (status deleted).
        CREATE TABLE recordings (
            recording_id  TEXT PRIMARY KEY,          -- 16 hex digits derived from call_id
            call_id       TEXT NOT NULL UNIQUE,      -- the Linkedid
            path          TEXT NOT NULL,
            format        TEXT NOT NULL,
            status        TEXT NOT NULL,             -- recording|complete|missing|failed|deleted
            started_at    TEXT NOT NULL,
            ended_at      TEXT,
            duration      REAL,                      -- seconds, from the audio itself
            size          INTEGER,
            sha256        TEXT,
            call_span     REAL,                      -- seconds the call was recorded, from events
            problem       TEXT NOT NULL DEFAULT '',  -- why the recording is flagged
            evidence      INTEGER NOT NULL DEFAULT 0,
            caller_number TEXT NOT NULL DEFAULT '',
            caller_name   TEXT NOT NULL DEFAULT '',
            agent         TEXT NOT NULL DEFAULT '',
            disposition   TEXT NOT NULL DEFAULT '',
            queue         TEXT NOT NULL DEFAULT '',
            deleted_at    TEXT,
            deleted_by    TEXT,
            delete_reason TEXT,
            updated_at    TEXT NOT NULL
        );
        CREATE INDEX recordings_started ON recordings(started_at, recording_id);
        CREATE INDEX recordings_agent ON recordings(agent, started_at);
        CREATE INDEX recordings_caller ON recordings(caller_number, started_at);
        CREATE INDEX recordings_disposition ON recordings(disposition, started_at);
        CREATE INDEX recordings_evidence ON recordings(started_at) WHERE evidence = 1;
        CREATE INDEX recordings_unsettled ON recordings(status) WHERE status = 'recording';

        -- Evidence flags, append-only: who flagged which call, when and why.
        CREATE TABLE evidence (
            id         INTEGER PRIMARY KEY,
            call_id    TEXT NOT NULL,
            kind       TEXT NOT NULL,
            reason     TEXT NOT NULL,
            flagged_by TEXT NOT NULL,
            flagged_at TEXT NOT NULL
        );
        CREATE INDEX evidence_call ON evidence(call_id);

        CREATE TABLE users (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            role        TEXT NOT NULL,               -- agent|supervisor|operator
            agent       TEXT NOT NULL DEFAULT '',    -- queue member name of an agent
            password    TEXT NOT NULL,               -- scrypt$n$r$p$salt$hash
            disabled    INTEGER NOT NULL DEFAULT 0,
            session_gen INTEGER NOT NULL DEFAULT 0,  -- bumped to end every session of the user
            created_at  TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        );
        CREATE TABLE api_tokens (
            id           INTEGER PRIMARY KEY,
            user_id      INTEGER NOT NULL REFERENCES users(id),
            token_sha256 TEXT NOT NULL UNIQUE,
            label        TEXT NOT NULL DEFAULT '',
            created_at   TEXT NOT NULL,
            revoked      INTEGER NOT NULL DEFAULT 0
        );

        -- Every access to recordings (list, view, play, download) and every change to them
        -- (evidence, deletion), append-only.
        CREATE TABLE audit_log (
            id           INTEGER PRIMARY KEY,
            at           TEXT NOT NULL,
            actor        TEXT NOT NULL,
            role         TEXT NOT NULL DEFAULT '',
            action       TEXT NOT NULL,
            recording_id TEXT,
            call_id      TEXT,
            client       TEXT NOT NULL DEFAULT '',
            detail       TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_recording ON audit_log(recording_id, id);
        CREATE INDEX audit_at ON audit_log(at);
        """,
    ),
    (
        4,
        ROSTER_SCHEMA  # its last statement has no trailing ";"
        + ";"
        + """
        -- Callback requests: after-hours callers who asked for a call back, complaints to
        -- follow up. Written through ivr_agent.store.callbacks.
        CREATE TABLE callbacks (
            id            INTEGER PRIMARY KEY,
            call_id       TEXT NOT NULL DEFAULT '',
            caller_number TEXT NOT NULL,
            reason        TEXT NOT NULL CHECK (reason IN ('after_hours','complaint','other')),
            due_at        TEXT NOT NULL,
            status        TEXT NOT NULL DEFAULT 'open'
                          CHECK (status IN ('open','done','cancelled')),
            note          TEXT NOT NULL DEFAULT '',
            created_by    TEXT NOT NULL,
            created_at    TEXT NOT NULL,
            closed_by     TEXT NOT NULL DEFAULT '',
            closed_at     TEXT
        );
        CREATE INDEX callbacks_open ON callbacks(status, due_at);
        """,
    ),
    (
        5,
        """
        -- The agent desk: customer files keyed by phone number, complaints (5 steps) with an
        -- append-only history, callers' suggestions, the blacklist. Written through
        -- ivr_agent.store.customers / complaints / blacklist.
        CREATE TABLE customers (
            number     TEXT PRIMARY KEY,
            name       TEXT NOT NULL DEFAULT '',
            notes      TEXT NOT NULL DEFAULT '',
            tags       TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
            version    INTEGER NOT NULL DEFAULT 1,   -- optimistic locking: an edit names it
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL DEFAULT ''
        );

        CREATE TABLE complaints (
            id            INTEGER PRIMARY KEY,
            call_id       TEXT NOT NULL,
            caller_number TEXT NOT NULL,
            agent         TEXT NOT NULL,
            category      TEXT NOT NULL DEFAULT '',
            steps         TEXT NOT NULL DEFAULT '[]', -- JSON array: the notes of steps 1..5
            promised_at   TEXT,
            status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN
                          ('open','in_progress','awaiting_callback','resolved','closed')),
            callback_id   INTEGER,
            version       INTEGER NOT NULL DEFAULT 1,
            created_by    TEXT NOT NULL,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        );
        CREATE INDEX complaints_caller ON complaints(caller_number, id);

        -- Append-only: every change to a complaint, with the new values as JSON.
        CREATE TABLE complaint_history (
            id           INTEGER PRIMARY KEY,
            complaint_id INTEGER NOT NULL REFERENCES complaints(id),
            at           TEXT NOT NULL,
            actor        TEXT NOT NULL,
            action       TEXT NOT NULL,
            detail       TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX complaint_history_of ON complaint_history(complaint_id, id);

        CREATE TABLE suggestions (
            id            INTEGER PRIMARY KEY,
            call_id       TEXT NOT NULL,
            caller_number TEXT NOT NULL,
            agent         TEXT NOT NULL,
            text          TEXT NOT NULL,
            department    TEXT NOT NULL,
            created_at    TEXT NOT NULL
        );

        CREATE TABLE blacklist (
            id            INTEGER PRIMARY KEY,
            number        TEXT NOT NULL,
            reason        TEXT NOT NULL,
            status        TEXT NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending','approved','rejected','removed')),
            proposed_by   TEXT NOT NULL,
            proposed_at   TEXT NOT NULL,
            decided_by    TEXT NOT NULL DEFAULT '',
            decided_at    TEXT,
            decision_note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX blacklist_number ON blacklist(number, id);
        -- The screen pop reads a caller's previous calls on the hot path of every pop.
        CREATE INDEX calls_caller ON calls(caller_number, started_at);
        """,
    ),
    (
        6,
        """
        -- Supervisor alerts (long calls, private calls from agent lines): one per kind and
        -- call, kept across restarts, acknowledged by a supervisor (audited in roster_audit).
        CREATE TABLE alerts (
            id              INTEGER PRIMARY KEY,
            kind            TEXT NOT NULL,
            call_id         TEXT NOT NULL,
            agent           TEXT NOT NULL DEFAULT '',
            at              TEXT NOT NULL,
            detail          TEXT NOT NULL DEFAULT '',
            acknowledged_by TEXT,
            acknowledged_at TEXT
        );
        CREATE UNIQUE INDEX alerts_once ON alerts(kind, call_id);
        CREATE INDEX alerts_at ON alerts(at);
        """,
    ),
    (
        7,
        """
        -- Callbacks are worked: an agent on duty claims an open one (only then sees its number),
        -- closes it or releases it. '' = not claimed. Written through ivr_agent.store.callbacks.
        ALTER TABLE callbacks ADD COLUMN assigned_to TEXT NOT NULL DEFAULT '';
        ALTER TABLE callbacks ADD COLUMN claimed_at TEXT;
        CREATE INDEX callbacks_closed ON callbacks(closed_at) WHERE status != 'open'
        """,
    ),
)
