//! The console adapter: the terminal as the bot's chat.
//!
//! Reads lines: `/…` is a slash command by the current user in the current
//! channel, `:as USER` and `:in CHANNEL` (the word, then a space or the end
//! of the line) switch them, anything else (`:asap` too) is an ordinary
//! message in the current channel. Prints what the bot posts:
//! `[#channel] text`, `[#channel › OPS-12] text` in a ticket's thread,
//! `(only you) text` for private answers, or one JSON object per line with
//! `--json`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::commands;
use crate::domain::rich::Rich;
use crate::domain::{Actor, ChannelName, Source, UserName};
use crate::engine::{Effect, Event, Reply};
use crate::runtime::{Bot, BotError, DeliveryError, Sink};
use crate::store::OutboxItem;

/// How long the console waits for posts at the end of its input.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(10);

/// How long it waits after each line for the posts committed so far, to keep
/// the transcript in order; short, so a storm of posts does not stop it
/// reading the next command.
pub const LINE_WAIT: Duration = Duration::from_secs(2);

/// Where console output goes (stdout in the binary, a buffer in tests).
pub type Output = Arc<tokio::sync::Mutex<Box<dyn Write + Send>>>;

/// Wraps a writer as console output.
pub fn output(w: impl Write + Send + 'static) -> Output {
    Arc::new(tokio::sync::Mutex::new(Box::new(w)))
}

/// Text or JSON lines.
#[derive(Clone)]
pub struct Printer {
    out: Output,
    json: bool,
    /// Where attached files (report charts) are written.
    files: Option<std::path::PathBuf>,
}

/// Writes an attachment under `dir`; returns its path, or says why not.
fn save(dir: Option<&std::path::Path>, file: &crate::engine::Attachment) -> String {
    let Some(dir) = dir else {
        return format!(
            "{} ({} bytes, not saved: no folder for files)",
            file.name,
            file.bytes.len()
        );
    };
    // The name is ours, but keep it a plain file name all the same.
    let name: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(name);
    match std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, &file.bytes)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("{} (not saved: {e})", path.display()),
    }
}

/// Indents continuation lines so that each post starts with its prefix.
fn with_prefix(prefix: &str, text: &str) -> String {
    let mut s = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            s.push_str(prefix);
            s.push(' ');
        } else {
            s.push_str("\n  ");
        }
        s.push_str(line);
    }
    if text.is_empty() {
        s.push_str(prefix);
    }
    s.push('\n');
    s
}

impl Printer {
    pub fn new(out: Output, json: bool) -> Self {
        Self {
            out,
            json,
            files: None,
        }
    }

    /// Writes attached files (report charts) under `dir` and prints their path.
    pub fn with_files(mut self, dir: std::path::PathBuf) -> Self {
        self.files = Some(dir);
        self
    }

    /// Holds the output: nothing else prints until the guard is dropped.
    pub async fn lock(&self) -> Held<'_> {
        Held {
            out: self.out.lock().await,
            json: self.json,
            files: self.files.clone(),
        }
    }
}

/// The console output, held.
pub struct Held<'a> {
    out: tokio::sync::MutexGuard<'a, Box<dyn Write + Send>>,
    json: bool,
    files: Option<std::path::PathBuf>,
}

