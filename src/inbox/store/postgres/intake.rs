//! Recording a webhook slice on PostgreSQL, in one transaction: the conversations' state
//! (handoff, opt-out) decides which messages are answered, the messages are inserted with
//! `ON CONFLICT (message_id) DO NOTHING` (a redelivery, to any replica, is a duplicate),
//! statuses and dead letters follow, and the turns of the conversations the dispatcher
//! reserved are claimed under their leases. The caller answers Meta's `200` only after the
//! commit.

use super::turns::{claim, Claimed};
use super::{intake_hooks, intake_lane, PgStore};
use crate::inbox::store::conversations::HELD_FOR_PERSON;
use crate::inbox::store::opt_out::WHILE_OPTED_OUT;
use crate::inbox::store::parts::PartRef;
use crate::inbox::store::{Batch, InboundState, MessageState, RecordOutcome, StoreError};
use crate::inbox::{LaneKey, Turn};
use deadpool_postgres::Transaction;
use std::collections::HashMap;

impl PgStore {
    pub(crate) async fn record_slice(
        &self,
        mut batch: Batch,
        lanes: Vec<LaneKey>,
    ) -> Result<(RecordOutcome, Vec<Turn>), StoreError> {
        let (outcome, claimed) = match intake_lane::single_lane(&batch, &lanes) {
            // The common body: one statement (`intake_lane.rs`).
            Some(lane) => {
                let (outcome, claimed) = self.record_lane(&batch, &lane, !lanes.is_empty()).await?;
                (outcome, claimed.map(|c| (lane, c)).into_iter().collect())
            }
            None => {
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(|e| self.error(e))?;
                let recorded =
                    self.record_in(&tx, &mut batch, &lanes)
                        .await
                        .map_err(|e| match e {
                            Failed::Db(e) => self.error(e),
                            Failed::Store(e) => e,
                        })?;
                tx.commit().await.map_err(|e| self.error(e))?;
                recorded
            }
        };
        // The turns take the parsed JSON the webhook already holds, instead of parsing it again.
        let mut parsed: HashMap<String, serde_json::Value> = batch
            .messages
            .iter_mut()
            .filter_map(|m| m.json.take().map(|j| (m.message_id.clone(), j)))
            .collect();
        let turns = claimed
            .into_iter()
            .map(|(lane, mut c)| {
                for (record, _) in &mut c.turn.messages {
                    if let Some(json) = parsed.remove(&record.message_id) {
                        record.raw = json;
                    }
                }
                self.register(lane, c)
            })
            .collect();
        Ok((outcome, turns))
    }

    async fn record_in(
        &self,
        tx: &Transaction<'_>,
        batch: &mut Batch,
        lanes: &[LaneKey],
    ) -> Result<(RecordOutcome, Vec<(LaneKey, Claimed)>), Failed> {
        // Keyword handoffs, opt-out changes and reactions (the other intake steps).
        let hooks = intake_hooks::intake_hooks(tx, batch).await?;
        hold_by_conversation_state(tx, batch).await?;
        let (mut outcome, new_pending) = insert_messages(tx, batch).await?;
        outcome.handed_over = hooks.handed_over;
        outcome.opted_out = hooks.opted_out;
        outcome.resumed = hooks.resumed;
        record_statuses(tx, &self.inner.database_id, batch).await?;
        if let Some(id) = batch.replaces_dead_letter {
            let stmt = tx
                .prepare_cached("DELETE FROM dead_letters WHERE id = $1")
                .await?;
            tx.execute(&stmt, &[&id]).await?;
        }
        if !batch.dead_letters.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO dead_letters (received_at, reason, body) VALUES ($1, $2, $3)",
                )
                .await?;
            let now = crate::inbox::store::now_millis();
            for (reason, body) in &batch.dead_letters {
                tx.execute(&stmt, &[&now, reason, body]).await?;
            }
        }
        outcome.new_dead_letters = batch.dead_letters.len();

        // The reserved conversations' turns, after the messages are in: each takes its lane's
        // oldest pending messages (a concurrent webhook's first), in arrival order.
        let mut claimed = Vec::new();
        if lanes.len() > 1 {
            super::lease::ensure_rows(tx, lanes).await?;
        }
        for lane in lanes {
            if let Some(c) = claim(tx, &self.inner.replica, lane, false).await? {
                claimed.push((lane.clone(), c));
            }
        }
        // A lane whose new messages did not all go into a turn (another replica holds it, an
        // interrupted turn comes first, the cap) must still be told to the dispatcher.
        let in_turns: std::collections::HashSet<&str> = claimed
            .iter()
            .flat_map(|(_, c)| c.turn.messages.iter().map(|(m, _)| m.message_id.as_str()))
            .collect();
        let waiting: Vec<&LaneKey> = new_pending
            .iter()
            .filter(|(_, id)| !in_turns.contains(id.as_str()))
            .map(|(lane, _)| lane)
            .collect();
        outcome.new_pending.retain(|lane| waiting.contains(&lane));
        Ok((outcome, claimed))
    }
}

