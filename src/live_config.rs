//! The configuration in force, shared by the HTTP handlers and the turn handler.
//!
//! HTTP handlers take an `Arc` snapshot per request. A turn does not read this cell: it takes
//! the responder's `Generation` (the same `LoadedConfig` together with the engines built from
//! it, swapped as one value), so it runs to the end with one generation's config and engines
//! even if a newer one is installed meanwhile.

use crate::config::Config;
use chrono::{DateTime, Utc};
use std::sync::{Arc, RwLock};

/// One loaded configuration and when it came in force.
#[derive(Debug)]
pub struct LoadedConfig {
    pub config: Config,
    /// 1 for the config loaded at start, +1 for each reload.
    pub generation: u64,
    pub loaded_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct SharedConfig {
    current: Arc<RwLock<Arc<LoadedConfig>>>,
}

impl SharedConfig {
    pub fn new(config: Config) -> Self {
        let loaded = LoadedConfig {
            config,
            generation: 1,
            loaded_at: Utc::now(),
        };
        SharedConfig {
            current: Arc::new(RwLock::new(Arc::new(loaded))),
        }
    }

    /// A snapshot: cheap (one `Arc` clone), never blocks for long.
    pub fn current(&self) -> Arc<LoadedConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Put a new, already validated config in force.
    pub fn replace(&self, config: Config) -> Arc<LoadedConfig> {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        let loaded = Arc::new(LoadedConfig {
            config,
            generation: guard.generation + 1,
            loaded_at: Utc::now(),
        });
        *guard = Arc::clone(&loaded);
        loaded
    }
}
