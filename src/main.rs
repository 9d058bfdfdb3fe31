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

use opsbot::adapters::console::{self, ConsoleSink, Printer, Session};
use opsbot::config::{self, Config, Loaded};
use opsbot::domain::{ChannelName, UserName};
use opsbot::store::Queue;

/// The version and the git commit the binary was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OPSBOT_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "opsbot",
    version = VERSION,
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
    /// Restores an export (JSON lines on stdin) into an empty store, of either backend.
    Import {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Prints the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff), e.g. `opsbot man > /usr/local/share/man/man1/opsbot.1`.
    Man,
    /// Prints the URL that adds the bot to a Discord server, with the permissions the config needs.
    Invite {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The application's id (default: read from the bot's token).
        #[arg(long, value_name = "ID")]
        client_id: Option<u64>,
    },
}

/// A line to stderr. A closed or broken stderr (`2>&-`, a log pipe whose
/// reader went away) is no reason to stop, so, unlike `eprintln!`, this never
/// panics: what cannot be written is dropped.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A line to stdout, dropped if stdout is gone (`opsbot check | head -1`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod app;

/// Where the logs go: stderr, ignoring its errors (see [`errln`]).
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Starts the log on stderr, filtered by `RUST_LOG` (default `warn`), as
/// text or as one JSON object per line (`[log] format`).
fn init_logs(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        // Its own complaints about a failed write go to stderr with
        // `eprintln!`, which panics on a broken stderr.
        .log_internal_errors(false);
    // `try_init`: a second call (never made) would be a no-op, not a panic.
    let _ = match format {
        config::LogFormat::Text => fmt.try_init(),
        config::LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

fn load(flag: Option<PathBuf>) -> anyhow::Result<Loaded> {
    let path = config::resolve_path(flag);
    let loaded = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The log starts once its format is known.
    init_logs(loaded.config.log_format);
    for w in &loaded.warnings {
        errln!("{w}");
    }
    Ok(loaded)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that read the config start the log in `load`.
    if !matches!(
        cli.cmd,
        Cmd::Run { .. }
            | Cmd::Console { .. }
            | Cmd::Export { .. }
            | Cmd::Import { .. }
            | Cmd::Invite { .. }
    ) {
        init_logs(config::LogFormat::Text);
    }
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
        Cmd::Import { config } => import(config),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "opsbot", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Invite { config, client_id } => invite(config, client_id),
        Cmd::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("cannot write the man page")
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(flag: Option<PathBuf>) -> ExitCode {
    let path = config::resolve_path(flag);
    match Config::load(&path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                outln!("{w}");
            }
            outln!("{}: ok", path.display());
            let _ = std::io::Write::write_all(
                &mut std::io::stdout(),
                loaded.config.summary().as_bytes(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), e.to_string().as_bytes());
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
    let store = app::open_store(&config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The gateway, the interactions and their answers on a runtime of their
    // own: the HTTP intake's and the outbox's tasks on the main runtime never
    // queue ahead of a person's command (the gateway's frame, the handler,
    // the callback), however busy an alert storm keeps them.
    let discord_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("opsbot-discord")
        .enable_all()
        .build()
        .context("cannot start the Discord runtime")?;
    let discord = discord_rt.handle().clone();
    let config = Arc::new(config);
    let (bot, writer, clock) = app::open(store, &config)?;
    // Not ready until the gateway is connected.
    bot.health().watch_gateway(chrono::Utc::now());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stop_worker_tx, stop_worker_rx) = watch::channel(false);
    let result = rt.block_on(async {
        // Stop on Ctrl-C or SIGTERM, watched from the start: a remote
        // service that never answers must not keep the bot from stopping.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        // SIGHUP reloads bot.toml and commands/ (acted on once the Discord
        // client is set up, below).
        let hup = app::hangups()?;
        let signalled = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        tokio::pin!(signalled);
        let http = Arc::new(discord_http(
            token.expose(),
            config.discord.api_base.as_deref(),
        )?);
        // The Discord client's own HTTP client, once set up: it knows the
        // application's id (from the gateway's ready), which registering
        // commands needs. Until then the ready registers them from the
        // config in effect.
        let (client_http_tx, client_http_rx) =
            watch::channel::<Option<Arc<serenity::http::Http>>>(None);
        app::watch_reload(&bot, hup, stop_rx.clone(), move |old, new| {
            let http = client_http_rx.borrow().clone();
            async move {
                if let Some(http) = http {
                    app::reregister_commands(&http, &old, &new).await;
                }
            }
        });
        let chat = tokio::spawn(bot.outbox_worker(
            Queue::Chat,
            opsbot::adapters::discord::DiscordSink {
                http: http.clone(),
                bot: bot.clone(),
            },
            stop_worker_rx.clone(),
        ));
        // A standby waits here for the lease, serving HTTP; SIGTERM stops it.
        let started = {
            let starting = app::start(
                &bot,
                &config,
                clock,
                None,
                listen,
                stop_rx.clone(),
                stop_worker_rx,
            );
            tokio::pin!(starting);
            tokio::select! {
                s = &mut starting => s?,
                _ = &mut signalled => {
                    let _ = stop_tx.send(true);
                    let _ = tokio::time::timeout(Duration::from_secs(3), starting).await;
                    None
                }
            }
        };
        let Some(app::Started {
            mailer,
            jobs,
            job_runner,
            ticker,
            server,
            keeper,
            alertmanager,
        }) = started
        else {
            errln!("stopping");
            app::notify_stopping();
            chat.abort();
            return anyhow::Ok(());
        };
        // The jobs worker holds the runners from here on.
        drop(job_runner);
        // Ask for the message-content intent only when message rules need it.
        let mut intents = serenity::all::GatewayIntents::GUILDS;
        if !config.alerts.message_rules.is_empty() {
            intents |= serenity::all::GatewayIntents::GUILD_MESSAGES
                | serenity::all::GatewayIntents::MESSAGE_CONTENT;
        }
        let (ready_tx, _ready_rx) = watch::channel(false);
        let handler = opsbot::adapters::discord::Handler {
            bot: bot.clone(),
            ready: ready_tx,
            setup_told: Default::default(),
        };
        let builder = serenity::all::ClientBuilder::new_with_http(
            discord_http(token.expose(), config.discord.api_base.as_deref())?,
            intents,
        );
        // Setting up the client already asks Discord (the gateway's
        // address): in a task, so that a Discord that never answers cannot
        // hold the bot past a SIGTERM.
        let (shards_tx, shards_rx) = watch::channel(None);
        let mut gateway = discord.spawn(async move {
            let mut client = builder
                .event_handler(handler)
                .await
                .context("cannot set up the Discord client")?;
            shards_tx.send_replace(Some(client.shard_manager.clone()));
            client_http_tx.send_replace(Some(client.http.clone()));
            client.start().await.context("the Discord connection ended")
        });
        // Readiness follows the gateway: whether a shard is connected.
        let watcher = {
            let (shards, health, mut stop) =
                (shards_rx.clone(), bot.health().clone(), stop_rx.clone());
            tokio::spawn(async move {
                loop {
                    let manager = shards.borrow().clone();
                    let connected = match manager {
                        Some(m) => m.runners.lock().await.values().any(|r| {
                            matches!(r.stage, serenity::gateway::ConnectionStage::Connected)
                        }),
                        None => false,
                    };
                    health.set_gateway(connected, chrono::Utc::now());
                    tokio::select! {
                        _ = tokio::time::sleep(GATEWAY_CHECK) => {}
                        _ = stop.changed() => return,
                    }
                }
            })
        };
        // No new interactions, commits finished, the outbox left for the
        // next start.
        tokio::select! {
            _ = &mut signalled => {}
            r = &mut gateway => {
                match r {
                    Ok(Err(e)) => errln!("error: {e:#}"),
                    Err(e) => errln!("error: the Discord connection failed: {e}"),
                    Ok(Ok(())) => {}
                }
            }
        }
        errln!("stopping");
        app::notify_stopping();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        let upto = |cap: Duration| {
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(cap)
        };
        // The shards, if the client got as far as making them.
        let manager = shards_rx.borrow().clone();
        if let Some(shards) = manager {
            let _ = tokio::time::timeout(upto(Duration::from_secs(2)), shards.shutdown_all()).await;
        }
        gateway.abort();
        let _ = stop_tx.send(true);
        // Requests in flight get a moment to finish; then they are cut.
        finish(server, upto(Duration::from_secs(2))).await;
        finish(ticker, upto(Duration::from_secs(1))).await;
        finish(watcher, upto(Duration::from_secs(1))).await;
        // Deliver what is committed while there is time, then stop the
        // workers together, cutting off one stuck in a delivery (what it
        // was delivering stays in the outbox).
        bot.wait_delivered(upto(SHUTDOWN_WAIT).saturating_sub(Duration::from_secs(1)))
            .await;
        let _ = stop_worker_tx.send(true);
        let mut workers = [chat, mailer, jobs];
        let _ = tokio::time::timeout_at(deadline, async {
            for w in workers.iter_mut() {
                let _ = w.await;
            }
        })
        .await;
        for w in &workers {
            w.abort();
        }
        for h in alertmanager {
            let cut = h.abort_handle();
            if tokio::time::timeout_at(deadline, h).await.is_err() {
                cut.abort();
            }
        }
        // The workers stopped: the lease is given up for a standby.
        finish(keeper, upto(Duration::from_secs(1))).await;
        anyhow::Ok(())
    });
    // Tasks still running (a hung request, the gateway) are dropped here.
    rt.shutdown_timeout(Duration::from_millis(500));
    discord_rt.shutdown_timeout(Duration::from_millis(500));
    let store = bot.store();
    drop(bot);
    if !writer.join_within(Duration::from_secs(1)) {
        errln!("the commit thread did not finish in time; what it committed is on disk");
    }
    let store = store?;
    store.flush()?;
    result?;
    let left: Vec<String> = [
        ("post(s)", Queue::Chat),
        ("customer mail(s)", Queue::Mail),
        ("job order(s)", Queue::Jobs),
    ]
    .into_iter()
    .filter_map(|(what, q)| {
        let n = store.queue_len(q);
        (n > 0).then(|| format!("{n} {what}"))
    })
    .collect();
    if left.is_empty() {
        errln!("stopped");
    } else {
        errln!(
            "stopped with {} undelivered; they go out at the next start",
            left.join(", ")
        );
    }
    Ok(())
}

/// The longest the async part of stopping takes after SIGTERM, whatever
/// remote services do; with the runtime's and the commit thread's bounded
/// ends after it, `opsbot run` is gone within 10 s.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(7);

/// How long one request to Discord may take before it counts as failed.
const DISCORD_TIMEOUT: Duration = Duration::from_secs(30);

/// The Discord REST client: serenity's, on a reqwest client with timeouts
/// (serenity's own has none, so a Discord that never answers would hold a
/// post, and the shutdown behind it, forever).
fn discord_http(token: &str, api_base: Option<&str>) -> anyhow::Result<serenity::http::Http> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(10))
        .timeout(DISCORD_TIMEOUT)
        .build()
        .context("cannot set up the Discord HTTP client")?;
    let builder = serenity::http::HttpBuilder::new(token).client(client);
    Ok(match api_base {
        // Tests and proxies: serenity honours a proxy only without its ratelimiter.
        Some(base) => builder.proxy(base).ratelimiter_disabled(true).build(),
        None => builder.build(),
    })
}

/// Waits for a task at most `wait`, then cuts it off.
async fn finish<T>(mut task: tokio::task::JoinHandle<T>, wait: Duration) {
    if tokio::time::timeout(wait, &mut task).await.is_err() {
        task.abort();
    }
}

/// How long the console waits, at the end of its input, for running jobs.
const JOB_WAIT: Duration = Duration::from_secs(60);

/// How often readiness looks at the Discord gateway's connection.
const GATEWAY_CHECK: Duration = Duration::from_secs(1);

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
    let store = app::open_store(&config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = Arc::new(config);
    let (bot, writer, clock) = app::open(store, &config)?;
    let out = console::output(std::io::stdout());
    let printer = Printer::new(out, json).with_files(config.storage_path.join("reports"));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stop_worker_tx, stop_worker_rx) = watch::channel(false);
    rt.block_on(async {
        // SIGHUP reloads bot.toml and commands/, as under `opsbot run`.
        app::watch_reload(&bot, app::hangups()?, stop_rx.clone(), |_, _| async {});
        let worker = tokio::spawn(bot.outbox_worker(
            Queue::Chat,
            ConsoleSink(printer.clone()),
            stop_worker_rx.clone(),
        ));
        let Some(app::Started {
            mailer,
            jobs,
            job_runner,
            ticker,
            server,
            keeper,
            alertmanager,
        }) = app::start(
            &bot,
            &config,
            clock,
            Some(printer.clone()),
            listen,
            stop_rx.clone(),
            stop_worker_rx,
        )
        .await?
        else {
            return Ok(());
        };
        // Posts left undelivered by a previous run go out first.
        bot.wait_delivered(console::DELIVERY_WAIT).await;
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let res = console::run(&bot, &printer, Session { user, channel }, stdin).await;
        app::notify_stopping();
        // Stop taking requests, then deliver what they committed.
        let _ = stop_tx.send(true);
        let _ = server.await;
        let _ = ticker.await;
        // Finish the pending work: jobs started (bounded), mail, posts.
        bot.wait_queue(Queue::Jobs, console::DELIVERY_WAIT).await;
        if !job_runner.wait_idle(JOB_WAIT).await {
            errln!(
                "jobs still running after {JOB_WAIT:?}; they are marked failed at the next start"
            );
        }
        // What the ended jobs ordered (commit statuses, a deploy's commits).
        bot.wait_queue(Queue::Jobs, console::DELIVERY_WAIT).await;
        bot.wait_queue(Queue::Mail, console::DELIVERY_WAIT).await;
        if !alertmanager.is_empty() {
            bot.wait_queue(Queue::Alertmanager, console::DELIVERY_WAIT)
                .await;
        }
        bot.wait_delivered(console::DELIVERY_WAIT).await;
        let _ = stop_worker_tx.send(true);
        let _ = worker.await;
        let _ = mailer.await;
        let _ = jobs.await;
        for h in alertmanager {
            let _ = h.await;
        }
        let _ = keeper.await;
        res.map_err(anyhow::Error::from)
    })?;
    let store = bot.store();
    drop(bot);
    writer.join();
    let store = store?;
    store.flush()?;
    for (what, q) in [
        ("chat post(s)", Queue::Chat),
        ("customer mail(s)", Queue::Mail),
    ] {
        let left = store.queue_len(q);
        if left > 0 {
            errln!("{left} {what} still queued; the next start delivers them");
        }
    }
    Ok(())
}