/// Errors inside the transaction: the driver's, or the store's own (a pending hook).
pub(crate) enum Failed {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Failed {
        Failed::Db(e)
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Failed {
        Failed::Store(e)
    }
}

/// Messages to answer of a conversation a person has are kept without a turn; so are those
/// of a customer who opted out (one read of the batch's conversations).
async fn hold_by_conversation_state(
    tx: &Transaction<'_>,
    batch: &mut Batch,
) -> Result<(), tokio_postgres::Error> {
    let mut pnids: Vec<&str> = Vec::new();
    let mut users: Vec<&str> = Vec::new();
    for m in batch
        .messages
        .iter()
        .filter(|m| m.state == InboundState::Pending)
    {
        let seen = pnids
            .iter()
            .zip(&users)
            .any(|(p, u)| *p == m.lane.phone_number_id && *u == m.lane.user);
        if !seen {
            pnids.push(&m.lane.phone_number_id);
            users.push(&m.lane.user);
        }
    }
    if pnids.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(
            "SELECT c.phone_number_id, c.customer, c.opted_out, c.state = 'human'
             FROM conversations c
             JOIN unnest($1::text[], $2::text[]) AS b(pnid, customer)
               ON c.phone_number_id = b.pnid AND c.customer = b.customer
             WHERE c.opted_out OR c.state = 'human'",
        )
        .await?;
    let rows = tx.query(&stmt, &[&pnids, &users]).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let held: Vec<(LaneKey, bool)> = rows
        .iter()
        .map(|r| {
            (
                LaneKey {
                    phone_number_id: r.get(0),
                    user: r.get(1),
                },
                r.get::<_, bool>(2),
            )
        })
        .collect();
    for m in batch.messages.iter_mut() {
        if m.state != InboundState::Pending {
            continue;
        }
        if let Some((_, opted_out)) = held.iter().find(|(lane, _)| *lane == m.lane) {
            m.state = InboundState::Skipped;
            m.note = Some(
                if *opted_out {
                    WHILE_OPTED_OUT
                } else {
                    HELD_FOR_PERSON
                }
                .into(),
            );
        }
    }
    Ok(())
}

/// A batch's messages column by column, as the statements that insert them take them.
pub(super) struct Columns<'a> {
    pub(super) ids: Vec<&'a str>,
    pub(super) pnids: Vec<&'a str>,
    pub(super) displays: Vec<&'a str>,
    pub(super) users: Vec<&'a str>,
    pub(super) names: Vec<Option<&'a str>>,
    pub(super) kinds: Vec<&'a str>,
    pub(super) stamps: Vec<i64>,
    pub(super) states: Vec<&'static str>,
    pub(super) notes: Vec<Option<&'a str>>,
    pub(super) raws: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    pub(super) fn of(batch: &'a Batch) -> Columns<'a> {
        let m = &batch.messages;
        Columns {
            ids: m.iter().map(|m| m.message_id.as_str()).collect(),
            pnids: m.iter().map(|m| m.lane.phone_number_id.as_str()).collect(),
            displays: m.iter().map(|m| m.display_phone_number.as_str()).collect(),
            users: m.iter().map(|m| m.lane.user.as_str()).collect(),
            names: m.iter().map(|m| m.contact_name.as_deref()).collect(),
            kinds: m.iter().map(|m| m.kind.as_str()).collect(),
            stamps: m.iter().map(|m| m.timestamp).collect(),
            states: m.iter().map(|m| m.state.stored().as_str()).collect(),
            notes: m.iter().map(|m| m.note.as_deref()).collect(),
            raws: m.iter().map(|m| m.raw.as_str()).collect(),
        }
    }
}

/// Insert the batch's messages and their JSON in one statement, in body order. Returns the
/// outcome's counts and the new messages to answer (lane, message id).
async fn insert_messages(
    tx: &Transaction<'_>,
    batch: &Batch,
) -> Result<(RecordOutcome, Vec<(LaneKey, String)>), tokio_postgres::Error> {
    let mut outcome = RecordOutcome::default();
    let mut new_pending = Vec::new();
    if batch.messages.is_empty() {
        return Ok((outcome, new_pending));
    }
    let c = Columns::of(batch);
    let received_at = crate::inbox::store::now_millis();
    // The JSON goes with the row inserted: of two copies of one message in a body, the first
    // (the one `ON CONFLICT` keeps).
    let insert = tx
        .prepare_cached(
            "WITH m AS (
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                      $6::text[], $7::bigint[], $8::text[], $9::text[], $11::text[])
                      WITH ORDINALITY AS m(id, pnid, display, customer, name, kind, ts, state, note, raw, ord)
             ), ins AS (
                 INSERT INTO inbound (message_id, phone_number_id, display_phone_number, customer,
                     contact_name, kind, meta_timestamp, received_at, state, note)
                 SELECT id, pnid, display, customer, name, kind, ts, $10::bigint, state, note
                 FROM m ORDER BY ord
                 ON CONFLICT (message_id) DO NOTHING
                 RETURNING seq, message_id
             ), raw AS (
                 INSERT INTO inbound_raw (seq, raw)
                 SELECT DISTINCT ON (ins.seq) ins.seq, m.raw
                 FROM ins JOIN m ON m.id = ins.message_id ORDER BY ins.seq, m.ord
             )
             SELECT seq, message_id FROM ins",
        )
        .await?;
    let rows = tx
        .query(
            &insert,
            &[
                &c.ids,
                &c.pnids,
                &c.displays,
                &c.users,
                &c.names,
                &c.kinds,
                &c.stamps,
                &c.states,
                &c.notes,
                &received_at,
                &c.raws,
            ],
        )
        .await?;
    let inserted: HashMap<String, i64> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    let mut counted = std::collections::HashSet::new();
    for m in &batch.messages {
        // The first of two copies of a message in one body is the one inserted.
        match inserted.get(&m.message_id) {
            Some(seq) if counted.insert(*seq) => {}
            _ => {
                outcome.duplicates += 1;
                continue;
            }
        }
        match m.state.stored() {
            MessageState::Pending => {
                outcome.new_pending_messages += 1;
                new_pending.push((m.lane.clone(), m.message_id.clone()));
                if !outcome.new_pending.contains(&m.lane) {
                    outcome.new_pending.push(m.lane.clone());
                }
            }
            _ => outcome.new_skipped += 1,
        }
    }
    Ok((outcome, new_pending))
}

