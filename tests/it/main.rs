//! The integration tests: one binary (so the crate links once), each module a capability,
//! each test starting the real server on port 0 and talking to it over HTTP.

mod support;

mod abuse;
mod chaos;
mod cli;
mod console_browser;
mod console_routes;
mod console_screenshots;
mod datadir;
mod dispatch;
mod e2e;
mod handoff;
mod kill9;
mod model_outage;
mod native;
mod native_in;
mod postgres;
mod process;
mod reload;
mod replicas;
mod voice;
mod webhook;
