//! Real components installed from a package registry (a llama.cpp server, an MCP server,
//! Chromium, PostgreSQL): tests that need one ask here first.
//!
//! On a fresh machine `cargo test --locked` must pass without them, so a missing component makes
//! the test print how to run it and return early. `.ci/run` installs every component and sets
//! `WAGATE_REQUIRE_EXTERNAL=1`: there a missing component fails the test instead of hiding it.

/// The value of `var` (a path or URL naming the installed component), or `None` after printing
/// why the test is skipped. Panics instead when `WAGATE_REQUIRE_EXTERNAL=1`.
pub fn component(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ => {
            let how = format!(
                "{what} is not available: set {var} (see .ci/run, which installs it and sets it), \
                 or run .ci/run to run these tests"
            );
            if std::env::var("WAGATE_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
                panic!("WAGATE_REQUIRE_EXTERNAL=1 but {how}");
            }
            eprintln!("skipped: {how}");
            None
        }
    }
}