/// Statuses only move forward (sent < delivered < read < played; failed is terminal), since
/// Meta delivers them out of order. A status whose callback data names one of this
/// database's parts confirms that part as accepted: how a part a dead replica left `sending`
/// is settled, whichever replica Meta posts the status to. Not fenced: it records Meta's fact.
async fn record_statuses(
    tx: &Transaction<'_>,
    database: &str,
    batch: &Batch,
) -> Result<(), tokio_postgres::Error> {
    if batch.statuses.is_empty() {
        return Ok(());
    }
    let upsert = tx
        .prepare_cached(
            "INSERT INTO outbound_status (message_id, recipient, status, rank, updated_at, errors, pricing)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (message_id) DO UPDATE SET
                 status = excluded.status, rank = excluded.rank, updated_at = excluded.updated_at,
                 errors = COALESCE(excluded.errors, outbound_status.errors),
                 pricing = COALESCE(excluded.pricing, outbound_status.pricing)
             WHERE excluded.rank > outbound_status.rank",
        )
        .await?;
    let confirm = tx
        .prepare_cached(
            "UPDATE reply_parts SET outbound_id = $3, sent_at = $4, sending_at = NULL, held_at = NULL
             WHERE turn_id = $1 AND idx = $2 AND outbound_id IS NULL",
        )
        .await?;
    let parts = tx
        .prepare_cached(
            "UPDATE reply_parts SET status = $2, status_rank = $3
             WHERE outbound_id = $1 AND status_rank < $3",
        )
        .await?;
    let now = crate::inbox::store::now_millis();
    for s in &batch.statuses {
        let rank = s.rank as i32;
        tx.execute(
            &upsert,
            &[
                &s.message_id,
                &s.recipient,
                &s.status,
                &rank,
                &now,
                &s.errors,
                &s.pricing,
            ],
        )
        .await?;
        let ours = s
            .callback_data
            .as_deref()
            .and_then(PartRef::parse)
            .filter(|p| p.database == database);
        if let Some(part) = ours {
            let idx = part.index as i32;
            tx.execute(&confirm, &[&part.turn_id, &idx, &s.message_id, &now])
                .await?;
        }
        tx.execute(&parts, &[&s.message_id, &s.status, &rank])
            .await?;
    }
    Ok(())
}
