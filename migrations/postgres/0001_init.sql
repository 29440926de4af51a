-- wagate's schema on PostgreSQL, version 1: the same tables as the SQLite inbox
-- (src/inbox/store/schema.rs and the files by concern), plus the conversation leases that let
-- several replicas share the database. Applied once, under an advisory lock, by the first
-- replica that starts (src/inbox/store/postgres/migrate.rs); later changes are new files.
--
-- Names as in SQLite except: `user` (a reserved word here) is `customer`, `timestamp` (Meta's
-- seconds) is `meta_timestamp`. Times are unix milliseconds in BIGINT, as in SQLite, except
-- the leases, which use the database's own clock (timestamptz) so replicas' clocks never
-- decide who owns a conversation.

-- One row per fact about the database: its random id (the `<db>` of every send's callback
-- data `wagate:<db>:<turn>:<part>`, shared by all replicas), the readiness probe.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every message Meta delivered, once: the unique message id is the dedupe key, so a
-- redelivery to any replica is recognised.
CREATE TABLE inbound (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- arrival order
    message_id           TEXT NOT NULL UNIQUE,
    phone_number_id      TEXT NOT NULL,
    display_phone_number TEXT NOT NULL DEFAULT '',
    customer             TEXT NOT NULL,
    contact_name         TEXT,
    kind                 TEXT NOT NULL,
    meta_timestamp       BIGINT NOT NULL,
    received_at          BIGINT NOT NULL,                  -- unix ms
    state                TEXT NOT NULL,                    -- pending | taken | done | failed | skipped
    turn_id              BIGINT,
    note                 TEXT
);
-- The message JSON, written once, so state changes rewrite small rows.
CREATE TABLE inbound_raw (
    seq BIGINT PRIMARY KEY,
    raw TEXT NOT NULL
);
CREATE INDEX inbound_pending_by_lane ON inbound (phone_number_id, customer, seq)
    WHERE state = 'pending';
CREATE INDEX inbound_open_by_lane ON inbound (phone_number_id, customer, seq)
    WHERE state IN ('pending', 'taken');
CREATE INDEX inbound_by_turn_id ON inbound (turn_id) WHERE turn_id IS NOT NULL;
CREATE INDEX inbound_by_lane ON inbound (phone_number_id, customer, seq);
CREATE INDEX inbound_received_at ON inbound (received_at);   -- retention

CREATE TABLE turns (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    customer        TEXT NOT NULL,
    state           TEXT NOT NULL,                         -- running | done | failed | requeued
    attempts        INTEGER NOT NULL DEFAULT 1,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    error           TEXT
);
CREATE INDEX turns_running ON turns (phone_number_id, customer) WHERE state = 'running';
CREATE INDEX turns_by_lane ON turns (phone_number_id, customer, id);

-- A turn's reply (turn_id > 0) or an outbox message's parts (turn_id = -outbox id).
CREATE TABLE reply_parts (
    turn_id     BIGINT NOT NULL,
    idx         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    message     TEXT,                                      -- JSON of a non-text message
    outbound_id TEXT,                                      -- Meta's id once accepted
    sending_at  BIGINT,                                    -- handed to Meta at (ms), answer not yet recorded
    held_at     BIGINT,                                    -- held for the 24-hour window since (ms)
    status      TEXT,
    status_rank INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    sent_at     BIGINT,
    PRIMARY KEY (turn_id, idx)
);
CREATE INDEX reply_parts_outbound ON reply_parts (outbound_id) WHERE outbound_id IS NOT NULL;
CREATE INDEX reply_parts_held ON reply_parts (turn_id) WHERE held_at IS NOT NULL;

CREATE TABLE outbound_status (
    message_id TEXT PRIMARY KEY,
    recipient  TEXT,
    status     TEXT NOT NULL,
    rank       INTEGER NOT NULL,
    updated_at BIGINT NOT NULL,
    errors     TEXT,
    pricing    TEXT
);

CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);

-- Conversation memory (src/inbox/store/memory.rs).
CREATE TABLE memory (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        TEXT NOT NULL,
    turn_id    BIGINT NOT NULL,
    position   INTEGER NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content    TEXT NOT NULL,
    created_at BIGINT NOT NULL,                            -- unix seconds
    media      TEXT,                                       -- JSON of the images' ids, NULL without
    UNIQUE (key, turn_id, position)
);
CREATE INDEX memory_key_created_at ON memory (key, created_at);
CREATE INDEX memory_created_at ON memory (created_at);

-- Who has each conversation (agent | human) and the customer's opt-out.
CREATE TABLE conversations (
    phone_number_id  TEXT NOT NULL,
    customer         TEXT NOT NULL,
    state            TEXT NOT NULL,                        -- agent | human
    since            BIGINT NOT NULL,                      -- unix ms of the last state change
    trigger          TEXT,                                 -- operator | keyword | tool | timeout
    reason           TEXT,
    last_operator_at BIGINT,
    opted_out        BOOLEAN NOT NULL DEFAULT FALSE,
    opted_out_at     BIGINT,                               -- unix ms of the change
    opt_source       TEXT,                                 -- keyword | user_preferences
    opt_ts           BIGINT,                               -- Meta's seconds of the change
    PRIMARY KEY (phone_number_id, customer)
);
CREATE INDEX conversations_human ON conversations (since) WHERE state = 'human';
CREATE INDEX conversations_opted_out ON conversations (phone_number_id, customer) WHERE opted_out;

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    customer        TEXT NOT NULL,
    author          TEXT NOT NULL,                         -- operator | agent
    text            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    state           TEXT NOT NULL,                         -- pending | sent | failed
    error           TEXT,
    reopens         BIGINT                                 -- the customer message a window template reopens for
);
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX outbox_by_lane ON outbox (phone_number_id, customer);

CREATE TABLE reactions (
    phone_number_id TEXT NOT NULL,
    customer        TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    emoji           TEXT NOT NULL,                         -- '' once removed
    message_id      TEXT NOT NULL,
    reacted_at      BIGINT NOT NULL,                       -- Meta's seconds
    to_agent        BOOLEAN NOT NULL,
    PRIMARY KEY (phone_number_id, customer, target_id)
);

-- Which replica answers a conversation now (src/inbox/store/postgres/lease.rs). A row per
-- conversation that was ever claimed; `owner` NULL when free. `fence` comes from
-- `lease_fence` on every claim, so it only grows: a write carrying an older fence is refused.
CREATE SEQUENCE lease_fence;
CREATE TABLE leases (
    phone_number_id TEXT NOT NULL,
    customer        TEXT NOT NULL,
    owner           TEXT,                                  -- the replica's id (host, pid, random)
    fence           BIGINT NOT NULL DEFAULT 0,
    expires_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    taken_at        TIMESTAMPTZ,
    PRIMARY KEY (phone_number_id, customer)
);
CREATE INDEX leases_by_owner ON leases (owner) WHERE owner IS NOT NULL;
