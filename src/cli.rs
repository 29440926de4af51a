//! The command line: `serve`, `check`, `simulate`, `chat`. Parsing and printing live here; each
//! command calls into the library.

use crate::config::Config;
use crate::inbox::store::Durability;
use crate::server::{self, ServeOptions};
use crate::telemetry::{self, LogFormat};
use anyhow::Context;
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
        /// Address to listen on.
        #[arg(long, env = "WAGATE_LISTEN", default_value = "0.0.0.0:8000")]
        listen: String,
        /// Directory for the SQLite database (created if missing).
        #[arg(long, env = "WAGATE_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Validate the configuration and print a summary; exit 1 if anything is wrong.
    Check {
        #[arg(long, env = "WAGATE_CONFIG", default_value = "./config")]
        config: PathBuf,
    },
    /// Post a Meta-shaped text message webhook to a running server (signed with
    /// WHATSAPP_APP_SECRET when set) and print the status code.
    Simulate {
        #[arg(
            long,
            default_value = "http://127.0.0.1:8000/v1/channels/whatsapp/webhook"
        )]
        url: String,
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
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve {
            config,
            listen,
            data,
        } => serve(config, listen, data),
        Command::Check { config } => Ok(check(&config)),
        Command::Simulate {
            url,
            from,
            name,
            phone_number_id,
            text,
        } => crate::simulate::run(&url, &from, &name, &phone_number_id, &text),
        Command::Chat {
            config,
            agent,
            data,
        } => chat(config, agent, data),
    }
}

// ---- `wagate chat` ----

fn chat(config_dir: PathBuf, agent: Option<String>, data_dir: PathBuf) -> anyhow::Result<ExitCode> {
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

fn serve(config_dir: PathBuf, listen: String, data: PathBuf) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&config_dir) {
        Ok(config) => config,
        Err(e) => {
            eprintln!(
                "wagate: invalid configuration in {}:\n{e}",
                config_dir.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let options = ServeOptions {
            data_dir: data,
            durability: Durability::Full,
            handler: None,
            graph: Default::default(),
        };
        server::run(listener, config, options, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn check(config_dir: &std::path::Path) -> ExitCode {
    let (report, ok) = crate::config::check_report(config_dir);
    if ok {
        println!("{report}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{report}");
        ExitCode::FAILURE
    }
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
