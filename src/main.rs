//! The `opsbot` binary: the command line of DESIGN.md, and nothing else.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use opsbot::config::{self, Config, Loaded};
use opsbot::console::{self, ConsoleSink, Printer, Session};
use opsbot::domain::{ChannelName, UserName};
use opsbot::engine::Engine;
use opsbot::http::{self, HttpState, SupportIntake};
use opsbot::metrics::Metrics;
use opsbot::runner::{JenkinsRunner, JobRunner, LocalRunner};
use opsbot::runtime::{Bot, SystemClock};
use opsbot::smtp::SmtpSink;
use opsbot::store::Queue;
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
        /// The HTTP intake's address (default: [http] listen); port 0 picks one.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
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
        /// The HTTP intake's address (default: [http] listen); port 0 picks one.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
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
        Cmd::Run { config, listen } => run(config, listen),
        Cmd::Console {
            config,
            as_user,
            channel,
            json,
            listen,
        } => console_cmd(config, as_user, channel, json, listen),
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

fn run(flag: Option<PathBuf>, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let Loaded { config, .. } = load(flag)?;
    let Some(token) = config.discord.token.value.clone() else {
        bail!(
            "{} is not set: `opsbot run` needs the bot's Discord token in it; \
             to use the bot without Discord, run `opsbot console`",
            config.discord.token.var
        );
    };
    let store = Store::open(&config.storage_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = Arc::new(config);
    let clock = Arc::new(SystemClock);
    let (bot, writer) = Bot::start(store.clone(), Engine::new(config.clone()), clock.clone())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stop_worker_tx, stop_worker_rx) = watch::channel(false);
    rt.block_on(async {
        let http = match &config.discord.api_base {
            Some(base) => serenity::http::HttpBuilder::new(token.expose())
                .proxy(base.clone())
                .ratelimiter_disabled(true)
                .build(),
            None => serenity::http::Http::new(token.expose()),
        };
        let http = Arc::new(http);
        let chat = tokio::spawn(bot.outbox_worker(
            Queue::Chat,
            opsbot::discord::DiscordSink {
                http: http.clone(),
                bot: bot.clone(),
            },
            stop_worker_rx.clone(),
        ));
        let smtp = SmtpSink::new(&config.smtp, bot.clone(), None)?;
        let mailer = tokio::spawn(bot.outbox_worker(Queue::Mail, smtp, stop_worker_rx.clone()));
        let jenkins = match &config.jenkins {
            Some(j) => Some(
                JenkinsRunner::new(bot.clone(), j).context("cannot set up the Jenkins client")?,
            ),
            None => None,
        };
        bot.settle_lost_runs().await;
        if let Some(j) = &jenkins {
            j.resume();
        }
        let job_runner = JobRunner {
            local: LocalRunner::new(bot.clone()),
            jenkins,
        };
        let jobs = tokio::spawn(bot.outbox_worker(Queue::Jobs, job_runner, stop_worker_rx));
        let ticker = tokio::spawn(bot.stale_ticker(STALE_EVERY, clock, stop_rx.clone()));
        let server = start_http(&bot, &config, listen, stop_rx.clone()).await?;
        // Ask for the message-content intent only when message rules need it.
        let mut intents = serenity::all::GatewayIntents::GUILDS;
        if !config.alerts.message_rules.is_empty() {
            intents |= serenity::all::GatewayIntents::GUILD_MESSAGES
                | serenity::all::GatewayIntents::MESSAGE_CONTENT;
        }
        let (ready_tx, _ready_rx) = watch::channel(false);
        let handler = opsbot::discord::Handler {
            bot: bot.clone(),
            ready: ready_tx,
        };
        let builder = match &config.discord.api_base {
            // Tests and proxies: serenity honours a proxy only without its ratelimiter.
            Some(base) => serenity::all::ClientBuilder::new_with_http(
                serenity::http::HttpBuilder::new(token.expose())
                    .proxy(base.clone())
                    .ratelimiter_disabled(true)
                    .build(),
                intents,
            ),
            None => serenity::Client::builder(token.expose(), intents),
        };
        let client = builder.event_handler(handler);
        let mut client = client.await.context("cannot set up the Discord client")?;
        let shards = client.shard_manager.clone();
        let gateway = tokio::spawn(async move { client.start().await });
        // Stop on Ctrl-C or SIGTERM: no new interactions, commits finished,
        // the outbox left for the next start.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            r = gateway => {
                if let Ok(Err(e)) = r {
                    eprintln!("error: the Discord connection ended: {e}");
                }
            }
        }
        eprintln!("stopping");
        shards.shutdown_all().await;
        let _ = stop_tx.send(true);
        let _ = server.await;
        let _ = ticker.await;
        bot.wait_delivered(Duration::from_secs(5)).await;
        let _ = stop_worker_tx.send(true);
        let _ = chat.await;
        let _ = mailer.await;
        let _ = jobs.await;
        anyhow::Ok(())
    })?;
    drop(bot);
    writer.join();
    store.flush()?;
    Ok(())
}

