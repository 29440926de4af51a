//! What operators read: the conversation list and a conversation's messages in and out (with
//! their delivery status), on a connection of their own.

use super::conversations::{Holder, ASKED_FOR_PERSON, HELD_FOR_PERSON};
use super::{Sqlite, StoreError};
use crate::inbox::LaneKey;
use rusqlite::{params, Connection};

/// One line of the conversation list.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub lane: LaneKey,
    pub contact_name: Option<String>,
    pub holder: Holder,
    /// Unix ms of the newest message in or out.
    pub last_message_at: i64,
    /// The customer opted out (a STOP keyword or WhatsApp's marketing stop).
    pub opted_out: bool,
}

/// One message of a conversation, in or out.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub inbound: bool,
    /// customer | agent | operator
    pub author: String,
    pub kind: String,
    pub text: String,
    /// Unix ms.
    pub at: i64,
    /// In: the inbox state (pending, done, skipped...). Out: pending, sent, delivered, read,
    /// failed.
    pub status: String,
    /// Meta's id: the inbound wamid, or the wamid Meta gave an accepted outbound part.
    pub message_id: Option<String>,
    /// In: the id of the button or list row the customer tapped. Out: none.
    pub reply_id: Option<String>,
    /// Out: why the part was not sent (`outside_24h_window: ...`, a Graph error).
    pub error: Option<String>,
}

/// Newest activity first. One row per conversation a customer ever wrote in. One pass over
/// `inbound` (the contact name is the newest message's, SQLite's bare column beside `MAX`).
fn list(conn: &Connection, only_human: bool) -> rusqlite::Result<Vec<ConversationRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.phone_number_id, l.user,
                COALESCE(l.contact_name, (SELECT contact_name FROM inbound n
                   WHERE n.phone_number_id = l.phone_number_id AND n.user = l.user
                   AND contact_name IS NOT NULL ORDER BY seq DESC LIMIT 1)),
                COALESCE(c.state, 'agent'),
                MAX(i.received_at, COALESCE((SELECT MAX(created_at) FROM outbox o
                   WHERE o.phone_number_id = l.phone_number_id AND o.user = l.user), 0)) AS last,
                COALESCE(c.opted_out, 0) <> 0
         FROM (SELECT phone_number_id, user, contact_name, MAX(seq) AS seq
               FROM inbound GROUP BY phone_number_id, user) l
         JOIN inbound i ON i.seq = l.seq
         LEFT JOIN conversations c ON c.phone_number_id = l.phone_number_id AND c.user = l.user
         WHERE (?1 = 0 OR c.state = 'human')
         ORDER BY last DESC",
    )?;
    let rows = stmt.query_map(params![only_human as i64], |r| {
        let state: String = r.get(3)?;
        Ok(ConversationRow {
            lane: LaneKey {
                phone_number_id: r.get(0)?,
                user: r.get(1)?,
            },
            contact_name: r.get(2)?,
            holder: if state == "human" {
                Holder::Human
            } else {
                Holder::Agent
            },
            last_message_at: r.get(4)?,
            opted_out: r.get(5)?,
        })
    })?;
    let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    // A customer who stopped marketing messages in WhatsApp before ever writing is listed too.
    let mut silent = super::opt_out::opted_out(conn)?;
    silent.retain(|o| !rows.iter().any(|r| r.lane == o.lane));
    if !silent.is_empty() {
        for o in silent {
            let holder = holder_of(conn, &o.lane)?;
            if only_human && holder != Holder::Human {
                continue;
            }
            rows.push(ConversationRow {
                lane: o.lane,
                contact_name: None,
                holder,
                last_message_at: o.since,
                opted_out: true,
            });
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.last_message_at));
    }
    Ok(rows)
}

fn holder_of(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Holder> {
    let state: String = conn
        .prepare_cached("SELECT state FROM conversations WHERE phone_number_id = ?1 AND user = ?2")?
        .query_row(params![lane.phone_number_id, lane.user], |r| r.get(0))?;
    Ok(if state == "human" {
        Holder::Human
    } else {
        Holder::Agent
    })
}

/// Text the console shows for an inbound message, from Meta's JSON.
const INBOUND_TEXT: &str = "COALESCE(json_extract(r.raw, '$.text.body'),
    json_extract(r.raw, '$.interactive.button_reply.title'),
    json_extract(r.raw, '$.interactive.list_reply.title'),
    json_extract(r.raw, '$.button.text'),
    json_extract(r.raw, '$.image.caption'), json_extract(r.raw, '$.video.caption'),
    json_extract(r.raw, '$.document.caption'), json_extract(r.raw, '$.document.filename'),
    json_extract(r.raw, '$.reaction.emoji'), json_extract(r.raw, '$.location.name'), '')";

/// The id of the button or list row a customer tapped (or a template button's payload).
const INBOUND_REPLY_ID: &str = "COALESCE(json_extract(r.raw, '$.interactive.button_reply.id'),
    json_extract(r.raw, '$.interactive.list_reply.id'), json_extract(r.raw, '$.button.payload'))";

/// Meta's `type` of an outbound part (the part's message JSON names it; text has none).
const PART_KIND: &str = "CASE json_extract(p.message, '$.type')
    WHEN 'buttons' THEN 'interactive' WHEN 'list' THEN 'interactive'
    ELSE COALESCE(json_extract(p.message, '$.type'), 'text') END";

/// The delivery status of an outbound part: Meta's latest, else what we know from sending
/// (`held`: waiting for the customer to reopen the 24-hour window; `not_sent`: its turn or
/// message was closed before it went out, a take-over say).
fn part_status(owner_closed: &str) -> String {
    format!(
        "COALESCE(s.status, CASE WHEN p.outbound_id IS NOT NULL THEN 'sent'
         WHEN p.error IS NOT NULL THEN 'failed' WHEN p.held_at IS NOT NULL THEN 'held'
         WHEN {owner_closed} THEN 'not_sent' ELSE 'pending' END)"
    )
}

