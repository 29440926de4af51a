//! The command line: `serve`, `check`, `simulate`, `chat`, and the operator commands `inbox`,
//! `retry`, `history`, `healthcheck`. Parsing and printing live here; each command calls into
//! the library.

mod serve;

use crate::config::Config;
use crate::inbox::store::DatabaseLocation;
use crate::ops;
use crate::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "wagate",
    version,
    about = "An LLM agent on a WhatsApp business number"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "WAGATE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive Meta's webhooks and answer them.
    Serve {
        /// Directory holding channels.yaml and agents/*.agent.yaml.
        #[arg(long, env = "WAGATE_CONFIG", default_value = "./config")]
        config: PathBuf,
        /// Address to listen on [default: 0.0.0.0:8000, or 127.0.0.1:8000 while app_secret is
        /// empty: unsigned webhooks are then accepted only from this machine].
        #[arg(long, env = "WAGATE_LISTEN")]
        listen: Option<String>,
        /// Directory for the SQLite database (created if missing).
        #[arg(long, env = "WAGATE_DATA", default_value = "./data")]
        data: PathBuf,
        /// postgres://user:password@host:port/dbname (or postgresql://...): store everything in
        /// PostgreSQL instead of SQLite in --data, so several replicas can share it. TLS per
        /// `?sslmode=` (disable, prefer, require, verify-ca, verify-full).
        // Parsed by `serve`, not by clap: clap's error would echo the value, password and all.
        #[arg(
            long,
            env = "WAGATE_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        database: Option<String>,
        /// KEY=VALUE file that `${VAR}` reads before the process environment, read again on
        /// every reload: how a rotated access token reaches a running server (SIGHUP).
        #[arg(long, env = "WAGATE_ENV_FILE")]
        env_file: Option<PathBuf>,
        #[command(flatten)]
        wake_ups: serve::WakeUpArgs,
    },
    /// Validate the configuration and print a summary; exit 1 if anything is wrong.
    #[command(
        after_help = "Exit codes: 0 valid (and, with --online, every online check passed \
        or only warned); 1 the configuration is invalid; 3 an online check failed."
    )]
    Check {
        #[arg(long, env = "WAGATE_CONFIG", default_value = "./config")]
        config: PathBuf,
        /// Also check the services the config names: model endpoints (with Ollama: each model
        /// pulled, with the capabilities its agent relies on), the Graph token for each business
        /// number, transcription endpoints. 5 s per request, all at once.
        #[arg(long)]
        online: bool,
        /// KEY=VALUE file read before the process environment (as `serve --env-file`).
        #[arg(long, env = "WAGATE_ENV_FILE")]
        env_file: Option<PathBuf>,
    },
    /// Pending, failed and dead-lettered work, with reasons. Read-only: safe while the server runs.
    #[command(
        after_help = "Exit codes: 0 shown; 2 no database under --data (or --database); 1 other errors."
    )]
    Inbox {
        /// Directory holding the server's wagate.db.
        #[arg(long, env = "WAGATE_DATA", default_value = "./data")]
        data: PathBuf,
        /// PostgreSQL the replicas share (`postgres://user:password@host:port/dbname`), instead
        /// of the SQLite file in --data.
        // Parsed by the command, not by clap: clap's error would echo the value, password and all.
        #[arg(
            long,
            env = "WAGATE_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        database: Option<String>,
        /// Also list finished turns (done, requeued).
        #[arg(long)]
        all: bool,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Most rows per table.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print the bodies of dead letters (they may hold personal data).
        #[arg(long)]
        show_body: bool,
        /// Print users' numbers in full instead of masked to the last 4 digits.
        #[arg(long)]
        show_numbers: bool,
    },
    /// Re-queue a failed turn: its messages go back to pending and are answered in a new turn.
    #[command(
        after_help = "Exit codes: 0 re-queued; 1 not found, not failed, or partly \
        answered without --force; 2 no database under --data (or --database)."
    )]
    Retry {
        /// The turn id, as `wagate inbox` lists it.
        id: i64,
        /// Directory holding the server's wagate.db.
        #[arg(long, env = "WAGATE_DATA", default_value = "./data")]
        data: PathBuf,
        /// PostgreSQL the replicas share (`postgres://user:password@host:port/dbname`), instead
        /// of the SQLite file in --data.
        // Parsed by the command, not by clap: clap's error would echo the value, password and all.
        #[arg(
            long,
            env = "WAGATE_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        database: Option<String>,
        /// Re-queue even though Meta already accepted part of the old reply (the customer will
        /// get a second answer).
        #[arg(long)]
        force: bool,
    },
    /// A conversation as the agent remembers it (after redaction), oldest first.
    #[command(
        after_help = "Exit codes: 0 shown; 1 nothing remembered under that key; 2 no \
        database under --data (or --database)."
    )]
    History {
        /// The user's phone number, with or without `+`.
        #[arg(required_unless_present = "key")]
        phone: Option<String>,
        /// A memory key instead of a phone number (`chat_<agent>` for `wagate chat`).
        #[arg(long, conflicts_with = "phone")]
        key: Option<String>,
        /// Directory holding the server's wagate.db.
        #[arg(long, env = "WAGATE_DATA", default_value = "./data")]
        data: PathBuf,
        /// PostgreSQL the replicas share (`postgres://user:password@host:port/dbname`), instead
        /// of the SQLite file in --data.
        // Parsed by the command, not by clap: clap's error would echo the value, password and all.
        #[arg(
            long,
            env = "WAGATE_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        database: Option<String>,
        /// The newest N messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// GET the server's /healthz (3 s timeout); exit 0 on 200, else 1. For Docker's HEALTHCHECK.
    Healthcheck {
        /// The URL to probe (default: /healthz on the --listen address, through loopback).
        #[arg(long)]
        url: Option<String>,
        /// The address `wagate serve` listens on.
        #[arg(long, env = "WAGATE_LISTEN")]
        listen: Option<String>,
    },
    /// Post a Meta-shaped text message webhook to a running server (signed with
    /// WHATSAPP_APP_SECRET when set) and print the status code.
    Simulate {
        /// The webhook URL [default: /v1/channels/whatsapp/webhook on the --listen address,
        /// through loopback].
        #[arg(long)]
        url: Option<String>,
        /// The address `wagate serve` listens on.
        #[arg(long, env = "WAGATE_LISTEN")]
        listen: Option<String>,
        /// The sender's phone number (wa_id).
        #[arg(long, default_value = "15550001234")]
        from: String,
        /// The sender's profile name.
        #[arg(long, default_value = "Test User")]
        name: String,
        /// The business number the message is addressed to (default: WHATSAPP_PHONE_NUMBER_ID or a placeholder).
        #[arg(
            long,
            env = "WHATSAPP_PHONE_NUMBER_ID",
            default_value = "100000000000000",
            hide_env_values = true
        )]
        phone_number_id: String,
        /// The message text.
        text: String,
    },
    /// Talk to an agent in the terminal through the same runtime (memory, guardrails, tools).
    Chat {
        #[arg(long, env = "WAGATE_CONFIG", default_value = "./config")]
        config: PathBuf,
        /// The agent to talk to (default: the channel's default_agent).
        #[arg(long)]
        agent: Option<String>,
        /// Directory for the SQLite database holding the chat's memory.
        #[arg(long, env = "WAGATE_DATA", default_value = "./data")]
        data: PathBuf,
    },
}

pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // `wagate chat` prints a failed turn's error itself, once; its log stays quiet unless
    // RUST_LOG asks for more.
    let default_level = match cli.command {
        Command::Chat { .. } => "error",
        _ => "info",
    };
    telemetry::init_with_default(cli.log_format, default_level);
    match cli.command {
        Command::Serve {
            config,
            listen,
            data,
            database,
            env_file,
            wake_ups,
        } => serve::serve(config, listen, data, database, env_file, wake_ups.into()),
        Command::Check {
            config,
            online,
            env_file,
        } => check(&config, online, env_file.as_deref()),
        Command::Inbox {
            data,
            database,
            all,
            json,
            limit,
            show_body,
            show_numbers,
        } => {
            let options = ops::inbox::InboxOptions {
                all,
                limit,
                show_body,
                show_numbers,
            };
            Ok(match DatabaseLocation::parse(database.as_deref(), &data) {
                Ok(location) => inbox(location, &options, json),
                Err(e) => report("inbox", Err(e.into())),
            })
        }
        Command::Retry {
            id,
            data,
            database,
            force,
        } => Ok(report(
            "retry",
            DatabaseLocation::parse(database.as_deref(), &data)
                .map_err(ops::OpsError::from)
                .and_then(|location| ops::retry::retry(location, id, force))
                .map(|r| ops::retry::describe(&r)),
        )),
        Command::History {
            phone,
            key,
            data,
            database,
            limit,
        } => {
            let key = key
                .or_else(|| phone.map(|p| ops::history::key_for_phone(&p)))
                .unwrap_or_default();
            Ok(report(
                "history",
                DatabaseLocation::parse(database.as_deref(), &data)
                    .map_err(ops::OpsError::from)
                    .and_then(|location| ops::history::history(location, &key, limit))
                    .map(|history| ops::history::render(&key, &history)),
            ))
        }
        Command::Healthcheck { url, listen } => healthcheck(url, listen),
        Command::Simulate {
            url,
            listen,
            from,
            name,
            phone_number_id,
            text,
        } => {
            let url = url.unwrap_or_else(|| crate::simulate::default_url(listen.as_deref()));
            crate::simulate::run(&url, &from, &name, &phone_number_id, &text)
        }
        Command::Chat {
            config,
            agent,
            data,
        } => chat(config, agent, data),
    }
}