/// How long the console waits, at the end of its input, for running jobs.
const JOB_WAIT: Duration = Duration::from_secs(60);

/// How often quiet alert groups are looked for.
const STALE_EVERY: Duration = Duration::from_secs(30);

/// Binds the HTTP intake and serves it until `stop` turns true. Prints
/// `listening on http://HOST:PORT` once requests are accepted.
async fn start_http(
    bot: &Bot,
    config: &Config,
    listen: Option<SocketAddr>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let addr = listen.unwrap_or(config.http.listen);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}; pass --listen 127.0.0.1:0 for a free port, or change [http] listen")
    })?;
    let bound = listener.local_addr()?;
    let state = HttpState {
        bot: bot.clone(),
        token: config.http.token.value.clone(),
        token_var: config.http.token.var.clone(),
        api_token: config.http.api_token.value.clone(),
        api_token_var: config.http.api_token.var.clone(),
        body_limit: config.http.body_limit,
        metrics: Arc::new(Metrics::new()),
        support: Arc::new(
            SupportIntake::new(&config.support).context("cannot set up the session checker")?,
        ),
    };
    let mut stop = stop;
    let server = tokio::spawn(http::serve(listener, state, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    eprintln!("listening on http://{bound}");
    Ok(server)
}

fn console_cmd(
    flag: Option<PathBuf>,
    as_user: Option<String>,
    channel: Option<String>,
    json: bool,
    listen: Option<SocketAddr>,
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
    let config = Arc::new(config);
    let engine = Engine::new(config.clone());
    let clock = Arc::new(SystemClock);
    let (bot, writer) = Bot::start(store.clone(), engine, clock.clone())?;
    let out = console::output(std::io::stdout());
    let printer = Printer::new(out, json).with_files(config.storage_path.join("reports"));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stop_worker_tx, stop_worker_rx) = watch::channel(false);
    rt.block_on(async {
        let worker = tokio::spawn(bot.outbox_worker(
            Queue::Chat,
            ConsoleSink(printer.clone()),
            stop_worker_rx.clone(),
        ));
        let smtp = SmtpSink::new(&config.smtp, bot.clone(), Some(printer.clone()))?;
        let mailer = tokio::spawn(bot.outbox_worker(Queue::Mail, smtp, stop_worker_rx.clone()));
        let runner = LocalRunner::new(bot.clone());
        let jenkins = match &config.jenkins {
            Some(j) => Some(
                JenkinsRunner::new(bot.clone(), j).context("cannot set up the Jenkins client")?,
            ),
            None => None,
        };
        // Local runs a previous process left running died with it; Jenkins
        // runs are followed again.
        bot.settle_lost_runs().await;
        if let Some(j) = &jenkins {
            j.resume();
        }
        let job_runner = JobRunner {
            local: runner.clone(),
            jenkins,
        };
        let jobs = tokio::spawn(bot.outbox_worker(Queue::Jobs, job_runner.clone(), stop_worker_rx));
        let ticker = tokio::spawn(bot.stale_ticker(STALE_EVERY, clock, stop_rx.clone()));
        let server = start_http(&bot, &config, listen, stop_rx.clone()).await?;
        // Posts left undelivered by a previous run go out first.
        bot.wait_delivered(console::DELIVERY_WAIT).await;
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let res = console::run(&bot, &printer, Session { user, channel }, stdin).await;
        // Stop taking requests, then deliver what they committed.
        let _ = stop_tx.send(true);
        let _ = server.await;
        let _ = ticker.await;
        // Finish the pending work: jobs started (bounded), mail, posts.
        bot.wait_queue(Queue::Jobs, console::DELIVERY_WAIT).await;
        if !job_runner.wait_idle(JOB_WAIT).await {
            eprintln!(
                "jobs still running after {JOB_WAIT:?}; they are marked failed at the next start"
            );
        }
        bot.wait_queue(Queue::Mail, console::DELIVERY_WAIT).await;
        bot.wait_delivered(console::DELIVERY_WAIT).await;
        let _ = stop_worker_tx.send(true);
        let _ = worker.await;
        let _ = mailer.await;
        let _ = jobs.await;
        res.map_err(anyhow::Error::from)
    })?;
    drop(bot);
    writer.join();
    store.flush()?;
    for (what, q) in [
        ("chat post(s)", Queue::Chat),
        ("customer mail(s)", Queue::Mail),
    ] {
        let left = store.queue_len(q);
        if left > 0 {
            eprintln!("{left} {what} still queued; the next start delivers them");
        }
    }
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
