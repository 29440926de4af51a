//! Putting the parts together: open the inbox, start the dispatcher, resume unfinished work,
//! serve HTTP until `shutdown` resolves, then drain.
//!
//! `run` takes its listener and its shutdown future (as mini-redis does) so tests bind port 0
//! and stop the server when they want.

use crate::config::Config;
use crate::handoff::Handoff;
use crate::http::{self, AppState};
use crate::inbox::store::{DataDirLock, DatabaseUrl, Durability, LockError};
use crate::inbox::{
    Dispatcher, DispatcherSettings, Store, StoreError, TurnHandler, WakeUpSettings,
};
use crate::live_config::SharedConfig;
use crate::memory::{self, Memory};
use crate::metrics::Metrics;
use crate::net::{self, HttpLimits};
use crate::reload::Reloader;
use crate::responder::{EngineError, EngineFactory, Responder};
use crate::transcription::Transcriber;
use crate::whatsapp::graph::GraphOptions;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    #[error(transparent)]
    Engines(#[from] EngineError),
    #[error("cannot build the HTTP client: {0}")]
    Graph(#[from] crate::whatsapp::graph::GraphError),
}

/// What a turn handler may use; given to the [`HandlerFactory`].
#[derive(Clone)]
pub struct HandlerServices {
    pub config: SharedConfig,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Human handoff (conversation state, operator replies).
    pub handoff: Arc<Handoff>,
}

/// Builds the turn handler once the store is open.
pub type HandlerFactory = Box<dyn FnOnce(&HandlerServices) -> Arc<dyn TurnHandler> + Send>;

pub struct ServeOptions {
    /// Where `wagate.db` lives (unused with `database`).
    pub data_dir: PathBuf,
    /// `--database`: PostgreSQL, shared by every replica, instead of SQLite in `data_dir`.
    pub database: Option<DatabaseUrl>,
    pub durability: Durability,
    /// `None`: the production [`Responder`]; tests may plug in their own.
    pub handler: Option<HandlerFactory>,
    /// Timeouts, retries and pacing of the Graph API client (`Default` is for production).
    pub graph: GraphOptions,
    /// `--env-file`: read again on every reload.
    pub env_file: Option<PathBuf>,
    /// Connection cap, timeouts and header limit of the HTTP server (`Default` for production).
    pub http: HttpLimits,
    /// The time for the 24-hour window, opening hours and release timers. `None`: the system
    /// clock; tests move it (a conversation 25 hours old without waiting 25 hours).
    pub clock: Option<crate::handoff::Clock>,
    /// Several replicas on one database: how often each scans it for work the others could
    /// not start, and whether they hint each other (`--poll-ms`, `--notify`).
    pub wake_ups: WakeUpSettings,
}

/// Serve until `shutdown` resolves; then stop accepting, let running turns finish within the
/// channel's `shutdown_grace_seconds`, and return. Unfinished work stays in the inbox.
pub async fn run(
    listener: TcpListener,
    config: Config,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let max_body_bytes = config.whatsapp.max_body_bytes;
    let grace = Duration::from_secs(config.whatsapp.shutdown_grace_seconds);
    let dispatcher_settings = DispatcherSettings {
        max_concurrent_turns: config.whatsapp.max_concurrent_turns,
        debounce: Duration::from_millis(config.whatsapp.debounce_ms),
        wake_ups: options.wake_ups,
    };
    warn_about_insecure_settings(&config);

    // Before the database is even opened (resume would re-run turns another server is
    // running); held until `run` returns. PostgreSQL needs none: replicas share it, and the
    // conversation leases keep them from running the same turn.
    let _lock = match options.database {
        None => Some(DataDirLock::acquire(&options.data_dir)?),
        Some(_) => None,
    };
    let config = SharedConfig::new(config);
    let store = Store::open_configured(
        options.database.as_ref(),
        &options.data_dir,
        options.durability,
    )
    .await?;
    let metrics = Arc::new(Metrics::new());
    let handoff = Handoff::start(
        store.clone(),
        config.clone(),
        Arc::clone(&metrics),
        options.clock.clone(),
    )
    .await?;
    let services = HandlerServices {
        config,
        store,
        metrics,
        handoff,
    };
    let config_dir = services.config.current().config.dir.clone();
    services.metrics.config_generation.set(1);
    // Several replicas on PostgreSQL share the channel's rate limit through the database.
    let mut graph_options = options.graph.clone();
    graph_options.shared_rate_limit = services.store.shared_rate_limit();
    let (handler, responder) = match options.handler {
        Some(factory) => (factory(&services), None),
        None => {
            let responder = production_handler(&services, graph_options.clone())?;
            (
                Arc::clone(&responder) as Arc<dyn TurnHandler>,
                Some(responder),
            )
        }
    };
    connect_handoff(&services, responder.as_ref(), graph_options)?;
    let reloader = Reloader::new(
        config_dir,
        options.env_file.clone(),
        services.config.clone(),
        responder,
        Arc::clone(&services.metrics),
    );
    let dispatcher = Dispatcher::new(
        services.store.clone(),
        handler,
        dispatcher_settings,
        Arc::clone(&services.metrics),
    );
    let resumed = dispatcher.resume().await?;
    if resumed > 0 {
        tracing::info!(
            conversations = resumed,
            "resuming unfinished work from the inbox"
        );
    }

    let state = AppState {
        config: services.config.clone(),
        store: services.store.clone(),
        dispatcher: Arc::clone(&dispatcher),
        metrics: Arc::clone(&services.metrics),
        handoff: Arc::clone(&services.handoff),
    };
    let app = net::with_body_deadline(
        http::router(state, max_body_bytes),
        max_body_bytes,
        options.http.body_read_timeout,
    );
    let app = http::count_refused_webhooks(app, Arc::clone(&services.metrics));
    let stop = CancellationToken::new();
    let stop_http = stop.clone();
    tokio::spawn({
        let stop = stop.clone();
        let handoff = Arc::clone(&services.handoff);
        async move {
            shutdown.await;
            // First: the console's event streams end, so they do not hold the HTTP drain.
            handoff.stop();
            stop.cancel();
        }
    });

    services.store.spawn_retention(stop.clone());
    tokio::spawn(reloader.run(stop.clone()));
    services.handoff.spawn_tasks();

    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    net::serve(listener, app, &options.http, stop_http).await;
    tracing::info!("HTTP stopped; waiting for running turns");
    dispatcher.shutdown(grace).await;
    // What this replica still holds goes to the others now, not after the lease expiry.
    if let Err(e) = services.store.release_leases().await {
        tracing::warn!(error = %e, "cannot give this replica's conversations back; they expire instead");
    }
    services.handoff.stopped(grace).await;
    tracing::info!("shutdown complete");
    Ok(())
}

fn warn_about_insecure_settings(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
    let channel = &config.whatsapp;
    if channel.app_secret.is_empty() {
        tracing::warn!("app_secret is empty: webhook signatures are NOT checked; anyone who can reach the webhook can inject messages");
    }
    if channel.dry_run() {
        tracing::warn!(
            "access_token or phone_number_id is empty: dry run, replies are logged instead of sent"
        );
    }
}

/// The real thing: the agent runtime and the Graph API client behind the [`Responder`]; and
/// the background purge of expired conversation memory.
fn production_handler(
    services: &HandlerServices,
    graph_options: GraphOptions,
) -> Result<Arc<Responder>, ServeError> {
    let loaded = services.config.current();
    let config = &loaded.config;
    let memory = Memory::new(services.store.clone());
    let ttls = config
        .agents
        .values()
        .filter_map(|a| a.spec.memory.conversational.as_ref())
        .map(|m| m.ttl);
    memory
        .clone()
        .spawn_purger(Duration::from_secs(600), memory::purge_ttl(ttls));
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| crate::whatsapp::graph::GraphError::Setup(e.to_string()))?;
    let transcriber = Transcriber::new(http.clone(), Arc::clone(&services.metrics));
    let factory = EngineFactory {
        memory,
        metrics: Arc::clone(&services.metrics),
        http,
        graph_options,
    };
    let mut responder = Responder::new(
        services.config.clone(),
        services.store.clone(),
        Arc::clone(&services.metrics),
        transcriber,
        factory,
    )?;
    responder.set_handoff(Arc::clone(&services.handoff));
    Ok(Arc::new(responder))
}

/// Operator replies go out through the responder's Graph client (one rate limit for the
/// channel) and are kept in the conversation memory. With a handler plugged in by tests, a
/// client of their own.
fn connect_handoff(
    services: &HandlerServices,
    responder: Option<&Arc<Responder>>,
    graph_options: GraphOptions,
) -> Result<(), ServeError> {
    let memory = Some(Memory::new(services.store.clone()));
    let source: crate::handoff::GraphSource = match responder {
        Some(responder) => {
            let responder = Arc::clone(responder);
            Arc::new(move || Some(responder.graph()))
        }
        None => {
            let graph = crate::whatsapp::graph::GraphClient::with_options(
                &services.config.current().config.whatsapp,
                graph_options,
            )?;
            Arc::new(move || Some(graph.clone()))
        }
    };
    services.handoff.connect(source, memory);
    Ok(())
}
