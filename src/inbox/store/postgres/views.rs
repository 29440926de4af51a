//! What operators read on PostgreSQL: the conversation list, a conversation's messages in and
//! out with their delivery status, what the customer wrote to a person, and when the customer
//! last wrote (the 24-hour window). The same queries as SQLite's `conversation_view.rs`, in
//! PostgreSQL's dialect (`->>` for Meta's JSON, `GREATEST`).
//!
//! Index: `inbound_by_lane (phone_number_id, customer, seq) INCLUDE (meta_timestamp,
//! received_at)` (migration 0002): the list's newest message per conversation, a
//! conversation's messages, and the window's pass over one customer's timestamps are index
//! scans of that conversation alone (index-only for the window), however long the whole
//! history is.

use super::super::conversation_view::{ConversationRow, MessageRow};
use super::super::conversations::{ASKED_FOR_PERSON, HELD_FOR_PERSON};
use super::super::{Holder, StoreError};
use super::PgStore;
use crate::inbox::LaneKey;
use deadpool_postgres::GenericClient;
use tokio_postgres::Error;

/// Text the console shows for an inbound message, from Meta's JSON.
const INBOUND_TEXT: &str = "COALESCE(r.raw::jsonb -> 'text' ->> 'body',
    r.raw::jsonb -> 'interactive' -> 'button_reply' ->> 'title',
    r.raw::jsonb -> 'interactive' -> 'list_reply' ->> 'title',
    r.raw::jsonb -> 'button' ->> 'text',
    r.raw::jsonb -> 'image' ->> 'caption', r.raw::jsonb -> 'video' ->> 'caption',
    r.raw::jsonb -> 'document' ->> 'caption', r.raw::jsonb -> 'document' ->> 'filename',
    r.raw::jsonb -> 'reaction' ->> 'emoji', r.raw::jsonb -> 'location' ->> 'name', '')";

/// The id of the button or list row a customer tapped (or a template button's payload).
const INBOUND_REPLY_ID: &str = "COALESCE(r.raw::jsonb -> 'interactive' -> 'button_reply' ->> 'id',
    r.raw::jsonb -> 'interactive' -> 'list_reply' ->> 'id', r.raw::jsonb -> 'button' ->> 'payload')";

/// Meta's `type` of an outbound part (the part's message JSON names it; text has none).
const PART_KIND: &str = "CASE p.message::jsonb ->> 'type'
    WHEN 'buttons' THEN 'interactive' WHEN 'list' THEN 'interactive'
    ELSE COALESCE(p.message::jsonb ->> 'type', 'text') END";

/// The delivery status of an outbound part (see SQLite's `part_status`).
fn part_status(owner_closed: &str) -> String {
    format!(
        "COALESCE(s.status, CASE WHEN p.outbound_id IS NOT NULL THEN 'sent'
         WHEN p.error IS NOT NULL THEN 'failed' WHEN p.held_at IS NOT NULL THEN 'held'
         WHEN {owner_closed} THEN 'not_sent' ELSE 'pending' END)"
    )
}

fn holder_of(state: &str) -> Holder {
    if state == "human" {
        Holder::Human
    } else {
        Holder::Agent
    }
}

/// Newest activity first; one row per conversation a customer ever wrote in, and the
/// customers who opted out in WhatsApp before ever writing.
async fn list<C: GenericClient>(c: &C, only_human: bool) -> Result<Vec<ConversationRow>, Error> {
    let rows = c
        .query(
            "SELECT l.phone_number_id, l.customer,
                    COALESCE(i.contact_name, (SELECT n.contact_name FROM inbound n
                       WHERE n.phone_number_id = l.phone_number_id AND n.customer = l.customer
                       AND n.contact_name IS NOT NULL ORDER BY n.seq DESC LIMIT 1)),
                    COALESCE(c.state, 'agent'),
                    GREATEST(i.received_at, COALESCE((SELECT MAX(o.created_at) FROM outbox o
                       WHERE o.phone_number_id = l.phone_number_id AND o.customer = l.customer), 0))
                       AS last,
                    COALESCE(c.opted_out, FALSE)
             FROM (SELECT phone_number_id, customer, MAX(seq) AS seq
                   FROM inbound GROUP BY phone_number_id, customer) l
             JOIN inbound i ON i.seq = l.seq
             LEFT JOIN conversations c
                    ON c.phone_number_id = l.phone_number_id AND c.customer = l.customer
             WHERE NOT $1 OR c.state = 'human'
             ORDER BY last DESC",
            &[&only_human],
        )
        .await?;
    let mut list: Vec<ConversationRow> = rows
        .iter()
        .map(|r| ConversationRow {
            lane: LaneKey {
                phone_number_id: r.get(0),
                user: r.get(1),
            },
            contact_name: r.get(2),
            holder: holder_of(r.get(3)),
            last_message_at: r.get(4),
            opted_out: r.get(5),
        })
        .collect();
    // A customer who stopped marketing messages in WhatsApp before ever writing is listed too.
    let silent = c
        .query(
            "SELECT c.phone_number_id, c.customer, c.state, COALESCE(c.opted_out_at, c.since)
             FROM conversations c
             WHERE c.opted_out AND (NOT $1 OR c.state = 'human')
               AND NOT EXISTS (SELECT 1 FROM inbound i
                   WHERE i.phone_number_id = c.phone_number_id AND i.customer = c.customer)",
            &[&only_human],
        )
        .await?;
    if !silent.is_empty() {
        list.extend(silent.iter().map(|r| ConversationRow {
            lane: LaneKey {
                phone_number_id: r.get(0),
                user: r.get(1),
            },
            contact_name: None,
            holder: holder_of(r.get(2)),
            last_message_at: r.get(3),
            opted_out: true,
        }));
        list.sort_by_key(|r| std::cmp::Reverse(r.last_message_at));
    }
    Ok(list)
}

