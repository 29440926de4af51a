//! A queue of requests that one writer task at a time writes together, a statement for all
//! those waiting (`close_batch.rs` for turns' closes, `intake_batch.rs` for webhooks).
//!
//! The first request to arrive while no writer runs starts one ([`Gathered::push`] says so);
//! the writer takes what waits ([`Gathered::next_batch`]), writes it, and takes again until
//! nothing waits. So under load the statements grow by themselves (requests pile up while one
//! is written), which is when one statement for many counts.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The requests waiting, and whether a writer task is running for them.
pub(crate) struct Gathered<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    waiting: Vec<T>,
    writing: bool,
    /// Statements written so far (tests: several requests take one).
    #[cfg(test)]
    statements: usize,
}

impl<T> Default for Gathered<T> {
    fn default() -> Self {
        Gathered {
            state: Mutex::new(State {
                waiting: Vec::new(),
                writing: false,
                #[cfg(test)]
                statements: 0,
            }),
        }
    }
}

impl<T> Gathered<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue a request; `true` when no writer runs yet (the caller starts one).
    pub(super) fn push(&self, request: T) -> bool {
        let mut state = self.lock();
        state.waiting.push(request);
        !std::mem::replace(&mut state.writing, true)
    }

    /// The next statement's requests, oldest first, at most `max`; none (and the writer ends)
    /// when nothing waits.
    pub(super) fn next_batch(&self, max: usize) -> Vec<T> {
        let mut state = self.lock();
        if state.waiting.is_empty() {
            state.writing = false;
            return Vec::new();
        }
        let take = state.waiting.len().min(max);
        #[cfg(test)]
        {
            state.statements += 1;
        }
        state.waiting.drain(..take).collect()
    }

    #[cfg(test)]
    pub(crate) fn statements(&self) -> usize {
        self.lock().statements
    }

    /// Requests queued and not yet taken by the writer.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Gathered;

    #[test]
    fn the_first_request_starts_a_writer_and_the_writer_ends_when_nothing_waits() {
        let gathered = Gathered::default();
        assert!(gathered.push(1), "no writer ran: the first starts one");
        assert!(!gathered.push(2), "a writer runs: the second waits for it");
        assert!(!gathered.push(3));
        assert_eq!(
            gathered.next_batch(2),
            vec![1, 2],
            "oldest first, at most the limit"
        );
        assert_eq!(gathered.next_batch(2), vec![3]);
        assert!(gathered.next_batch(2).is_empty());
        assert!(
            gathered.push(4),
            "the writer ended: the next request starts another"
        );
        assert_eq!(gathered.statements(), 2);
    }
}
