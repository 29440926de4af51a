//! What the benchmark saw, per message, written lock-free by the fakes and the load generator.
//!
//! Every message has an index `i` (its id is `wamid.e2e.<i>`); each stage stores the first
//! instant it saw that message, as nanoseconds since `origin` plus one (0 means "not seen"), so
//! hundreds of concurrent handlers never contend on a lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The id prefix of every inbound message the bench sends.
pub const ID_PREFIX: &str = "wamid.e2e.";

/// The stages of one message's life that the bench can observe from outside the server.
#[derive(Clone, Copy, Debug)]
pub enum Stage {
    /// The webhook POST got its answer (200 or not).
    WebhookAnswered = 0,
    /// The read receipt for the message reached the fake Graph.
    ReadReceipt = 1,
    /// The chat request carrying the message reached the fake model.
    ModelCalled = 2,
    /// The reply quoting the message reached the fake Graph (the headline number).
    ReplyAccepted = 3,
}

const STAGES: usize = 4;

/// Per-message observations, shared by the fakes and the load generator.
pub struct Tally {
    pub origin: Instant,
    users: usize,
    seen: [Vec<AtomicU64>; STAGES],
    /// How many replies quoted each message (exactly-once wants 1 for the last message of each
    /// turn, 0 for the others).
    replies: Vec<AtomicU32>,
    /// How many model calls carried each message as the user's new input (exactly-once wants 1).
    asked: Vec<AtomicU32>,
    /// The last message (index + 1) of the turn that carried each message: the one its reply
    /// quotes. Messages of one user that arrive while that user's turn runs are answered
    /// together by the next turn, so a reply can answer several messages.
    turn_of: Vec<AtomicU64>,
    /// The same for the first model call that carried each message: differs from `turn_of`
    /// when two different turns answered one message.
    first_turn_of: Vec<AtomicU64>,
    /// Count of webhook answers per HTTP status code.
    statuses: Vec<AtomicU64>,
    pub webhook_ok: AtomicU64,
    pub webhook_rejected: AtomicU64,
    pub webhook_errors: AtomicU64,
    /// Replies sent to a number other than the one that wrote the quoted message.
    pub wrong_recipient: AtomicU64,
    /// Sends that quoted no message of this run (or none at all).
    pub unknown_replies: AtomicU64,
    pub read_receipts: AtomicU64,
    pub model_calls: AtomicU64,
    pub out_ids: AtomicU64,
}

impl Tally {
    pub fn new(messages: usize, users: usize, origin: Instant) -> Self {
        let column = || (0..messages).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Tally {
            origin,
            users,
            seen: [column(), column(), column(), column()],
            replies: (0..messages).map(|_| AtomicU32::new(0)).collect(),
            asked: (0..messages).map(|_| AtomicU32::new(0)).collect(),
            turn_of: column(),
            first_turn_of: column(),
            statuses: (0..600).map(|_| AtomicU64::new(0)).collect(),
            webhook_ok: AtomicU64::new(0),
            webhook_rejected: AtomicU64::new(0),
            webhook_errors: AtomicU64::new(0),
            wrong_recipient: AtomicU64::new(0),
            unknown_replies: AtomicU64::new(0),
            read_receipts: AtomicU64::new(0),
            model_calls: AtomicU64::new(0),
            out_ids: AtomicU64::new(0),
        }
    }

    pub fn messages(&self) -> usize {
        self.replies.len()
    }

    /// The WhatsApp number of the user who writes message `i`.
    pub fn user_of(&self, i: usize) -> String {
        user_number(i % self.users)
    }

    /// The message index behind an inbound id of this run.
    pub fn index_of(&self, message_id: &str) -> Option<usize> {
        let i: usize = message_id.strip_prefix(ID_PREFIX)?.parse().ok()?;
        (i < self.messages()).then_some(i)
    }

    /// Records the first time `stage` saw message `i`.
    pub fn mark(&self, stage: Stage, i: usize, at: Instant) {
        let nanos = at.saturating_duration_since(self.origin).as_nanos() as u64 + 1;
        let _ = self.seen[stage as usize][i].compare_exchange(
            0,
            nanos,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// When `stage` first saw message `i`, if it did.
    pub fn seen_at(&self, stage: Stage, i: usize) -> Option<Instant> {
        match self.seen[stage as usize][i].load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.origin + Duration::from_nanos(nanos - 1)),
        }
    }

