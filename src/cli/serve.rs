//! `wagate serve`: load the config, check the data directory and the listen address, and run
//! the server until SIGTERM or Ctrl-C. Each way this can fail at start says what to do.

use crate::config::Config;
use crate::inbox::store::{DatabaseUrl, Durability};
use crate::inbox::WakeUpSettings;
use crate::server::{self, ServeOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Several replicas on one PostgreSQL database: how each hears of work the others recorded
/// (ignored on SQLite, where one process does everything). README: "Several replicas".
#[derive(clap::Args)]
pub(super) struct WakeUpArgs {
    /// How often each replica scans the database for conversations it could take (work another
    /// replica recorded but had no free turn slot for, a dead replica's once its lease expired),
    /// in milliseconds. Idle, one indexed query per interval.
    #[arg(long, env = "WAGATE_POLL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
    /// Replicas hint each other (PostgreSQL NOTIFY/LISTEN) when one leaves work it cannot start,
    /// besides polling, and hear of each other's take-overs and opt-outs at once. `off`: polling
    /// only (NOTIFY takes a cluster-wide lock at commit; see the README for how to tell whether
    /// it costs throughput).
    #[arg(long, env = "WAGATE_NOTIFY", value_enum, default_value = "on")]
    notify: OnOff,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

impl From<WakeUpArgs> for WakeUpSettings {
    fn from(args: WakeUpArgs) -> WakeUpSettings {
        WakeUpSettings {
            poll: std::time::Duration::from_millis(args.poll_ms),
            notify: matches!(args.notify, OnOff::On),
        }
    }
}

pub(super) fn serve(
    config_dir: PathBuf,
    listen: Option<String>,
    data: PathBuf,
    database: Option<String>,
    env_file: Option<PathBuf>,
    wake_ups: WakeUpSettings,
) -> anyhow::Result<ExitCode> {
    // `--database`: several replicas share PostgreSQL; no data directory is locked then.
    let database = match database.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(url) => match url.parse::<DatabaseUrl>() {
            Ok(url) => Some(url),
            Err(e) => {
                eprintln!("wagate: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    let config = match Config::load_with_env_file(&config_dir, env_file.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!(
                "wagate: invalid configuration in {}:\n{e}",
                config_dir.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    if database.is_none() {
        if let Err(why) = writable_data_dir(&data) {
            eprintln!("wagate: {why}");
            return Ok(ExitCode::FAILURE);
        }
        // One serve per data directory: a second one usually asks for the same port too, so
        // say who holds the directory before trying the port. `server::run` takes the lock
        // for good.
        match crate::inbox::store::DataDirLock::acquire(&data) {
            Ok(lock) => drop(lock),
            Err(e) => {
                eprintln!("wagate: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let unsigned = config.whatsapp.app_secret.is_empty();
    let listen = listen.unwrap_or_else(|| default_listen(unsigned).to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if unsigned {
        warn_unsigned(&listen);
    }
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("wagate: {}", listen_error(&listen, &e));
                return Ok(ExitCode::FAILURE);
            }
        };
        let options = ServeOptions {
            data_dir: data,
            database,
            durability: Durability::Full,
            handler: None,
            graph: Default::default(),
            env_file,
            http: Default::default(),
            clock: None,
            wake_ups,
        };
        server::run(listener, config, options, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Where `serve` listens without `--listen`: on every interface, except while `app_secret` is
/// empty. Then anyone who reaches the port could post forged messages, so only this machine
/// may (the quick start's dry run, a tunnel to localhost). A proxy or container that needs
/// another address says so with `--listen` / `WAGATE_LISTEN`, and gets the warning below.
pub(crate) fn default_listen(app_secret_empty: bool) -> &'static str {
    if app_secret_empty {
        "127.0.0.1:8000"
    } else {
        "0.0.0.0:8000"
    }
}

fn warn_unsigned(listen: &str) {
    let loopback = ["127.", "[::1]", "localhost:"]
        .iter()
        .any(|prefix| listen.starts_with(prefix));
    if loopback {
        tracing::warn!(
            %listen,
            "app_secret is empty: listening on loopback only; set app_secret before exposing \
             the webhook (then wagate listens on 0.0.0.0:8000 unless --listen says otherwise)"
        );
    } else {
        tracing::warn!(
            %listen,
            "app_secret is empty and wagate listens beyond this machine: anyone who can reach \
             this port can post forged messages; set app_secret, or listen on 127.0.0.1"
        );
    }
}

/// Why `listen` cannot be bound, and what to do about it.
pub(crate) fn listen_error(listen: &str, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => format!(
            "cannot listen on {listen}: the address is already in use (another wagate, or \
             another server, holds the port); stop it, or choose another address with \
             --listen HOST:PORT (or WAGATE_LISTEN)"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {listen}: permission denied (ports below 1024 need privileges); \
             choose a port above 1024 with --listen HOST:PORT (or WAGATE_LISTEN) and put a \
             reverse proxy in front"
        ),
        _ => format!(
            "cannot listen on {listen}: {error}; give an address such as 127.0.0.1:8000 with \
             --listen HOST:PORT (or WAGATE_LISTEN)"
        ),
    }
}

/// Creates the data directory if missing and checks that wagate can write there: SQLite needs
/// to create `wagate.db` and its `-wal`/`-shm` files beside it, and its own error for a
/// directory it cannot write is only "Error code 14: Unable to open the database file".
pub(crate) fn writable_data_dir(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".wagate-write-check-{}", std::process::id()));
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map(drop)
    });
    let _ = std::fs::remove_file(&probe);
    result.map_err(|e| data_dir_error(dir, &e))
}

fn data_dir_error(dir: &Path, error: &io::Error) -> String {
    let dir = dir.display();
    let why = match error.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::ReadOnlyFilesystem => "the file system is read-only".to_string(),
        _ => error.to_string(),
    };
    format!(
        "cannot write to the data directory {dir}: {why}. wagate keeps its database \
         (wagate.db) there: give the user wagate runs as write access to it (e.g. \
         `chown -R USER {dir}`), or choose another directory with --data (or WAGATE_DATA)"
    )
}

/// SIGTERM (what `docker stop` and systemd send) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        wake_ups: WakeUpArgs,
    }

    fn wake_ups(args: &[&str]) -> Result<WakeUpSettings, clap::Error> {
        let args = std::iter::once("serve").chain(args.iter().copied());
        Flags::try_parse_from(args).map(|f| f.wake_ups.into())
    }

    #[test]
    fn replicas_poll_every_half_second_and_hint_each_other_unless_told_otherwise() {
        assert_eq!(wake_ups(&[]).unwrap(), WakeUpSettings::default());
        assert_eq!(
            wake_ups(&["--poll-ms", "250", "--notify", "off"]).unwrap(),
            WakeUpSettings {
                poll: std::time::Duration::from_millis(250),
                notify: false,
            }
        );
    }

    #[test]
    fn a_poll_interval_below_10_ms_or_a_notify_other_than_on_or_off_is_refused() {
        let e = wake_ups(&["--poll-ms", "5"]).unwrap_err().to_string();
        assert!(e.contains("--poll-ms"), "{e}");
        let e = wake_ups(&["--notify", "maybe"]).unwrap_err().to_string();
        assert!(e.contains("on") && e.contains("off"), "{e}");
    }

    #[test]
    fn without_an_app_secret_serve_listens_on_loopback_only_by_default() {
        assert_eq!(default_listen(true), "127.0.0.1:8000");
        assert_eq!(default_listen(false), "0.0.0.0:8000");
    }

    #[test]
    fn a_port_in_use_says_how_to_choose_another_address() {
        let e = io::Error::from(io::ErrorKind::AddrInUse);
        let text = listen_error("0.0.0.0:8000", &e);
        assert!(text.contains("already in use"), "{text}");
        assert!(text.contains("--listen"), "{text}");
    }

    #[test]
    fn an_unwritable_data_directory_says_permission_denied_and_names_the_path() {
        let e = io::Error::from_raw_os_error(13);
        let text = data_dir_error(Path::new("/srv/wagate/data"), &e);
        assert!(
            text.starts_with(
                "cannot write to the data directory /srv/wagate/data: permission denied."
            ),
            "{text}"
        );
        assert!(!text.contains("code 14"), "{text}");
    }

    #[test]
    fn a_data_directory_that_cannot_be_created_is_reported_before_sqlite_sees_it() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let below_a_file = file.path().join("data");
        let text = writable_data_dir(&below_a_file).expect_err("not a directory");
        assert!(text.contains(&below_a_file.display().to_string()), "{text}");
        let dir = tempfile::tempdir().expect("temp dir");
        writable_data_dir(&dir.path().join("new")).expect("created and writable");
        assert_eq!(
            std::fs::read_dir(dir.path().join("new")).unwrap().count(),
            0
        );
    }
}
