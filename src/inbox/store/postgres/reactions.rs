//! Reactions on PostgreSQL: the current emoji per reacted message (`reactions`), as SQLite's
//! `reactions.rs` keeps it. The intake step runs inside the webhook's transaction; a late
//! redelivery of an older reaction (Meta's timestamp) never overwrites a newer one, whichever
//! replica records it.

use super::super::reactions::{REACTION_NOT_TO_AGENT, REACTION_REMOVED};
use super::super::{Batch, InboundState, Reaction, StoreError};
use super::PgStore;
use crate::inbox::LaneKey;
use deadpool_postgres::GenericClient;
use tokio_postgres::Error;

/// The intake step: every new reaction of the batch updates its message's row. A reaction
/// marked to be answered stays so only when it is an emoji on one of our messages. One of a
/// conversation a person has (or an opted-out customer's) is left to the held-message step,
/// which gives it that note, as SQLite's order does.
pub(crate) async fn record<C: GenericClient>(c: &C, batch: &mut Batch) -> Result<(), Error> {
    let mut held_lanes: Vec<(LaneKey, bool)> = Vec::new();
    for m in batch.messages.iter_mut().filter(|m| m.kind == "reaction") {
        let (target, emoji) = {
            let parsed: serde_json::Value;
            let json = match &m.json {
                Some(json) => json,
                None => {
                    parsed = serde_json::from_str(&m.raw).unwrap_or_default();
                    &parsed
                }
            };
            let reaction = &json["reaction"];
            let Some(target) = reaction["message_id"].as_str().filter(|t| !t.is_empty()) else {
                continue;
            };
            let emoji = reaction["emoji"].as_str().unwrap_or("").trim().to_owned();
            (target.to_owned(), emoji)
        };
        let seen = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM inbound WHERE message_id = $1)")
            .await?;
        let seen: bool = c.query_one(&seen, &[&m.message_id]).await?.get(0);
        if seen {
            continue;
        }
        let to_agent = sent_by_us(c, &target).await?.is_some();
        let upsert = c
            .prepare_cached(
                "INSERT INTO reactions (phone_number_id, customer, target_id, emoji, message_id,
                     reacted_at, to_agent)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (phone_number_id, customer, target_id) DO UPDATE SET
                     emoji = EXCLUDED.emoji, message_id = EXCLUDED.message_id,
                     reacted_at = EXCLUDED.reacted_at, to_agent = EXCLUDED.to_agent
                 WHERE EXCLUDED.reacted_at >= reactions.reacted_at",
            )
            .await?;
        c.execute(
            &upsert,
            &[
                &m.lane.phone_number_id,
                &m.lane.user,
                &target,
                &emoji,
                &m.message_id,
                &m.timestamp,
                &to_agent,
            ],
        )
        .await?;
        let held = match held_lanes.iter().find(|(lane, _)| *lane == m.lane) {
            Some((_, held)) => *held,
            None => {
                let held = held_lane(c, &m.lane).await?;
                held_lanes.push((m.lane.clone(), held));
                held
            }
        };
        if m.state == InboundState::Pending && !held {
            if emoji.is_empty() {
                m.state = InboundState::Skipped;
                m.note = Some(REACTION_REMOVED.into());
            } else if !to_agent {
                m.state = InboundState::Skipped;
                m.note = Some(REACTION_NOT_TO_AGENT.into());
            }
        }
    }
    Ok(())
}

/// Whether the conversation's messages are held (a person has it, or the customer opted out).
async fn held_lane<C: GenericClient>(c: &C, lane: &LaneKey) -> Result<bool, Error> {
    let stmt = c
        .prepare_cached(
            "SELECT state = 'human' OR opted_out FROM conversations
             WHERE phone_number_id = $1 AND customer = $2",
        )
        .await?;
    let row = c
        .query_opt(&stmt, &[&lane.phone_number_id, &lane.user])
        .await?;
    Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
}

/// The text of our message `target` (a part of an agent reply or of an operator's message),
/// `None` when we did not send it.
async fn sent_by_us<C: GenericClient>(c: &C, target: &str) -> Result<Option<String>, Error> {
    let stmt = c
        .prepare_cached("SELECT text FROM reply_parts WHERE outbound_id = $1 LIMIT 1")
        .await?;
    Ok(c.query_opt(&stmt, &[&target]).await?.map(|r| r.get(0)))
}

async fn reactions<C: GenericClient>(c: &C, lane: &LaneKey) -> Result<Vec<Reaction>, Error> {
    let rows = c
        .query(
            "SELECT target_id, emoji, reacted_at, to_agent FROM reactions
             WHERE phone_number_id = $1 AND customer = $2 AND emoji <> '' ORDER BY reacted_at",
            &[&lane.phone_number_id, &lane.user],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Reaction {
            target_id: r.get(0),
            emoji: r.get(1),
            reacted_at: r.get(2),
            to_agent: r.get(3),
        })
        .collect())
}

impl PgStore {
    pub(crate) async fn sent_message_text(
        &self,
        wamid: String,
    ) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        sent_by_us(&c, &wamid).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn reactions(&self, lane: LaneKey) -> Result<Vec<Reaction>, StoreError> {
        let c = self.client().await?;
        reactions(&c, &lane).await.map_err(|e| self.error(e))
    }
}
