//! What the responder builds from a config: the agent runtime and the Graph API client.
//! Rebuilt on every config reload; a turn keeps the engines it started with.

use crate::agent::runtime::{AgentError, AgentRuntime};
use crate::config::{Config, WhatsAppChannel};
use crate::live_config::LoadedConfig;
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::whatsapp::graph::{GraphClient, GraphError, GraphOptions};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot build the Graph API client: {0}")]
    Graph(#[from] GraphError),
}

/// The agents and the Graph client of one config generation.
pub struct Engines {
    pub agents: AgentRuntime,
    pub graph: GraphClient,
    /// The channel settings `graph` was built from, to tell whether a reload must rebuild it.
    graph_settings: GraphSettings,
}

/// Builds [`Engines`]; holds what outlives a reload (memory, the shared HTTP client).
pub struct EngineFactory {
    pub memory: Memory,
    pub metrics: Arc<Metrics>,
    pub http: reqwest::Client,
    pub graph_options: GraphOptions,
}

impl EngineFactory {
    /// Build everything `config` needs. `previous` lends its Graph client when the channel's
    /// Graph settings did not change, so the rate limiter and the per-user pacing carry on
    /// across a reload instead of starting a fresh window.
    pub fn build(
        &self,
        config: &Config,
        previous: Option<&Engines>,
    ) -> Result<Engines, EngineError> {
        let agents = AgentRuntime::build_observed(
            config,
            self.memory.clone(),
            self.http.clone(),
            Arc::clone(&self.metrics),
        )?;
        let graph_settings = GraphSettings::of(&config.whatsapp);
        let graph = match previous {
            Some(previous) if previous.graph_settings == graph_settings => previous.graph.clone(),
            _ => GraphClient::with_options(&config.whatsapp, self.graph_options.clone())?
                .observed_by(Arc::clone(&self.metrics)),
        };
        Ok(Engines {
            agents,
            graph,
            graph_settings,
        })
    }
}

/// The channel keys the Graph client is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GraphSettings {
    access_token: String,
    phone_number_id: String,
    api_base: String,
    api_version: String,
    rate_limit: (u64, u32),
    media_limits: [u64; 5],
}

impl GraphSettings {
    fn of(channel: &WhatsAppChannel) -> Self {
        let m = &channel.media_max_bytes;
        GraphSettings {
            access_token: channel.access_token.expose().to_owned(),
            phone_number_id: channel.phone_number_id.clone(),
            api_base: channel.graph_api_base.clone(),
            api_version: channel.graph_api_version.clone(),
            rate_limit: (
                channel.rate_limit.window_seconds,
                channel.rate_limit.max_messages,
            ),
            media_limits: [m.image, m.audio, m.video, m.document, m.sticker],
        }
    }
}

/// A config and the engines built from it. A turn takes ONE of these at its start, so it never
/// pairs a new config with old engines (an agent the engines do not have yet: `error_reply`) or
/// the reverse.
pub struct Generation {
    pub loaded: Arc<LoadedConfig>,
    pub engines: Engines,
}

/// The generation in force: config and engines in one cell, swapped whole on reload.
pub struct CurrentGeneration(std::sync::RwLock<Arc<Generation>>);

impl CurrentGeneration {
    pub fn new(generation: Generation) -> Self {
        CurrentGeneration(std::sync::RwLock::new(Arc::new(generation)))
    }

    pub fn get(&self) -> Arc<Generation> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn set(&self, generation: Generation) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(generation);
    }
}
