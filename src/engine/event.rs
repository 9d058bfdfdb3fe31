//! Events: what happened, typed at the edge; the engine's only input.

use crate::commands::Command;
use crate::domain::alert::Alert;
use crate::domain::{Actor, ChannelName, TicketId, Timestamp};
use crate::engine::effect::{Attachment, Mail};

/// Something that happened, typed at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A slash command run by a person in a channel.
    Command {
        actor: Actor,
        channel: ChannelName,
        command: Command,
    },
    /// An ordinary chat message in a channel.
    ChatMessage {
        author: Actor,
        channel: ChannelName,
        text: String,
    },
    /// A batch of alerts from a monitoring tool, accepted or refused whole.
    Alerts { alerts: Vec<Alert> },
    /// Alert groups the timer found quiet for longer than their route allows.
    MarkStale { groups: Vec<String> },
    /// A customer's request from the company app, signature and session
    /// already checked by the adapter.
    SupportRequest {
        customer: crate::domain::Customer,
        subject: String,
        message: String,
        idempotency_key: Option<String>,
    },
    /// The mail server took a mail: it goes on the ticket's record.
    MailSent { mail: Mail },
    /// A job backend reports on a run.
    RunUpdate {
        run: crate::domain::run::RunId,
        update: crate::domain::run::RunUpdate,
    },
    /// A chat adapter reports that a channel refused a post for good (a
    /// missing permission, an unknown channel): the operations channel
    /// hears of it once per channel.
    ChannelRefused { channel: ChannelName, why: String },
    /// At start: a run an earlier process left in flight, with the job
    /// orders still queued for it (their outbox seqs). The engine decides
    /// whether it is lost (a local process died with that process; Jenkins
    /// keeps running what it was given) and then marks it failed and drops
    /// its orders.
    LostRun {
        run: crate::domain::run::RunId,
        orders: Vec<u64>,
    },
    /// The timer: tickets the due index says have a deadline or an
    /// escalation step due (the engine checks again), and the rotations'
    /// handoffs.
    Tick { tickets: Vec<TicketId> },
    /// The weekly report, computed by the timer from the store: posted once
    /// for the scheduled instant `due`.
    ScheduledReport {
        due: Timestamp,
        /// The report's figures (empty when the engine said only to note
        /// the schedule).
        figures: crate::domain::rich::Rich,
        file: Option<Attachment>,
    },
    /// The timer: maintenance windows are due to start or end (the engine
    /// said so; it checks again).
    Maintenance,
    /// A heartbeat was heard (`POST /hooks/heartbeat/NAME`); the adapter
    /// checked that the config names it.
    Heartbeat { name: String },
    /// The timer: a heartbeat is past its deadline, or not yet waited for
    /// (the engine said so; it checks again).
    HeartbeatCheck,
    /// Alertmanager made the bot's silence `silence`, with id `am_id`.
    SilenceMade { silence: u64, am_id: String },
    /// The silences in force in Alertmanager, as its API lists them now.
    AlertmanagerSilences {
        silences: Vec<crate::domain::silences::AmSilence>,
    },
    /// A page could not reach its person (direct messages closed, no chat
    /// id): said once in the ticket's team channel.
    PageRefused {
        to: crate::domain::UserName,
        ticket: TicketId,
        why: String,
    },
    /// A mail from the support inbox (IMAP), parsed by the adapter.
    InboundMail {
        mail: Box<crate::engine::inbox::InboundMail>,
    },
    /// A branch of a configured repository moved or was deleted (a forge's
    /// webhook, signature checked by the adapter); `delivery` is the
    /// forge's id of the message, the same on a redelivery.
    Push {
        delivery: Option<String>,
        push: crate::domain::code::Push,
    },
    /// A forge's CI reports a workflow run or pipeline of a configured
    /// repository (webhook, signature checked by the adapter).
    ForgeRun {
        delivery: Option<String>,
        run: Box<crate::domain::ci::ForgeRun>,
    },
    /// The poller could not reach a `git` repository (`error`), or reached
    /// it again (`None`): the team hears once of each change.
    RepoReach { repo: String, error: Option<String> },
    /// The forge refused a repository's commit status for good.
    StatusRefused { repo: String, why: String },
    /// What git says of a succeeded deploy's commits (the answer to a
    /// `DeployCommits` job order): the tickets they fix are resolved.
    DeployCommits {
        run: crate::domain::run::RunId,
        repo: String,
        found: crate::domain::code::DeployCommits,
    },
    /// Once connected, the chat adapter reports what it did not find by
    /// name: channels the config names without an id, people whose
    /// username no member has (or all of them, when the member list was
    /// refused), and the permissions it lacks in the channels it uses. The
    /// operations channel hears of it, once per start.
    ChatSetup {
        missing_channels: Vec<ChannelName>,
        missing_users: Vec<(crate::domain::UserName, String)>,
        members_refused: bool,
        /// Channels where the bot lacks permissions it needs, with their
        /// names as Discord shows them.
        missing_permissions: Vec<(ChannelName, Vec<String>)>,
    },
    /// `SIGHUP` read `bot.toml` and `commands/` again. `ok`: they were
    /// valid and are in effect now; `problems`: why they were not (and the
    /// running config stays), each naming its file, line and key; `restart`:
    /// the settings that changed but take effect only after a restart (they
    /// keep their old value until then).
    ConfigReloaded {
        ok: bool,
        problems: Vec<String>,
        restart: Vec<String>,
    },
}