    /// Records a model call whose new user input carried `indexes` (in order).
    pub fn asked(&self, indexes: &[usize], at: Instant) {
        let indexes: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|&i| i < self.messages())
            .collect();
        let Some(&last) = indexes.iter().max() else {
            return;
        };
        for &i in &indexes {
            self.asked[i].fetch_add(1, Ordering::Relaxed);
            self.turn_of[i].store(last as u64 + 1, Ordering::Relaxed);
            let _ = self.first_turn_of[i].compare_exchange(
                0,
                last as u64 + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            self.mark(Stage::ModelCalled, i, at);
        }
    }

    /// Whether two different turns carried message `i`.
    pub fn carried_twice(&self, i: usize) -> bool {
        self.first_turn_of[i].load(Ordering::Relaxed) != self.turn_of[i].load(Ordering::Relaxed)
    }

    /// Counts a webhook answer's HTTP status.
    pub fn webhook_status(&self, status: u16) {
        if let Some(n) = self.statuses.get(usize::from(status)) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(status, count)` of every status the webhook answered with.
    pub fn webhook_statuses(&self) -> Vec<(usize, u64)> {
        self.statuses
            .iter()
            .enumerate()
            .map(|(code, n)| (code, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// How many model calls carried message `i` as new input.
    pub fn times_asked(&self, i: usize) -> u32 {
        self.asked[i].load(Ordering::Relaxed)
    }

    /// The message whose reply answers message `i` (the last message of its turn).
    pub fn turn_of(&self, i: usize) -> Option<usize> {
        match self.turn_of[i].load(Ordering::Relaxed) {
            0 => None,
            n => Some(n as usize - 1),
        }
    }

    /// When `stage` happened for message `i`: a read receipt and a reply concern the last
    /// message of the turn that carried `i`.
    pub fn stage_at(&self, stage: Stage, i: usize) -> Option<Instant> {
        match stage {
            Stage::ReadReceipt | Stage::ReplyAccepted => {
                self.seen_at(stage, self.turn_of(i).unwrap_or(i))
            }
            Stage::WebhookAnswered | Stage::ModelCalled => self.seen_at(stage, i),
        }
    }

    /// Records a reply quoting message `i` sent to `to`.
    pub fn reply(&self, i: usize, to: &str, at: Instant) {
        self.replies[i].fetch_add(1, Ordering::Relaxed);
        self.mark(Stage::ReplyAccepted, i, at);
        if to != self.user_of(i) {
            self.wrong_recipient.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many replies quoted message `i`.
    pub fn replies_to(&self, i: usize) -> u32 {
        self.replies[i].load(Ordering::Relaxed)
    }

    /// Messages whose turn's reply has arrived so far.
    pub fn answered(&self) -> usize {
        (0..self.messages())
            .filter(|&i| self.turn_of(i).is_some_and(|j| self.replies_to(j) > 0))
            .count()
    }
}

/// The WhatsApp number of user `u` (all distinct, all valid-looking E.164 digits).
pub fn user_number(u: usize) -> String {
    format!("1555{:07}", u)
}

/// The letters-only tag of message `i` that the bench puts in the text, so the fake model can
/// tell which message it is answering (digits could be redacted by the PII guardrail).
pub fn tag_of(i: usize) -> String {
    let mut n = i;
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    letters.reverse();
    format!("ref-{}", String::from_utf8_lossy(&letters))
}

/// The message indexes of every tag in `text`, in order.
pub fn indexes_in(text: &str) -> Vec<usize> {
    text.split("ref-")
        .skip(1)
        .filter_map(|rest| {
            let letters: Vec<u8> = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase())
                .collect();
            (!letters.is_empty()).then(|| {
                letters
                    .iter()
                    .fold(0usize, |n, b| n * 26 + usize::from(b - b'a'))
            })
        })
        .collect()
}
