//! One agent turn through `AgentRuntime::run`, against fake model and tool servers speaking
//! real HTTP on 127.0.0.1, with configs loaded by `Config::load` from YAML written by each test.
//! And `wagate chat` run as the built binary.

mod harness;

mod chat;
mod context;
mod failures;
mod mcp;
mod memory;
mod privacy;
mod prompt_and_tools;
mod real_model;
mod robustness;
