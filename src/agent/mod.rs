//! (in progress)

pub mod input;
pub mod prompt;
