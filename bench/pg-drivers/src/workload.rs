//! The per-message workload, written once for both drivers: the statements of wagate's
//! PostgreSQL hot path for one message answered in a turn of its own (one message per turn, the
//! common case at low latency), in the order a turn runs them, on wagate's own schema
//! (`migrations/postgres/*.sql`, applied by `bench/pg-drivers.sh`).
//!
//! 1. Intake and claim, one transaction (`postgres/intake.rs`, `turns.rs`, `lease.rs`): the
//!    message row `ON CONFLICT (message_id) DO NOTHING` and its raw body; the conversation's
//!    lease row made sure of, locked `FOR UPDATE SKIP LOCKED` and taken with a new fence; the
//!    turn inserted; the message marked taken.
//! 2. The memory window read (`memory.rs`): the conversation's newest 20 entries.
//! 3. The reply saved, fenced (`parts.rs`), and read back (a SELECT of the turn's parts).
//! 4. The part marked `sending`, then `sent`, each one fenced statement.
//! 5. The turn's two memory entries appended, fenced (arrays, as wagate binds them).
//! 6. Finish, one transaction (`turns.rs`): the fence checked `FOR UPDATE`, the turn and the
//!    message closed, the lease given back.
//!
//! "Fenced": the statement only writes while the lease row (locked `FOR SHARE` in the same
//! statement) still names this replica with the turn's fence, as wagate's `fenced_sql` does.
//! Every statement is prepared once per connection (cached) by both drivers. Each step takes
//! its own connection from the pool, as wagate's store does.

/// The conversation's replica id, as wagate's (host, pid, random).
pub const REPLICA: &str = "bench-replica";

/// Lease length in milliseconds (wagate's `LEASE`).
pub const LEASE_MS: f64 = 30_000.0;

/// Memory entries read per turn (wagate's default window).
pub const MEMORY_WINDOW: i64 = 20;

pub const INSERT_INBOUND: &str = "INSERT INTO inbound (message_id, phone_number_id,
         display_phone_number, customer, contact_name, kind, meta_timestamp, received_at, state)
     VALUES ($1, $2, $3, $4, $5, 'text', $6, $7, 'pending')
     ON CONFLICT (message_id) DO NOTHING
     RETURNING seq";

pub const INSERT_RAW: &str = "INSERT INTO inbound_raw (seq, raw) VALUES ($1, $2)";

pub const ENSURE_LEASE: &str = "INSERT INTO leases (phone_number_id, customer) VALUES ($1, $2)
     ON CONFLICT (phone_number_id, customer) DO NOTHING";

pub const LOCK_LEASE: &str = "SELECT owner, expires_at < now() FROM leases
     WHERE phone_number_id = $1 AND customer = $2 FOR UPDATE SKIP LOCKED";

pub const TAKE_LEASE: &str = "UPDATE leases SET owner = $3, fence = nextval('lease_fence'),
         expires_at = now() + $4::float8 * interval '1 millisecond', taken_at = now()
     WHERE phone_number_id = $1 AND customer = $2
     RETURNING fence";

pub const INSERT_TURN: &str = "INSERT INTO turns (phone_number_id, customer, state, attempts,
         started_at)
     VALUES ($1, $2, 'running', 1, $3) RETURNING id";

pub const TAKE_MESSAGES: &str = "UPDATE inbound SET state = 'taken', turn_id = $1
     WHERE seq = ANY($2) AND state = 'pending'";

pub const MEMORY_WINDOW_SQL: &str = "SELECT id, role, content, created_at, media FROM memory
     WHERE key = $1 AND created_at >= $2
     ORDER BY created_at DESC, id DESC LIMIT $3";

pub const LOAD_REPLY: &str = "SELECT idx, text, outbound_id, sending_at, message, held_at
     FROM reply_parts WHERE turn_id = $1 ORDER BY idx";

/// wagate's `fenced_sql`: `$1` the turn, `$2` the replica, `$3` its fences; the statement's
/// own parameters from `$4`. Answers (lease held, rows written).
macro_rules! fenced {
    ($statement:literal) => {
        concat!(
            "WITH lease AS (SELECT 1 FROM leases l JOIN turns t
                 ON t.phone_number_id = l.phone_number_id AND t.customer = l.customer
               WHERE t.id = $1 AND l.owner = $2 AND l.fence = ANY($3) FOR SHARE OF l),
             done AS (",
            $statement,
            " RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM lease), (SELECT COUNT(*) FROM done)"
        )
    };
}