/// `opsbot export` while the bot runs on the data directory: the running
/// bot's `GET /api/v1/export` at `[http] listen`, with the API token.
fn export_from_running(config: &Config) -> anyhow::Result<()> {
    let Some(token) = &config.http.api_token.value else {
        bail!(
            "`opsbot export` then asks the running bot over HTTP, which needs {} set (the ticket API's token)",
            config.http.api_token.var
        );
    };
    let url = format!("http://{}/api/v1/export", config.http.listen);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Written out as it comes: the bot streams it, and an export of a
    // large store need not fit in memory.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let n = rt.block_on(async {
        let mut resp = reqwest::Client::new()
            .get(&url)
            .bearer_auth(token.expose())
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .with_context(|| {
                format!("the bot holds the data directory, but {url} does not answer")
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            bail!(
                "the running bot refused the export ({status}): {}",
                String::from_utf8_lossy(&body)
            );
        }
        let mut n = 0usize;
        // The line being received (a record is a line; pieces cut anywhere).
        let mut partial: Vec<u8> = Vec::new();
        let is_ticket = |l: &[u8]| l.windows(15).any(|w| w == b"\"type\":\"ticket\"");
        while let Some(piece) = resp.chunk().await.context(
            "the export broke off before its end (the bot logged why); what was written is incomplete",
        )? {
            out.write_all(&piece)?;
            partial.extend_from_slice(&piece);
            let mut rest = partial.as_slice();
            while let Some(end) = rest.iter().position(|b| *b == b'\n') {
                n += usize::from(is_ticket(&rest[..end]));
                rest = &rest[end + 1..];
            }
            partial = rest.to_vec();
        }
        n += usize::from(is_ticket(&partial));
        anyhow::Ok(n)
    })?;
    out.flush()?;
    errln!("exported {n} tickets (from the running bot at {url})");
    Ok(())
}