impl Held<'_> {
    fn emit(&mut self, text: &str) {
        // A closed stdout (a pipe that went away) leaves nobody to tell.
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// A direct answer to `user` in `channel`.
    pub fn reply(&mut self, user: &UserName, channel: &ChannelName, reply: &Reply) {
        let mut text = reply.body.to_plain();
        let file = reply.file.as_ref().map(|f| save(self.files.as_deref(), f));
        if self.json {
            let v = json!({
                "kind": "reply",
                "channel": channel.as_str(),
                "user": user.as_str(),
                "ephemeral": reply.ephemeral,
                "text": text,
                "file": file,
            });
            self.emit(&format!("{v}\n"));
        } else if reply.ephemeral {
            if let Some(f) = &file {
                text.push_str(&format!("\nchart: {f}"));
            }
            self.emit(&with_prefix("(only you)", &text));
        } else {
            if let Some(f) = &file {
                text.push_str(&format!("\nchart: {f}"));
            }
            self.emit(&with_prefix(&format!("[#{channel}]"), &text));
        }
    }

    /// A refusal or error, privately.
    pub fn private(&mut self, user: &UserName, channel: &ChannelName, text: impl Into<Rich>) {
        self.reply(user, channel, &Reply::private(text));
    }

    /// Shows an effect: a post as the channel shows it, a mail as
    /// `[mail → address] subject` once the mail server took it.
    pub fn effect(&mut self, effect: &Effect) {
        match effect {
            // Orders to job backends and to Alertmanager are not chat.
            Effect::Job(_) | Effect::Alertmanager(_) => {}
            // The posts already said what changed; a terminal has no card.
            Effect::Card(_) => {}
            Effect::Page(p) => {
                let text = p.body.to_plain();
                if self.json {
                    let v = json!({
                        "kind": "page",
                        "channel": null,
                        "to": p.to.as_str(),
                        "ticket": p.card.ticket.to_string(),
                        "text": text,
                    });
                    self.emit(&format!("{v}\n"));
                } else {
                    self.emit(&with_prefix(&format!("[page → {}]", p.to), &text));
                }
            }
            Effect::Mail(m) => {
                if self.json {
                    let v = json!({
                        "kind": "mail",
                        "channel": null,
                        "to": m.to,
                        "ticket": m.ticket.to_string(),
                        "text": m.subject,
                    });
                    self.emit(&format!("{v}\n"));
                } else {
                    self.emit(&format!(
                        "[mail → {}] {}\n",
                        m.to,
                        crate::domain::rich::one_line(&m.subject, 300)
                    ));
                }
            }
            Effect::Post(p) => {
                let mut text = p.body.to_plain();
                let file = p.file.as_ref().map(|f| save(self.files.as_deref(), f));
                if let (Some(f), false) = (&file, self.json) {
                    text.push_str(&format!("\nchart: {f}"));
                }
                // A ticket's card: its alert's links, a line each.
                let links = p
                    .card
                    .as_ref()
                    .map(|c| c.links.as_slice())
                    .unwrap_or_default();
                if !self.json {
                    for l in links {
                        text.push_str(&format!("\n{}: {}", l.label, l.url));
                    }
                }
                if self.json {
                    let mut v = json!({
                        "kind": "post",
                        "channel": p.channel.as_str(),
                        "ticket": p.ticket.as_ref().map(|t| t.to_string()),
                        "thread": p.thread,
                        "replaces": p.replaces,
                        "text": text,
                        "mentions": p.body.mentions(),
                        "file": file,
                    });
                    if !links.is_empty() {
                        v["links"] = json!(links);
                    }
                    self.emit(&format!("{v}\n"));
                } else {
                    let prefix = match (&p.ticket, p.thread) {
                        (Some(id), true) => format!("[#{} › {}]", p.channel, id),
                        _ => format!("[#{}]", p.channel),
                    };
                    self.emit(&with_prefix(&prefix, &text));
                }
            }
        }
    }
}

/// The console as an outbox sink: posts are printed.
pub struct ConsoleSink(pub Printer);

impl Sink for ConsoleSink {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        self.0.lock().await.effect(&item.effect);
        Ok(())
    }
}

/// Who is typing, and where.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: UserName,
    pub channel: ChannelName,
}

/// The rest of a console switch (`:as bob`, `:in backend`): `word` followed
/// by whitespace or the end of the line. Anything else (`:asap`) is not one.
fn switch<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() || rest.starts_with(char::is_whitespace) {
        Some(rest.trim())
    } else {
        None
    }
}

/// Reads `input` to its end, driving `bot`; prints to `printer`.
pub async fn run<R: AsyncBufRead + Unpin>(
    bot: &Bot,
    printer: &Printer,
    mut session: Session,
    input: R,
) -> std::io::Result<()> {
    let prefix = bot.engine().config().tickets.prefix.clone();
    let mut lines = input.lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (user, channel) = (session.user.clone(), session.channel.clone());
        if let Some(rest) = switch(line, ":as") {
            match UserName::parse(rest) {
                Ok(u) => session.user = u,
                Err(_) if rest.is_empty() => printer.lock().await.private(
                    &user,
                    &channel,
                    "`:as` needs a person's name, such as `:as bob`",
                ),
                Err(e) => printer.lock().await.private(&user, &channel, e.to_string()),
            }
            continue;
        }
        if let Some(rest) = switch(line, ":in") {
            match ChannelName::parse(rest) {
                Ok(c) => session.channel = c,
                Err(_) if rest.is_empty() => printer.lock().await.private(
                    &user,
                    &channel,
                    "`:in` needs a channel's name, such as `:in backend`",
                ),
                Err(e) => printer.lock().await.private(&user, &channel, e.to_string()),
            }
            continue;
        }
        let actor = Actor::new(user.clone(), Source::Console);
        let event = if line.starts_with('/') {
            match commands::parse_with_jobs(line, &prefix, &bot.engine().config().jobs) {
                Ok(command) => Event::Command {
                    actor,
                    channel: channel.clone(),
                    command,
                },
                Err(e) => {
                    printer.lock().await.private(&user, &channel, e.to_string());
                    continue;
                }
            }
        } else {
            Event::ChatMessage {
                author: actor,
                channel: channel.clone(),
                text: line.to_string(),
            }
        };
        // A query posts nothing: the next line is read at once, not after
        // the posts others (an alert storm) committed meanwhile.
        let posts = !event.is_query();
        // The answer prints before the posts that follow from it.
        let mut out = printer.lock().await;
        match bot.handle(event).await {
            Ok(Some(reply)) => out.reply(&user, &channel, &reply),
            Ok(None) => {}
            Err(BotError::Refused(e)) => out.private(&user, &channel, e.to_string()),
            Err(e) => out.private(&user, &channel, e.to_string()),
        }
        drop(out);
        // Keep the transcript in order: this line's posts before the next line.
        if posts {
            bot.wait_delivered(LINE_WAIT).await;
        }
    }
    Ok(())
}
