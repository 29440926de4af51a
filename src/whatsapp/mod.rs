//! (in progress)
// TEMPORARY (text branch): lets format/split compile here; the lead reconciles with the owner's mod.rs.
pub mod format;
pub mod split;
