//! One turn of an agent: what the model sees for each inbound message, the system prompt,
//! the ReAct loop over native tool calls, and the tools.

pub mod input;
pub mod prompt;
pub mod react;
pub mod runtime;
pub mod text_calls;
pub mod tools;