impl Event {
    /// The event's kind, a word for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Command { .. } => "command",
            Event::ChatMessage { .. } => "chat_message",
            Event::Alerts { .. } => "alerts",
            Event::MarkStale { .. } => "mark_stale",
            Event::SupportRequest { .. } => "support_request",
            Event::MailSent { .. } => "mail_sent",
            Event::RunUpdate { .. } => "run_update",
            Event::ChannelRefused { .. } => "channel_refused",
            Event::LostRun { .. } => "lost_run",
            Event::Tick { .. } => "tick",
            Event::ScheduledReport { .. } => "scheduled_report",
            Event::Maintenance => "maintenance",
            Event::Heartbeat { .. } => "heartbeat",
            Event::HeartbeatCheck => "heartbeat_check",
            Event::SilenceMade { .. } => "silence_made",
            Event::AlertmanagerSilences { .. } => "alertmanager_silences",
            Event::PageRefused { .. } => "page_refused",
            Event::InboundMail { .. } => "inbound_mail",
            Event::Push { .. } => "push",
            Event::ForgeRun { .. } => "forge_run",
            Event::RepoReach { .. } => "repo_reach",
            Event::StatusRefused { .. } => "status_refused",
            Event::DeployCommits { .. } => "deploy_commits",
            Event::ChatSetup { .. } => "chat_setup",
            Event::ConfigReloaded { .. } => "config_reloaded",
        }
    }

    /// Who acted, where and through what, for logs: `(person, channel,
    /// source)` as far as the event has them.
    pub fn who_where(&self) -> (Option<String>, Option<String>, Option<String>) {
        match self {
            Event::Command { actor, channel, .. } => (
                Some(actor.name.to_string()),
                Some(channel.to_string()),
                Some(actor.source.to_string()),
            ),
            Event::ChatMessage {
                author, channel, ..
            } => (
                Some(author.name.to_string()),
                Some(channel.to_string()),
                Some(author.source.to_string()),
            ),
            Event::SupportRequest { .. } => (None, None, Some("support".into())),
            Event::InboundMail { .. } => (None, None, Some("mail".into())),
            Event::Alerts { .. } | Event::MarkStale { .. } => (None, None, Some("alert".into())),
            Event::ChannelRefused { channel, .. } => (None, Some(channel.to_string()), None),
            _ => (None, None, None),
        }
    }

    /// Whether the event only reads.
    pub fn is_query(&self) -> bool {
        matches!(self, Event::Command { command, .. } if command.is_query())
    }

    /// The event with every piece of untrusted text in it (chat text, alert
    /// labels and annotations, the customer's words, job output, a job's
    /// parameter values) through [`crate::domain::sanitize::clean_untrusted`], as it enters the
    /// engine: nothing stored or shown carries a terminal escape or a bidi
    /// override. Typed commands are cleaned as they are parsed
    /// ([`Command::from_args`](crate::commands::Command::from_args)).
    pub fn cleaned(self) -> Event {
        let c = crate::domain::sanitize::clean_owned;
        let labels = |l: crate::domain::alert::Labels| -> crate::domain::alert::Labels {
            l.into_iter().map(|(k, v)| (c(k), c(v))).collect()
        };
        match self {
            Event::Command {
                actor,
                channel,
                command: Command::Build { job, params },
            } => Event::Command {
                actor,
                channel,
                command: Command::Build {
                    job: c(job),
                    params: params.into_iter().map(|(k, v)| (c(k), c(v))).collect(),
                },
            },
            Event::ChatMessage {
                author,
                channel,
                text,
            } => Event::ChatMessage {
                author,
                channel,
                text: c(text),
            },
            Event::Alerts { alerts } => Event::Alerts {
                alerts: alerts
                    .into_iter()
                    .map(|a| crate::domain::alert::Alert {
                        labels: labels(a.labels),
                        annotations: labels(a.annotations),
                        fingerprint: c(a.fingerprint),
                        generator_url: a.generator_url.map(c),
                        ..a
                    })
                    .collect(),
            },
            Event::SupportRequest {
                customer,
                subject,
                message,
                idempotency_key,
            } => Event::SupportRequest {
                customer: crate::domain::Customer {
                    id: c(customer.id),
                    email: c(customer.email),
                },
                subject: c(subject),
                message: c(message),
                idempotency_key,
            },
            Event::RunUpdate { run, update } => {
                use crate::domain::run::RunUpdate as U;
                let update = match update {
                    U::Submitted { backend_ref } => U::Submitted {
                        backend_ref: c(backend_ref.into()).into(),
                    },
                    U::Waiting { reason } => U::Waiting { reason: c(reason) },
                    U::Started { backend_ref } => U::Started {
                        backend_ref: c(backend_ref.into()).into(),
                    },
                    U::Finished {
                        success,
                        reason,
                        tail,
                    } => U::Finished {
                        success,
                        reason: c(reason),
                        tail: c(tail),
                    },
                    U::Lost { reason } => U::Lost { reason: c(reason) },
                };
                Event::RunUpdate { run, update }
            }
            Event::AlertmanagerSilences { silences } => Event::AlertmanagerSilences {
                silences: silences
                    .into_iter()
                    .map(|s| crate::domain::silences::AmSilence {
                        id: c(s.id),
                        matchers: s
                            .matchers
                            .into_iter()
                            .map(|m| crate::domain::silences::AmMatcher {
                                name: c(m.name),
                                value: c(m.value),
                                ..m
                            })
                            .collect(),
                        created_by: c(s.created_by),
                        comment: c(s.comment),
                        ..s
                    })
                    .collect(),
            },
            Event::SilenceMade { silence, am_id } => Event::SilenceMade {
                silence,
                am_id: c(am_id),
            },
            Event::InboundMail { mail } => {
                use crate::engine::inbox::{InboundMail, MailFile};
                let all = |v: Vec<String>| v.into_iter().map(c).collect::<Vec<_>>();
                let mail = *mail;
                Event::InboundMail {
                    mail: Box::new(InboundMail {
                        key: c(mail.key),
                        message_id: mail.message_id.map(c),
                        from: c(mail.from),
                        recipients: all(mail.recipients),
                        in_reply_to: all(mail.in_reply_to),
                        references: all(mail.references),
                        subject: c(mail.subject),
                        text: c(mail.text),
                        attachments: mail
                            .attachments
                            .into_iter()
                            .map(|f| MailFile {
                                name: c(f.name),
                                content_type: c(f.content_type),
                                size: f.size,
                            })
                            .collect(),
                        auto_headers: mail
                            .auto_headers
                            .into_iter()
                            .map(|(k, v)| (c(k), c(v)))
                            .collect(),
                        return_path: mail.return_path.map(c),
                        content_type: c(mail.content_type),
                        unread_size: mail.unread_size,
                    }),
                }
            }
            Event::Push { delivery, push } => Event::Push {
                delivery: delivery.map(c),
                push: crate::domain::code::Push {
                    pusher: c(push.pusher),
                    branch: c(push.branch),
                    commits: push
                        .commits
                        .into_iter()
                        .map(|m| crate::domain::code::Commit {
                            sha: c(m.sha),
                            message: c(m.message),
                            author_name: c(m.author_name),
                            author_email: c(m.author_email),
                            url: m.url.map(c),
                        })
                        .collect(),
                    pr: push.pr.map(|p| {
                        Box::new(crate::domain::code::PullRequest {
                            title: c(p.title),
                            author: c(p.author),
                            base: c(p.base),
                            url: p.url.map(c),
                            ..*p
                        })
                    }),
                    ..push
                },
            },
            Event::ForgeRun { delivery, run } => Event::ForgeRun {
                delivery: delivery.map(c),
                run: Box::new(crate::domain::ci::ForgeRun {
                    workflow: c(run.workflow),
                    workflow_file: run.workflow_file.map(c),
                    branch: c(run.branch),
                    sha: c(run.sha),
                    word: c(run.word),
                    url: run.url.map(c),
                    title: c(run.title),
                    event: c(run.event),
                    actor: c(run.actor),
                    default_branch: run.default_branch.map(c),
                    tail: c(run.tail),
                    ..*run
                }),
            },
            Event::RepoReach { repo, error } => Event::RepoReach {
                repo,
                error: error.map(c),
            },
            Event::StatusRefused { repo, why } => Event::StatusRefused { repo, why: c(why) },
            Event::DeployCommits { run, repo, found } => {
                use crate::domain::code::{Commit, DeployCommits as D};
                let found = match found {
                    D::Range {
                        from,
                        to,
                        commits,
                        total,
                    } => D::Range {
                        from: c(from),
                        to: c(to),
                        commits: commits
                            .into_iter()
                            .map(|m| Commit {
                                sha: c(m.sha),
                                message: c(m.message),
                                author_name: c(m.author_name),
                                author_email: c(m.author_email),
                                url: m.url.map(c),
                            })
                            .collect(),
                        total,
                    },
                    D::First { to } => D::First { to: c(to) },
                    D::Rollback { from, to, dropped } => D::Rollback {
                        from: c(from),
                        to: c(to),
                        dropped,
                    },
                    D::Unknown { version, why } => D::Unknown {
                        version: c(version),
                        why: c(why),
                    },
                };
                Event::DeployCommits { run, repo, found }
            }
            Event::ConfigReloaded {
                ok,
                problems,
                restart,
            } => Event::ConfigReloaded {
                ok,
                problems: problems.into_iter().map(c).collect(),
                restart: restart.into_iter().map(c).collect(),
            },
            other => other,
        }
    }
}