pub const SAVE_REPLY: &str = fenced!(
    "INSERT INTO reply_parts (turn_id, idx, text, message)
     SELECT $1, p.idx, p.text, p.message
     FROM unnest($4::int[], $5::text[], $6::text[]) AS p(idx, text, message)
     WHERE EXISTS (SELECT 1 FROM lease)
     ON CONFLICT (turn_id, idx) DO NOTHING"
);

pub const MARK_SENDING: &str = fenced!(
    "UPDATE reply_parts SET sending_at = $5
     WHERE turn_id = $1 AND idx = $4 AND outbound_id IS NULL
       AND EXISTS (SELECT 1 FROM lease)"
);

pub const MARK_SENT: &str = fenced!(
    "UPDATE reply_parts SET outbound_id = $5, sent_at = $6, sending_at = NULL, held_at = NULL
     WHERE turn_id = $1 AND idx = $4 AND outbound_id IS NULL"
);

pub const APPEND_MEMORY: &str = fenced!(
    "INSERT INTO memory (key, turn_id, position, role, content, created_at, media)
     SELECT $4::text, $1, e.position, e.role, e.content, e.created_at, e.media
     FROM unnest($5::int[], $6::text[], $7::text[], $8::bigint[], $9::text[])
          AS e(position, role, content, created_at, media)
     WHERE EXISTS (SELECT 1 FROM lease)
     ON CONFLICT (key, turn_id, position) DO NOTHING"
);

pub const FENCED_LANE: &str = "SELECT l.phone_number_id, l.customer, l.fence FROM leases l
     JOIN turns t ON t.phone_number_id = l.phone_number_id AND t.customer = l.customer
     WHERE t.id = $1 AND l.owner = $2 AND l.fence = ANY($3) FOR UPDATE OF l";

pub const CLOSE_TURN: &str =
    "UPDATE turns SET state = $2, finished_at = $3, error = $4 WHERE id = $1";

pub const CLOSE_MESSAGES: &str =
    "UPDATE inbound SET state = $2, note = $3 WHERE turn_id = $1 AND state = 'taken'";

pub const RELEASE_LEASE: &str = "UPDATE leases SET owner = NULL, expires_at = now()
     WHERE phone_number_id = $1 AND customer = $2";

/// Tables emptied before each run, so every run starts from the same state.
pub const RESET: &str = "TRUNCATE inbound, inbound_raw, turns, reply_parts, memory, leases
     RESTART IDENTITY";

/// One message's inputs: what a webhook and a model would bring.
pub struct Message {
    pub message_id: String,
    pub phone_number_id: &'static str,
    pub display_phone_number: &'static str,
    pub customer: String,
    pub contact_name: &'static str,
    pub meta_timestamp: i64,
    pub raw: String,
    pub memory_key: String,
    pub user_text: String,
    pub reply_text: String,
    pub outbound_id: String,
}

/// Conversations each task cycles through: each message finds its conversation's lease row
/// and memory already there, as a customer's second message onward does.
pub const CONVERSATIONS_PER_TASK: u64 = 4;

impl Message {
    /// Message `n` of task `task`, in run `run` (message ids never repeat across runs).
    pub fn new(run: &str, task: usize, n: u64) -> Message {
        let customer = format!("4915{task:04}{:04}", n % CONVERSATIONS_PER_TASK);
        let message_id = format!("wamid.bench.{run}.{task}.{n}");
        let user_text = format!(
            "Hello, I ordered a blue jacket last week (order {task}-{n}) and it has not arrived \
             yet. Can you tell me where it is?"
        );
        let raw = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Bench Customer"}},"wa_id":"{customer}"}}],"messages":[{{"from":"{customer}","id":"{message_id}","timestamp":"1764750000","text":{{"body":"{user_text}"}},"type":"text"}}]}},"field":"messages"}}]}}]}}"#
        );
        Message {
            memory_key: format!("106540352242922:{customer}"),
            reply_text: format!(
                "Thank you for your patience. Order {task}-{n} left our warehouse on Monday and \
                 the carrier expects to deliver it tomorrow before noon. You will receive a \
                 tracking link by e-mail within the hour."
            ),
            outbound_id: format!("wamid.out.{run}.{task}.{n}"),
            phone_number_id: "106540352242922",
            display_phone_number: "15550783881",
            contact_name: "Bench Customer",
            meta_timestamp: 1_764_750_000,
            customer,
            message_id,
            raw,
            user_text,
        }
    }
}

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