// ---- `wagate chat` ----

fn chat(config_dir: PathBuf, agent: Option<String>, data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    if let Err(why) = serve::writable_data_dir(&data_dir) {
        eprintln!("wagate chat: {why}");
        return Ok(ExitCode::FAILURE);
    }
    let options = crate::chat::ChatOptions {
        config_dir,
        agent,
        data_dir,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(crate::chat::run(options));
    // A read of stdin may still be parked in a blocking thread; do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("wagate chat: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn check(
    config_dir: &std::path::Path,
    online: bool,
    env_file: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let env = match crate::config::env_lookup(env_file) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let (report, ok) = crate::config::check_report_with_env(config_dir, &env);
    if !ok {
        eprintln!("{report}");
        return Ok(ExitCode::FAILURE);
    }
    println!("{report}");
    if !online {
        return Ok(ExitCode::SUCCESS);
    }
    let config = match Config::load_with_env(config_dir, &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let online = runtime.block_on(ops::online::run(&config));
    print!("{}", online.render());
    Ok(if online.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

// ---- operator commands ----

fn inbox(location: DatabaseLocation, options: &ops::inbox::InboxOptions, json: bool) -> ExitCode {
    let rendered = ops::inbox::report(location, options).and_then(|r| {
        if json {
            ops::inbox::render_json(&r)
        } else {
            Ok(ops::inbox::render_text(&r))
        }
    });
    report("inbox", rendered)
}

/// Prints a command's output, or its error on stderr with the error's exit code.
fn report(command: &str, outcome: Result<String, ops::OpsError>) -> ExitCode {
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wagate {command}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn healthcheck(url: Option<String>, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let url = url.unwrap_or_else(|| ops::healthcheck::default_url(listen.as_deref()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(match runtime.block_on(ops::healthcheck::probe(&url)) {
        Ok(()) => {
            println!("ok: {url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wagate healthcheck: {e}");
            ExitCode::FAILURE
        }
    })
}
