//! The states of messages and turns, as the store writes them. Nothing outside the store spells
//! them: callers get these enums, and the SQL of the hot path repeats a state as a literal only
//! where a partial index needs it (SQLite uses a partial index only for a query that repeats
//! its `WHERE` term exactly, not for a bound parameter).

/// Where an inbound message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageState {
    /// Waiting for a turn.
    Pending,
    /// In a running turn.
    Taken,
    /// Answered (or deliberately left unanswered by its turn).
    Done,
    /// Its turn failed; `wagate retry` puts it back to `Pending`.
    Failed,
    /// Kept on record, never answered (reactions, numbers no agent serves).
    Skipped,
}

/// Where a turn stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TurnState {
    Running,
    Done,
    Failed,
    /// A failed turn whose messages an operator put back in the inbox (`wagate retry`).
    Requeued,
}

impl MessageState {
    pub const ALL: [MessageState; 5] = [
        MessageState::Pending,
        MessageState::Taken,
        MessageState::Done,
        MessageState::Failed,
        MessageState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Pending => "pending",
            MessageState::Taken => "taken",
            MessageState::Done => "done",
            MessageState::Failed => "failed",
            MessageState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<MessageState> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl TurnState {
    pub const ALL: [TurnState; 4] = [
        TurnState::Running,
        TurnState::Done,
        TurnState::Failed,
        TurnState::Requeued,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TurnState::Running => "running",
            TurnState::Done => "done",
            TurnState::Failed => "failed",
            TurnState::Requeued => "requeued",
        }
    }

    pub fn parse(s: &str) -> Option<TurnState> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for MessageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for TurnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_name() {
        for state in MessageState::ALL {
            assert_eq!(MessageState::parse(state.as_str()), Some(state));
        }
        for state in TurnState::ALL {
            assert_eq!(TurnState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TurnState::parse("exploded"), None);
    }
}
