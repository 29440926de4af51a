//! The inbox schema. Created on open; every statement is idempotent so a restart (or an
//! operator command opening the same file while the server runs) is safe.

use rusqlite::Connection;

use super::Durability;

/// Tables and indexes.
///
/// `seq` is a plain rowid (no AUTOINCREMENT, which costs a write to `sqlite_sequence` per
/// message): a new row always gets a larger seq than every row present, which is all arrival
/// order needs. Databases created with AUTOINCREMENT keep it; it changes nothing for queries.
///
/// The message JSON lives in `inbound_raw`, written once: `inbound` rows stay small (about
/// 150 bytes), so the state changes of a turn (taken, then done) rewrite a few shared pages
/// instead of one page per message.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS inbound (
    seq                  INTEGER PRIMARY KEY,                -- arrival order: the answering order
    message_id           TEXT NOT NULL UNIQUE,               -- Meta's wamid: the dedupe key
    phone_number_id      TEXT NOT NULL,
    display_phone_number TEXT NOT NULL DEFAULT '',
    user                 TEXT NOT NULL,
    contact_name         TEXT,
    kind                 TEXT NOT NULL,
    timestamp            INTEGER NOT NULL,
    received_at          INTEGER NOT NULL,                   -- unix milliseconds
    state                TEXT NOT NULL,                      -- pending | taken | done | failed | skipped (states.rs)
    turn_id              INTEGER,
    note                 TEXT                                -- why it was skipped or failed
);
CREATE TABLE IF NOT EXISTS inbound_raw (
    seq                  INTEGER PRIMARY KEY,                -- inbound.seq
    raw                  TEXT NOT NULL                       -- the message object as Meta sent it
);
-- Partial indexes stay as small as the backlog, however long the history grows. Queries must
-- repeat each index's WHERE term exactly for SQLite to use it (tests check the query plans).
CREATE INDEX IF NOT EXISTS inbound_pending_by_lane
    ON inbound (phone_number_id, user, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS inbound_open_by_lane
    ON inbound (phone_number_id, user, seq) WHERE state IN ('pending', 'taken');
-- Messages get a turn id when claimed, in increasing order: entries are appended, and a message
-- waiting for its turn costs no entry.
CREATE INDEX IF NOT EXISTS inbound_by_turn_id ON inbound (turn_id) WHERE turn_id IS NOT NULL;
-- Earlier layout: every message in it from its insert on (turn_id NULL until claimed).
DROP INDEX IF EXISTS inbound_by_turn;

CREATE TABLE IF NOT EXISTS turns (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number_id TEXT NOT NULL,
    user            TEXT NOT NULL,
    state           TEXT NOT NULL,                           -- running | done | failed | requeued (states.rs)
    attempts        INTEGER NOT NULL DEFAULT 1,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    error           TEXT
);
CREATE INDEX IF NOT EXISTS turns_running ON turns (phone_number_id, user) WHERE state = 'running';

CREATE TABLE IF NOT EXISTS reply_parts (
    turn_id     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    outbound_id TEXT,                                        -- set once Meta accepted the part
    sending_at  INTEGER,                                     -- handed to Meta at (ms), answer not yet recorded
    status      TEXT,                                        -- latest delivery status
    status_rank INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    sent_at     INTEGER,
    PRIMARY KEY (turn_id, idx)
);
CREATE INDEX IF NOT EXISTS reply_parts_outbound ON reply_parts (outbound_id);

CREATE TABLE IF NOT EXISTS outbound_status (
    message_id  TEXT PRIMARY KEY,                            -- the wamid Meta gave our send
    recipient   TEXT,
    status      TEXT NOT NULL,
    rank        INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    errors      TEXT,
    pricing     TEXT
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    body        TEXT NOT NULL
);
"#;

/// Pragmas for the write connection. WAL lets readers (operator commands, memory) run beside
/// the writer; `synchronous = FULL` makes each commit reach the disk before the 200 goes out,
/// and group commit keeps that affordable.
pub(super) fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous(durability))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Sorting and grouping scratch space in memory, never in a temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The background checkpointer (`checkpoint`) copies the WAL into the database as it grows;
    // the writer's own automatic checkpoint, which lets the WAL start over from its beginning,
    // then finds little left to copy. Every 4000 pages (16 MiB) instead of 1000: 4 times fewer
    // such pauses (and database fsyncs) on the writer's path.
    conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Pragmas for the background checkpoint connection: its checkpoints sync like the writer's.
pub(super) fn configure_checkpointer(
    conn: &Connection,
    durability: Durability,
) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", synchronous(durability))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    }
}

/// Create (or bring up to date) the tables and indexes; idempotent.
pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    move_raw_out_of_inbound(conn)?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(super::memory::SCHEMA)?;
    add_column(conn, "reply_parts", "sending_at", "INTEGER")?;
    super::conversations::create(conn)?;
    // Opt-out, reactions, media kept in memory (issue 13, inbound side).
    super::opt_out::create(conn)?;
    super::reactions::create(conn)?;
    add_column(conn, "memory", "media", "TEXT")?;
    native_out(conn)
}

/// WhatsApp-native replies: a part may be any message (`message`, JSON; NULL for text) and may
/// be held for the 24-hour window (`held_at`, indexed while held); a window template in the
/// outbox names the customer message it reopens for (`reopens`, so it goes out once); outbox
/// parts are reply parts keyed by the negated outbox id (moved from `outbox_parts`, once).
fn native_out(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "reply_parts", "message", "TEXT")?;
    add_column(conn, "reply_parts", "held_at", "INTEGER")?;
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS reply_parts_held ON reply_parts (turn_id) WHERE held_at IS NOT NULL",
    )?;
    add_column(conn, "outbox", "reopens", "INTEGER")?;
    let old_outbox_parts: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_parts'",
        [],
        |r| r.get(0),
    )?;
    if old_outbox_parts {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             INSERT OR IGNORE INTO reply_parts (turn_id, idx, text, outbound_id, sent_at, error)
                 SELECT -outbox_id, idx, text, outbound_id, sent_at, error FROM outbox_parts;
             DROP TABLE outbox_parts;
             COMMIT;",
        )?;
    }
    Ok(())
}

/// Earlier layouts lack a column added since: add it (NULL in existing rows), once.
pub(super) fn add_column(
    conn: &Connection,
    table: &str,
    column: &str,
    kind: &str,
) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        rusqlite::params![table, column],
        |r| r.get(0),
    )?;
    if !present {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
    }
    Ok(())
}

/// Earlier layout: the JSON in `inbound.raw`. Move it to `inbound_raw`, once, in one transaction.
fn move_raw_out_of_inbound(conn: &Connection) -> rusqlite::Result<()> {
    let has_raw: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('inbound') WHERE name = 'raw'",
        [],
        |r| r.get(0),
    )?;
    if !has_raw {
        return Ok(());
    }
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS inbound_raw (seq INTEGER PRIMARY KEY, raw TEXT NOT NULL);
         INSERT OR IGNORE INTO inbound_raw (seq, raw) SELECT seq, raw FROM inbound;
         ALTER TABLE inbound DROP COLUMN raw;
         COMMIT;",
    )
}
