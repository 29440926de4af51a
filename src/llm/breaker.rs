//! A circuit breaker per model candidate: after `failure_threshold` consecutive failures the
//! candidate is skipped for `cool_down`, then one trial request is let through (half-open); its
//! success closes the breaker, its failure opens it for another cool-down.
//!
//! State sits behind a `std::sync::Mutex` that is only held for a few instructions, never across
//! an `.await`. A trial abandoned mid-flight (the turn timed out and its future was dropped) does
//! not leave the breaker stuck half-open: the permit's `Drop` re-arms the trial.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How quickly a failing candidate is skipped and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker skips its candidate before a trial request.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 3,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial request is in flight; everyone else skips the candidate.
    HalfOpen,
}

/// One candidate's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

/// Why a candidate was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// Open: skipped for this much longer.
    Open { remaining: Duration },
    /// Half-open with its one trial request still running.
    TrialInFlight,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::Open { remaining } => write!(
                f,
                "skipped: circuit open after repeated failures, next try in {}s",
                remaining.as_secs().max(1)
            ),
            Skipped::TrialInFlight => {
                f.write_str("skipped: circuit half-open, a trial request is running")
            }
        }
    }
}

impl Breaker {
    pub(crate) fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a plain Copy value; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to send a request now. The permit must be settled with `succeeded` or `failed`.
    pub(crate) fn admit(&self) -> Result<Permit<'_>, Skipped> {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Ok(Permit {
                breaker: self,
                settled: false,
            }),
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::HalfOpen;
                    Ok(Permit {
                        breaker: self,
                        settled: false,
                    })
                } else {
                    Err(Skipped::Open {
                        remaining: until - now,
                    })
                }
            }
            State::HalfOpen => Err(Skipped::TrialInFlight),
        }
    }
}

/// Leave to send one request through a breaker.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    settled: bool,
}

impl Permit<'_> {
    /// The request was answered: the breaker closes and the failure count resets.
    pub(crate) fn succeeded(mut self) {
        self.settled = true;
        *self.breaker.state() = State::Closed { failures: 0 };
    }

    /// The request failed: one more consecutive failure, or back to open after a failed trial.
    pub(crate) fn failed(mut self) {
        self.settled = true;
        let policy = self.breaker.policy;
        let mut state = self.breaker.state();
        let failures = match *state {
            State::Closed { failures } => failures + 1,
            // A failed trial reopens at once; an Open state cannot hold a live permit.
            State::HalfOpen | State::Open { .. } => policy.failure_threshold,
        };
        *state = if failures >= policy.failure_threshold {
            State::Open {
                until: Instant::now() + policy.cool_down,
            }
        } else {
            State::Closed { failures }
        };
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Abandoned (cancelled) request: it proved nothing. A trial goes back to "open, due now"
        // so the next request may try again; a closed breaker stays as it was.
        let mut state = self.breaker.state();
        if let State::HalfOpen = *state {
            *state = State::Open {
                until: Instant::now(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Breaker {
        Breaker::new(BreakerPolicy {
            failure_threshold: 3,
            cool_down: Duration::from_millis(50),
        })
    }

    fn fail(b: &Breaker) {
        b.admit().expect("admitted").failed();
    }

    #[test]
    fn it_opens_after_three_consecutive_failures_and_not_before() {
        let b = quick();
        fail(&b);
        fail(&b);
        assert!(b.admit().is_ok(), "two failures keep it closed");
        fail(&b);
        assert!(matches!(b.admit(), Err(Skipped::Open { .. })));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = quick();
        fail(&b);
        fail(&b);
        b.admit().expect("admitted").succeeded();
        fail(&b);
        fail(&b);
        assert!(b.admit().is_ok());
    }

    #[test]
    fn after_the_cool_down_exactly_one_trial_goes_through() {
        let b = quick();
        (0..3).for_each(|_| fail(&b));
        std::thread::sleep(Duration::from_millis(60));
        let trial = b.admit().expect("trial admitted");
        assert_eq!(b.admit().unwrap_err(), Skipped::TrialInFlight);
        trial.failed();
        assert!(
            matches!(b.admit(), Err(Skipped::Open { .. })),
            "failed trial reopens"
        );
        std::thread::sleep(Duration::from_millis(60));
        b.admit().expect("second trial").succeeded();
        assert!(b.admit().is_ok());
        assert!(b.admit().is_ok(), "closed again");
    }

    #[test]
    fn an_abandoned_trial_does_not_leave_the_candidate_stuck() {
        let b = quick();
        (0..3).for_each(|_| fail(&b));
        std::thread::sleep(Duration::from_millis(60));
        drop(b.admit().expect("trial admitted"));
        assert!(b.admit().is_ok(), "a new trial may start");
    }
}