fn invite(flag: Option<PathBuf>, client_id: Option<u64>) -> anyhow::Result<()> {
    use opsbot::adapters::discord::invite;
    let Loaded { config, .. } = load(flag)?;
    let id = match client_id {
        Some(id) => id,
        None => match config.discord.token.value.as_ref() {
            Some(t) => invite::client_id_from_token(t.expose()).with_context(|| {
                format!(
                    "{} does not look like a bot token; pass --client-id (the application id on the Developer Portal's General Information page)",
                    config.discord.token.var
                )
            })?,
            None => bail!(
                "pass --client-id (the application id on the Developer Portal's General Information page), or set {} so that it is read from the token",
                config.discord.token.var
            ),
        },
    };
    outln!("{}", invite::url(&config, id));
    outln!("It asks for the scopes bot and applications.commands, and these permissions:");
    for (p, why) in invite::permissions(&config) {
        outln!("  {p}: {why}");
    }
    if !config.alerts.message_rules.is_empty() {
        outln!(
            "Message rules read messages: turn on the Message Content intent on the Developer Portal (Bot page) too."
        );
    }
    if !config.discord.usernames.is_empty() {
        outln!(
            "[discord.users] names people by username: turn on the Server Members intent on the Developer Portal (Bot page) too, so that the bot may list the server's members."
        );
    }
    Ok(())
}

fn import(flag: Option<PathBuf>) -> anyhow::Result<()> {
    let Loaded { config, .. } = load(flag)?;
    let store = app::open_store(&config)?;
    let stdin = std::io::stdin();
    let n = store.import_jsonl(&mut stdin.lock())?;
    errln!("imported {n} tickets into {}", store.backend());
    Ok(())
}

fn export(flag: Option<PathBuf>) -> anyhow::Result<()> {
    let Loaded { config, .. } = load(flag)?;
    let store = match app::open_store(&config) {
        Ok(s) => s,
        // The bot runs and holds sled's files: ask it.
        Err(e)
            if matches!(
                e.downcast_ref::<opsbot::error::StoreError>(),
                Some(opsbot::error::StoreError::Locked { .. })
            ) =>
        {
            return export_from_running(&config).map_err(|why| anyhow::anyhow!("{e}; {why:#}"));
        }
        Err(e) => return Err(e),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let n = store.export_jsonl(&mut out)?;
    out.flush()?;
    errln!("exported {n} tickets");
    Ok(())
}
