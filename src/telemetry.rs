//! Logging to stderr: text by default, JSON lines with `--log-format json`; `RUST_LOG` sets the
//! level (default `info`).

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Install the global subscriber. Call once, at the start of `main`.
pub fn init(format: LogFormat) {
    init_with_default(format, "info");
}

/// As [`init`], with `default_level` when `RUST_LOG` is unset.
pub fn init_with_default(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // Already installed (a test harness did it): keep that one.
    let _ = result;
}
