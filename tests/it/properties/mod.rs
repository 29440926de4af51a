//! Property tests: invariants of the input parsers and text transforms, checked on generated
//! inputs. Each property runs a bounded number of cases so the whole file stays fast enough for
//! every `cargo test`; the long, open-ended search is `fuzz/run.sh`.

mod format;
mod parser;
mod redact;
mod signature;
mod split;

use proptest::test_runner::{Config, FileFailurePersistence};

/// A bounded run of `cases` (or `PROPTEST_CASES`, for a longer search by hand) without
/// regression files: a failure found here becomes a named unit test next to the code it broke.
pub fn cases(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}
