//! Hot reload: an edit to `channels.yaml` or any `agents/*.agent.yaml` (noticed by polling the
//! files, so editors that save by rename are seen too), or SIGHUP, loads the config again.
//!
//! A valid config goes in force for the next turn; turns already running finish with the
//! config and engines they started with. An invalid one is refused with the loader's message
//! (file, field, line) and the previous config stays. The `--env-file` is read again (and
//! watched like the config files), so a rotated token written there is picked up at once.

use crate::config::{Config, ConfigError};
use crate::live_config::SharedConfig;
use crate::metrics::{Metrics, ReloadLabels, ReloadOutcome};
use crate::responder::{EngineError, Responder};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How often the config files are looked at.
const POLL_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Engines(#[from] EngineError),
    #[error("the reload task stopped: {0}")]
    Task(String),
}

#[derive(Clone)]
pub struct Reloader {
    dir: PathBuf,
    /// `--env-file`, read before the process environment on every load.
    env_file: Option<PathBuf>,
    config: SharedConfig,
    /// `None` when a test plugs in its own turn handler: only the config is swapped.
    responder: Option<Arc<Responder>>,
    metrics: Arc<Metrics>,
    /// The files as they were when the config in force was loaded.
    seen: Vec<FileStamp>,
    /// One reload at a time, so generations go in force in the order they were numbered.
    one_at_a_time: Arc<std::sync::Mutex<()>>,
}

type FileStamp = (PathBuf, Option<SystemTime>, u64);

impl Reloader {
    pub fn new(
        dir: PathBuf,
        env_file: Option<PathBuf>,
        config: SharedConfig,
        responder: Option<Arc<Responder>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        // Taken now, not when the watch task first runs, so an edit made right after the start
        // is not mistaken for the state already loaded.
        let seen = fingerprint(&dir, env_file.as_deref());
        Reloader {
            dir,
            env_file,
            config,
            responder,
            metrics,
            seen,
            one_at_a_time: Arc::default(),
        }
    }

    /// Load, validate and put in force. Returns the new generation.
    pub async fn reload(&self, trigger: &'static str) -> Result<u64, ReloadError> {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || this.reload_blocking())
            .await
            .map_err(|e| ReloadError::Task(e.to_string()))
            .and_then(|r| r);
        match &result {
            Ok(generation) => {
                self.metrics
                    .config_reloads
                    .get_or_create(&ReloadLabels {
                        outcome: ReloadOutcome::Applied,
                    })
                    .inc();
                self.metrics.config_generation.set(*generation as i64);
                tracing::info!(generation, trigger, "configuration reloaded");
            }
            Err(e) => {
                self.metrics
                    .config_reloads
                    .get_or_create(&ReloadLabels {
                        outcome: ReloadOutcome::Rejected,
                    })
                    .inc();
                tracing::error!(
                    trigger,
                    "configuration reload refused; the previous configuration stays in force:\n{e}"
                );
            }
        }
        result
    }

    fn reload_blocking(&self) -> Result<u64, ReloadError> {
        let _one_at_a_time = self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        let config = Config::load_with_env_file(&self.dir, self.env_file.as_deref())?;
        for warning in &config.warnings {
            tracing::warn!("config: {warning}");
        }
        let engines = match &self.responder {
            Some(responder) => Some(responder.prepare(&config)?),
            None => None,
        };
        warn_about_restart_only_changes(&self.config.current().config, &config);
        // The HTTP side reads the shared config; turns read the responder's generation, which
        // holds config and engines together. Between these two lines a turn still starts with
        // the old pair, never half of each.
        let loaded = self.config.replace(config);
        if let (Some(responder), Some(engines)) = (&self.responder, engines) {
            responder.install(Arc::clone(&loaded), engines);
        }
        Ok(loaded.generation)
    }

    /// Watch the files and SIGHUP until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut seen = self.seen.clone();
        let mut hangup = hangup_signal();
        loop {
            let trigger = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(POLL_EVERY) => "file change",
                _ = next_hangup(&mut hangup) => "SIGHUP",
            };
            let now = fingerprint(&self.dir, self.env_file.as_deref());
            if trigger == "file change" && now == seen {
                continue;
            }
            seen = now;
            let _ = self.reload(trigger).await;
        }
    }
}

/// Name, modification time and size of every config file: a change in any means "reload".
fn fingerprint(dir: &Path, env_file: Option<&Path>) -> Vec<FileStamp> {
    let mut files = vec![dir.join("channels.yaml")];
    files.extend(env_file.map(Path::to_path_buf));
    if let Ok(entries) = std::fs::read_dir(dir.join("agents")) {
        files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (path, modified, len)
        })
        .collect()
}

/// Settings read once at start: a reload accepts them but they wait for a restart.
fn warn_about_restart_only_changes(old: &Config, new: &Config) {
    let (o, n) = (&old.whatsapp, &new.whatsapp);
    let changed = [
        ("max_body_bytes", o.max_body_bytes != n.max_body_bytes),
        (
            "max_concurrent_turns",
            o.max_concurrent_turns != n.max_concurrent_turns,
        ),
        (
            "shutdown_grace_seconds",
            o.shutdown_grace_seconds != n.shutdown_grace_seconds,
        ),
        ("debounce_ms", o.debounce_ms != n.debounce_ms),
    ];
    for (key, _) in changed.iter().filter(|(_, c)| *c) {
        tracing::warn!(
            key,
            "channels.whatsapp.{key} changed; it takes effect at the next restart"
        );
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}