/// `None` when no customer ever wrote in this conversation.
fn messages(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Option<Vec<MessageRow>>> {
    let turn_status = part_status("t.state <> 'running'");
    let outbox_status = part_status("o.state <> 'pending'");
    // By time; on a tie (a turn claimed in the commit that recorded its message, its part not
    // yet recorded as sent) the customer's message first.
    let sql = format!(
        "SELECT 1, 'customer', i.kind, {INBOUND_TEXT}, i.received_at, i.state, i.seq, i.message_id,
                {INBOUND_REPLY_ID}, NULL
           FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
           WHERE i.phone_number_id = ?1 AND i.user = ?2
         UNION ALL
         SELECT 0, 'agent', {PART_KIND}, p.text, COALESCE(p.sent_at, t.started_at), {turn_status}, p.idx, p.outbound_id,
                NULL, p.error
           FROM turns t JOIN reply_parts p ON p.turn_id = t.id
           LEFT JOIN outbound_status s ON s.message_id = p.outbound_id
           WHERE t.phone_number_id = ?1 AND t.user = ?2
         UNION ALL
         SELECT 0, o.author, {PART_KIND}, p.text, COALESCE(p.sent_at, o.created_at), {outbox_status}, p.idx, p.outbound_id,
                NULL, p.error
           FROM outbox o JOIN reply_parts p ON p.turn_id = -o.id
           LEFT JOIN outbound_status s ON s.message_id = p.outbound_id
           WHERE o.phone_number_id = ?1 AND o.user = ?2
         ORDER BY 5, 1 DESC, 7"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params![lane.phone_number_id, lane.user], |r| {
            Ok(MessageRow {
                inbound: r.get::<_, i64>(0)? == 1,
                author: r.get(1)?,
                kind: r.get(2)?,
                text: r.get(3)?,
                at: r.get(4)?,
                status: r.get(5)?,
                message_id: r.get(7)?,
                reply_id: r.get(8)?,
                error: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(if rows.iter().any(|m| m.inbound) {
        Some(rows)
    } else {
        None
    })
}

/// Meta's timestamp (unix seconds) of the customer's newest message.
fn last_customer_timestamp(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT MAX(timestamp) FROM inbound WHERE phone_number_id = ?1 AND user = ?2",
    )?
    .query_row(params![lane.phone_number_id, lane.user], |r| r.get(0))
}

/// When (unix ms) the customer last wrote, for the 24-hour window: Meta's timestamp of each
/// message, or its arrival time when that timestamp is implausibly old (see
/// `whatsapp::window`). The one full pass over a conversation's messages; the hot path of a
/// turn reads its own messages first and comes here only when those say the window closed.
fn last_customer_at(conn: &Connection, lane: &LaneKey) -> rusqlite::Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT timestamp, received_at FROM inbound WHERE phone_number_id = ?1 AND user = ?2",
    )?;
    let rows = stmt.query_map(params![lane.phone_number_id, lane.user], |r| {
        Ok(crate::whatsapp::window::customer_message_at(
            r.get(0)?,
            r.get(1)?,
        ))
    })?;
    let mut last = None;
    for at in rows {
        let at = at?;
        last = Some(last.map_or(at, |l: i64| l.max(at)));
    }
    Ok(last)
}

/// Reads for operators go through the store's read connection: WAL lets it read beside the
/// writer, so a console listing a long history never holds up the commits webhooks wait for.
pub(super) async fn read<T: Send + 'static>(
    store: &Sqlite,
    op: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    store.reader.read(op).await
}

/// What the customer wrote while a person had the conversation, received in (after, until]
/// (unix ms): (text, unix ms), oldest first.
fn held(
    conn: &Connection,
    lane: &LaneKey,
    after: i64,
    until: i64,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let sql = format!(
        "SELECT {INBOUND_TEXT}, i.received_at FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
         WHERE i.phone_number_id = ?1 AND i.user = ?2 AND i.note IN (?3, ?4)
           AND i.received_at > ?5 AND i.received_at <= ?6
         ORDER BY i.seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            lane.phone_number_id,
            lane.user,
            HELD_FOR_PERSON,
            ASKED_FOR_PERSON,
            after,
            until
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    rows.collect()
}

impl Sqlite {
    /// The customer's messages to the person (never seen by the agent), received in
    /// (after, until] (unix ms), for the conversation memory.
    pub(super) async fn held_messages(
        &self,
        lane: LaneKey,
        after: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        read(self, move |c| held(c, &lane, after, until)).await
    }

    pub(super) async fn conversations(
        &self,
        only_human: bool,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        read(self, move |c| list(c, only_human)).await
    }

    /// `None` when the conversation is unknown.
    pub(super) async fn conversation_messages(
        &self,
        lane: LaneKey,
    ) -> Result<Option<Vec<MessageRow>>, StoreError> {
        read(self, move |c| messages(c, &lane)).await
    }

    /// When the customer last wrote (unix ms), as the 24-hour window counts it.
    pub(super) async fn last_customer_at(&self, lane: LaneKey) -> Result<Option<i64>, StoreError> {
        read(self, move |c| last_customer_at(c, &lane)).await
    }

    /// Meta's timestamp of the customer's newest message (unix seconds).
    pub(super) async fn last_customer_timestamp(
        &self,
        lane: LaneKey,
    ) -> Result<Option<i64>, StoreError> {
        read(self, move |c| last_customer_timestamp(c, &lane)).await
    }
}