/// `None` when no customer ever wrote in this conversation.
async fn messages<C: GenericClient>(
    c: &C,
    lane: &LaneKey,
) -> Result<Option<Vec<MessageRow>>, Error> {
    let turn_status = part_status("t.state <> 'running'");
    let outbox_status = part_status("o.state <> 'pending'");
    // By time; on a tie (a turn claimed in the commit that recorded its message, its part not
    // yet recorded as sent) the customer's message first.
    let sql = format!(
        "SELECT TRUE, 'customer', i.kind, {INBOUND_TEXT}, i.received_at, i.state,
                i.seq, i.message_id, {INBOUND_REPLY_ID}, NULL::text
           FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
           WHERE i.phone_number_id = $1 AND i.customer = $2
         UNION ALL
         SELECT FALSE, 'agent', {PART_KIND}, p.text, COALESCE(p.sent_at, t.started_at),
                {turn_status}, p.idx::bigint, p.outbound_id, NULL::text, p.error
           FROM turns t JOIN reply_parts p ON p.turn_id = t.id
           LEFT JOIN outbound_status s ON s.message_id = p.outbound_id
           WHERE t.phone_number_id = $1 AND t.customer = $2
         UNION ALL
         SELECT FALSE, o.author, {PART_KIND}, p.text, COALESCE(p.sent_at, o.created_at),
                {outbox_status}, p.idx::bigint, p.outbound_id, NULL::text, p.error
           FROM outbox o JOIN reply_parts p ON p.turn_id = -o.id
           LEFT JOIN outbound_status s ON s.message_id = p.outbound_id
           WHERE o.phone_number_id = $1 AND o.customer = $2
         ORDER BY 5, 1 DESC, 7"
    );
    let rows = c
        .query(sql.as_str(), &[&lane.phone_number_id, &lane.user])
        .await?;
    let rows: Vec<MessageRow> = rows
        .iter()
        .map(|r| MessageRow {
            inbound: r.get(0),
            author: r.get(1),
            kind: r.get(2),
            text: r.get(3),
            at: r.get(4),
            status: r.get(5),
            message_id: r.get(7),
            reply_id: r.get(8),
            error: r.get(9),
        })
        .collect();
    Ok(rows.iter().any(|m| m.inbound).then_some(rows))
}

/// Meta's timestamp (unix seconds) of the customer's newest message.
async fn last_customer_timestamp<C: GenericClient>(
    c: &C,
    lane: &LaneKey,
) -> Result<Option<i64>, Error> {
    let stmt = c
        .prepare_cached(
            "SELECT MAX(meta_timestamp) FROM inbound WHERE phone_number_id = $1 AND customer = $2",
        )
        .await?;
    Ok(c.query_one(&stmt, &[&lane.phone_number_id, &lane.user])
        .await?
        .get(0))
}

/// When (unix ms) the customer last wrote, for the 24-hour window: the same rule as SQLite's
/// (`whatsapp::window::customer_message_at` over every message of the conversation, an
/// index-only scan of `inbound_by_lane`).
async fn last_customer_at<C: GenericClient>(c: &C, lane: &LaneKey) -> Result<Option<i64>, Error> {
    let stmt = c
        .prepare_cached(
            "SELECT meta_timestamp, received_at FROM inbound WHERE phone_number_id = $1 AND customer = $2",
        )
        .await?;
    let rows = c.query(&stmt, &[&lane.phone_number_id, &lane.user]).await?;
    Ok(rows
        .iter()
        .map(|r| crate::whatsapp::window::customer_message_at(r.get(0), r.get(1)))
        .max())
}

/// What the customer wrote while a person had the conversation, received in (after, until].
async fn held<C: GenericClient>(
    c: &C,
    lane: &LaneKey,
    after: i64,
    until: i64,
) -> Result<Vec<(String, i64)>, Error> {
    let sql = format!(
        "SELECT {INBOUND_TEXT}, i.received_at FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
         WHERE i.phone_number_id = $1 AND i.customer = $2 AND i.note IN ($3, $4)
           AND i.received_at > $5 AND i.received_at <= $6
         ORDER BY i.seq"
    );
    let rows = c
        .query(
            sql.as_str(),
            &[
                &lane.phone_number_id,
                &lane.user,
                &HELD_FOR_PERSON,
                &ASKED_FOR_PERSON,
                &after,
                &until,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

impl PgStore {
    pub(crate) async fn held_messages(
        &self,
        lane: LaneKey,
        after: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let c = self.client().await?;
        held(&c, &lane, after, until)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn conversations(
        &self,
        only_human: bool,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        let c = self.client().await?;
        list(&c, only_human).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn conversation_messages(
        &self,
        lane: LaneKey,
    ) -> Result<Option<Vec<MessageRow>>, StoreError> {
        let c = self.client().await?;
        messages(&c, &lane).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn last_customer_at(&self, lane: LaneKey) -> Result<Option<i64>, StoreError> {
        let c = self.client().await?;
        last_customer_at(&c, &lane).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn last_customer_timestamp(
        &self,
        lane: LaneKey,
    ) -> Result<Option<i64>, StoreError> {
        let c = self.client().await?;
        last_customer_timestamp(&c, &lane)
            .await
            .map_err(|e| self.error(e))
    }
}
