//! The `wagate` binary: everything lives in the library; see `wagate::cli`.

use std::process::ExitCode;

/// An error ends the process with its message and causes on one line, and exit code 1: never
/// a stack trace (`anyhow` would print one whenever `RUST_BACKTRACE` happens to be set).
fn main() -> ExitCode {
    match wagate::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wagate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
