//! (in progress)

// Temporary: added on the `graph` branch so the Graph client compiles; the owner of this file
// keeps (or re-adds) this line when merging.
pub mod graph;
