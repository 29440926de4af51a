//! Every test outside `src/`: one binary, so the crate links once. Each module is a
//! capability; `support` is the one kit they share (the test app builder, typed config, the
//! fake Graph and model servers, signed posts).
//!
//! End-to-end modules start the real server on port 0 and talk to it over HTTP; the
//! component modules (`graph`, `llm`, `agent_turn`, `config`, `payload`, `properties`) drive one
//! part of the crate against the same fakes.

mod support;

mod abuse;
mod agent_turn;
mod chaos;
mod cli;
mod config;
mod console_browser;
mod console_routes;
mod console_screenshots;
mod datadir;
mod dispatch;
mod e2e;
mod graph;
mod handoff;
mod kill9;
mod llm;
mod model_outage;
mod native;
mod native_in;
mod ops;
mod payload;
mod postgres;
mod process;
mod properties;
mod reload;
mod replicas;
mod voice;
mod webhook;
