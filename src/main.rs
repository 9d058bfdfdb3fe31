//! The `opsbot` binary: the command line of DESIGN.md, and nothing else.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use opsbot::config::{self, Config, Loaded};
use opsbot::console::{self, ConsoleSink, Printer, Session};
use opsbot::domain::{ChannelName, UserName};
use opsbot::engine::Engine;
use opsbot::runtime::{Bot, SystemClock};
use opsbot::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "opsbot",
    version,
    about = "A chat-ops bot: tickets, alerts, support, builds and deploys from chat"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The bot on Discord, with its HTTP intake and workers.
    Run {
        /// The config file (default: $OPSBOT_CONFIG, then ./bot.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The same bot with the terminal as its chat.
    Console {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Who types (default: the first operator).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
        /// Where they type (default: the operations channel).
        #[arg(long)]
        channel: Option<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config; print a summary, or every error with its place.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write every ticket and timeline as JSON lines to stdout.
    Export {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load(flag: Option<PathBuf>) -> anyhow::Result<Loaded> {
    let path = config::resolve_path(flag);
    let loaded = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    Ok(loaded)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let result = match cli.cmd {
        Cmd::Check { config } => return check(config),
        Cmd::Run { config } => run(config),
        Cmd::Console {
            config,
            as_user,
            channel,
            json,
        } => console_cmd(config, as_user, channel, json),
        Cmd::Export { config } => export(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(flag: Option<PathBuf>) -> ExitCode {
    let path = config::resolve_path(flag);
    match Config::load(&path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("{w}");
            }
            println!("{}: ok", path.display());
            print!("{}", loaded.config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(flag: Option<PathBuf>) -> anyhow::Result<()> {
    let _ = load(flag)?;
    bail!(
        "`opsbot run` needs the Discord adapter, which is not wired yet; \
         run `opsbot console` to use the bot with the terminal as its chat"
    )
}

fn console_cmd(
    flag: Option<PathBuf>,
    as_user: Option<String>,
    channel: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let Loaded { config, .. } = load(flag)?;
    let user = match as_user {
        Some(u) => UserName::parse(&u)?,
        None => config
            .org
            .operators
            .first()
            .cloned()
            .unwrap_or(UserName::parse("console")?),
    };
    let channel = match channel {
        Some(c) => ChannelName::parse(&c)?,
        None => config.tickets.channel.clone(),
    };
    let store = Store::open(&config.storage_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let engine = Engine::new(Arc::new(config));
    let (bot, writer) = Bot::start(store.clone(), engine, Arc::new(SystemClock))?;
    let out = console::output(std::io::stdout());
    let printer = Printer::new(out, json);
    let (stop_tx, stop_rx) = watch::channel(false);
    rt.block_on(async {
        let worker = tokio::spawn(bot.outbox_worker(ConsoleSink(printer.clone()), stop_rx));
        // Posts left undelivered by a previous run go out first.
        bot.wait_delivered(console::DELIVERY_WAIT).await;
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let res = console::run(&bot, &printer, Session { user, channel }, stdin).await;
        bot.wait_delivered(console::DELIVERY_WAIT).await;
        let _ = stop_tx.send(true);
        let _ = worker.await;
        res
    })?;
    drop(bot);
    writer.join();
    store.flush()?;
    Ok(())
}

fn export(flag: Option<PathBuf>) -> anyhow::Result<()> {
    let Loaded { config, .. } = load(flag)?;
    let store = Store::open(&config.storage_path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let n = store.export_jsonl(&mut out)?;
    out.flush()?;
    eprintln!("exported {n} tickets");
    Ok(())
}
