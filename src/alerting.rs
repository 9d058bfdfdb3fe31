//! The engine's alert rules: routing, grouping and dedup, recovery, refiring
//! after close, stale groups, silences, and chat messages read by message
//! rules. Part of the engine: pure, deciding from what the [`View`] shows.

use std::collections::{BTreeMap, BTreeSet};

use crate::alert::{Alert, AlertSource, AlertStatus, OnRefire, Route, Silence};
use crate::commands::Command;
use crate::domain::{
    Actor, AlertStats, ChannelName, EntryKind, Source, Ticket, TicketId, TicketState, Timestamp,
    UserName,
};
use crate::engine::{
    Accepted, Decision, Engine, GroupRecord, Member, NewTicket, Out, Reply, View, Write,
};
use crate::error::{EngineError, StoreError, UserError};
use crate::render::{self, one_line, Rich};
use crate::ticket::{self, Action};

/// Reads through to the store, keeping this decision's own changes, so that
/// alerts later in a batch see what earlier ones did.
struct Overlay<'v> {
    view: &'v dyn View,
    tickets: BTreeMap<u64, Ticket>,
    groups: BTreeMap<String, Option<GroupRecord>>,
    dirty_tickets: BTreeSet<u64>,
    dirty_groups: BTreeSet<String>,
    next_num: u64,
}

impl<'v> Overlay<'v> {
    fn new(view: &'v dyn View) -> Result<Self, StoreError> {
        Ok(Self {
            view,
            tickets: BTreeMap::new(),
            groups: BTreeMap::new(),
            dirty_tickets: BTreeSet::new(),
            dirty_groups: BTreeSet::new(),
            next_num: view.last_ticket_number()? + 1,
        })
    }

    fn ticket(&mut self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        if let Some(t) = self.tickets.get(&id.num()) {
            return Ok(Some(t.clone()));
        }
        let t = self.view.ticket(id)?;
        if let Some(t) = &t {
            self.tickets.insert(id.num(), t.clone());
        }
        Ok(t)
    }

    fn group(&mut self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        if let Some(g) = self.groups.get(key) {
            return Ok(g.clone());
        }
        let g = self.view.group(key)?;
        self.groups.insert(key.to_string(), g.clone());
        Ok(g)
    }

    fn put_ticket(&mut self, t: Ticket) {
        self.dirty_tickets.insert(t.id.num());
        self.tickets.insert(t.id.num(), t);
    }

    fn put_group(&mut self, g: GroupRecord) {
        self.dirty_groups.insert(g.key.clone());
        self.groups.insert(g.key.clone(), Some(g));
    }

    fn allocate(&mut self) -> u64 {
        let n = self.next_num;
        self.next_num += 1;
        n
    }

    fn finish(mut self, out: &mut Out) {
        for n in &self.dirty_tickets {
            if let Some(t) = self.tickets.remove(n) {
                out.writes.push(Write::Ticket(t));
            }
        }
        for k in &self.dirty_groups {
            if let Some(Some(g)) = self.groups.remove(k) {
                out.writes.push(Write::Group(g));
            }
        }
    }
}

/// The name monitoring acts under on a ticket's timeline.
fn monitor(source: AlertSource) -> Actor {
    let name = match source {
        AlertSource::Alertmanager => "alertmanager",
        AlertSource::Grafana => "grafana",
        AlertSource::Generic | AlertSource::Chat => "monitoring",
    };
    Actor::new(UserName::system(name), Source::Alert)
}

fn describe_alert(alert: &Alert) -> String {
    let mut d = String::new();
    if let Some(desc) = alert.annotations.get("description") {
        d.push_str(desc);
        d.push('\n');
    }
    let labels: Vec<String> = alert
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    d.push_str(&format!("labels: {}", labels.join(", ")));
    if let Some(u) = &alert.generator_url {
        d.push_str(&format!("\nsource: {u}"));
    }
    d.push_str(&format!(
        "\nfrom {} (fingerprint {})",
        alert.source, alert.fingerprint
    ));
    d
}

impl Engine {
    /// The channel where a ticket's team works, or the operations channel.
    fn team_channel(&self, t: &Ticket) -> ChannelName {
        t.team
            .as_ref()
            .and_then(|n| self.config.org.team(n))
            .map(|tm| tm.channel.clone())
            .unwrap_or_else(|| self.ops().clone())
    }

    /// A chat message: an alert when a message rule of its channel reads it.
    pub(crate) fn chat_message(
        &self,
        view: &dyn View,
        author: &Actor,
        channel: &ChannelName,
        text: &str,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let alert = self
            .config
            .alerts
            .message_rules
            .iter()
            .filter(|r| &r.channel == channel)
            .find_map(|r| r.read(text));
        match alert {
            Some(mut a) => {
                a.annotations.insert(
                    "description".into(),
                    format!(
                        "posted by {} in #{channel}: {}",
                        author.name,
                        one_line(text, 500)
                    ),
                );
                let mut d = self.alerts(view, &[a], now)?;
                d.accepted = None;
                Ok(d)
            }
            None => Ok(Decision::default()),
        }
    }

    /// A batch of alerts, applied whole.
    pub(crate) fn alerts(
        &self,
        view: &dyn View,
        alerts: &[Alert],
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let mut ov = Overlay::new(view)?;
        let mut out = Out::new();
        out.alert = true;
        let book = view.silences()?;
        let mut acc = Accepted::default();
        for alert in alerts {
            acc.accepted += 1;
            if book
                .silences
                .iter()
                .any(|s| s.active(now) && s.silences(alert))
            {
                out.writes.push(Write::Silenced(alert.clone()));
                continue;
            }
            let actor = monitor(alert.source);
            let route = self.config.alerts.route_for(&alert.labels);
            let key = route.group_key(alert);
            let touched = match ov.group(&key)? {
                None if alert.status == AlertStatus::Firing => {
                    Some(self.open_alert_ticket(&mut ov, &mut out, alert, route, key, &actor, now))
                }
                None => None,
                Some(g) => self.alert_on_group(&mut ov, &mut out, g, alert, route, &actor, now)?,
            };
            if let Some(id) = touched {
                if !acc.tickets.contains(&id) {
                    acc.tickets.push(id);
                }
            }
        }
        ov.finish(&mut out);
        Ok(Decision {
            reply: None,
            accepted: Some(acc),
            writes: out.writes,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn open_alert_ticket(
        &self,
        ov: &mut Overlay<'_>,
        out: &mut Out,
        alert: &Alert,
        route: &Route,
        key: String,
        actor: &Actor,
        now: Timestamp,
    ) -> TicketId {
        let num = ov.allocate();
        let title = one_line(&alert.summary(), crate::domain::MAX_TITLE);
        let description = describe_alert(alert);
        let mut t = self.open_ticket(
            out,
            NewTicket {
                num,
                actor,
                channel: self.ops(),
                title: &title,
                description: Some(&description),
                priority: route.priority,
                team: route.team.as_ref(),
                headline: "New alert ticket ",
            },
            now,
        );
        t.alerts = Some(AlertStats {
            group: key.clone(),
            count: 1,
            last_seen: now,
        });
        let id = t.id.clone();
        let mut members = BTreeMap::new();
        members.insert(
            alert.fingerprint.clone(),
            Member {
                status: AlertStatus::Firing,
                count: 1,
                last_seen: now,
                summary: alert.summary(),
            },
        );
        ov.put_ticket(t);
        ov.put_group(GroupRecord {
            key,
            route: route.name.clone(),
            ticket: id.clone(),
            members,
            last_seen: now,
            stale: false,
        });
        id
    }

    fn note(
        &self,
        t: &mut Ticket,
        out: &mut Out,
        actor: &Actor,
        kind: EntryKind,
        text: String,
        now: Timestamp,
    ) {
        let e = self.entry(t, actor, kind, t.state, t.state, &text, now);
        out.writes.push(Write::Timeline(t.id.clone(), e));
        t.updated_at = now;
    }

    #[allow(clippy::too_many_arguments)]
    fn alert_on_group(
        &self,
        ov: &mut Overlay<'_>,
        out: &mut Out,
        mut g: GroupRecord,
        alert: &Alert,
        route: &Route,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Option<TicketId>, EngineError> {
        let Some(mut t) = ov.ticket(&g.ticket)? else {
            // The group points at a ticket that is gone: start afresh.
            if alert.status == AlertStatus::Firing {
                let key = g.key.clone();
                return Ok(Some(
                    self.open_alert_ticket(ov, out, alert, route, key, actor, now),
                ));
            }
            return Ok(None);
        };
        let summary = alert.summary();
        let fp = alert.fingerprint.clone();
        let stats = t.alerts.get_or_insert_with(|| AlertStats {
            group: g.key.clone(),
            count: 0,
            last_seen: now,
        });
        stats.count += 1;
        stats.last_seen = now;
        match alert.status {
            AlertStatus::Firing => {
                g.last_seen = now;
                if t.state == TicketState::Closed {
                    if route.on_refire == OnRefire::New {
                        ov.put_ticket(t);
                        let key = g.key.clone();
                        return Ok(Some(
                            self.open_alert_ticket(ov, out, alert, route, key, actor, now),
                        ));
                    }
                    let reason = format!("the alert fired again: {summary}");
                    let tr = ticket::system_transition(
                        &t,
                        &Action::Reopen {
                            reason: reason.clone(),
                        },
                        &self.config.org,
                    )?;
                    let mut nt = tr.ticket;
                    nt.updated_at = now;
                    let e = self.entry(&mut nt, actor, tr.entry, tr.from, tr.to, &reason, now);
                    out.writes.push(Write::Timeline(nt.id.clone(), e));
                    self.announce(out, &nt, actor, &Action::Reopen { reason });
                    t = nt;
                    for m in g.members.values_mut() {
                        m.status = AlertStatus::Resolved;
                    }
                }
                if g.stale {
                    g.stale = false;
                    self.note(
                        &mut t,
                        out,
                        actor,
                        EntryKind::Alert,
                        "alerts arrive again; no longer stale".into(),
                        now,
                    );
                }
                match g.members.get_mut(&fp) {
                    Some(m) if m.status == AlertStatus::Firing => {
                        m.count += 1;
                        m.last_seen = now;
                        let n = m.count;
                        // A repeat: on the record, no post.
                        self.note(
                            &mut t,
                            out,
                            actor,
                            EntryKind::Alert,
                            format!("repeat #{n}: {summary}"),
                            now,
                        );
                    }
                    Some(m) => {
                        m.status = AlertStatus::Firing;
                        m.count += 1;
                        m.last_seen = now;
                        self.note(
                            &mut t,
                            out,
                            actor,
                            EntryKind::Alert,
                            format!("fired again: {summary}"),
                            now,
                        );
                        out.post(
                            &self.team_channel(&t),
                            Some(&t.id),
                            render::ticket_head(&t)
                                .text(" — fired again: ")
                                .quoted(one_line(&summary, 200)),
                        );
                    }
                    None => {
                        g.members.insert(
                            fp,
                            Member {
                                status: AlertStatus::Firing,
                                count: 1,
                                last_seen: now,
                                summary: summary.clone(),
                            },
                        );
                        self.note(
                            &mut t,
                            out,
                            actor,
                            EntryKind::Alert,
                            format!("joined: {summary}"),
                            now,
                        );
                        out.thread(
                            self.ops(),
                            &t.id,
                            Rich::new()
                                .text("Another alert joined this ticket: ")
                                .quoted(one_line(&summary, 200)),
                        );
                    }
                }
            }
            AlertStatus::Resolved => {
                let was_firing = g
                    .members
                    .get(&fp)
                    .is_some_and(|m| m.status == AlertStatus::Firing);
                if !was_firing {
                    // A resolve we already have, or of an alert never seen firing.
                    ov.put_ticket(t);
                    return Ok(None);
                }
                if let Some(m) = g.members.get_mut(&fp) {
                    m.status = AlertStatus::Resolved;
                    m.last_seen = now;
                }
                let still = g
                    .members
                    .values()
                    .filter(|m| m.status == AlertStatus::Firing)
                    .count();
                self.note(
                    &mut t,
                    out,
                    actor,
                    EntryKind::Alert,
                    format!("recovered: {summary}"),
                    now,
                );
                let tail = if still == 0 {
                    "; no alert of this ticket is firing".to_string()
                } else {
                    format!("; {still} still firing")
                };
                out.post(
                    &self.team_channel(&t),
                    Some(&t.id),
                    render::ticket_head(&t)
                        .text(" — recovered: ")
                        .quoted(one_line(&summary, 200))
                        .text(tail),
                );
                let open = matches!(
                    t.state,
                    TicketState::Open | TicketState::Assigned | TicketState::InProgress
                );
                if still == 0 && route.resolve_on_recovery && open {
                    let note = "all alerts recovered".to_string();
                    let tr = ticket::system_transition(
                        &t,
                        &Action::Resolve { note: note.clone() },
                        &self.config.org,
                    )?;
                    let mut nt = tr.ticket;
                    nt.updated_at = now;
                    let e = self.entry(&mut nt, actor, tr.entry, tr.from, tr.to, &note, now);
                    out.writes.push(Write::Timeline(nt.id.clone(), e));
                    self.announce(out, &nt, actor, &Action::Resolve { note });
                    t = nt;
                }
            }
        }
        let id = t.id.clone();
        ov.put_ticket(t);
        ov.put_group(g);
        Ok(Some(id))
    }

    /// Marks quiet alert groups stale (their route says after how long).
    pub(crate) fn mark_stale(
        &self,
        view: &dyn View,
        keys: &[String],
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let mut out = Out::new();
        out.alert = true;
        for key in keys {
            let Some(mut g) = view.group(key)? else {
                continue;
            };
            let Some(route) = self.config.alerts.route(&g.route) else {
                continue;
            };
            let Some(after) = route.stale_after else {
                continue;
            };
            let quiet = (now - g.last_seen).to_std().unwrap_or_default();
            let firing = g.members.values().any(|m| m.status == AlertStatus::Firing);
            if g.stale || quiet < after || !firing {
                continue;
            }
            let Some(mut t) = view.ticket(&g.ticket)? else {
                continue;
            };
            if t.state == TicketState::Closed {
                continue;
            }
            g.stale = true;
            let actor = monitor(AlertSource::Alertmanager);
            let took = humantime::format_duration(std::time::Duration::from_secs(after.as_secs()));
            self.note(
                &mut t,
                &mut out,
                &actor,
                EntryKind::Stale,
                format!(
                    "no alert for over {took} (route {}): marked stale",
                    route.name
                ),
                now,
            );
            out.post(
                &self.team_channel(&t),
                Some(&t.id),
                render::ticket_head(&t).text(format!(
                    " — stale: no alert for over {took}. Silenced alerts send no resolve; check it, and resolve it if the problem is gone."
                )),
            );
            out.writes.push(Write::Ticket(t));
            out.writes.push(Write::Group(g));
        }
        Ok(Decision {
            reply: None,
            accepted: None,
            writes: out.writes,
        })
    }

    /// `/alert silence` and `/alert unsilence`.
    pub(crate) fn alert_command(
        &self,
        view: &dyn View,
        actor: &Actor,
        command: &Command,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let org = &self.config.org;
        let spec = command.name().spec();
        if !spec.who.admits(&actor.name, org) {
            return Err(UserError::new(format!(
                "only {} may run /{}",
                spec.who.describe(),
                spec.full_name()
            ))
            .into());
        }
        let mut book = view.silences()?;
        book.silences.retain(|s| s.active(now));
        let mut out = Out::new();
        let who = actor.name.as_str();
        let reply = match command {
            Command::AlertSilence {
                matchers,
                duration,
                comment,
            } => {
                book.next_id += 1;
                let until = now
                    + chrono::Duration::from_std(*duration)
                        .map_err(|_| UserError::new("that duration is too long"))?;
                let s = Silence {
                    id: book.next_id,
                    matchers: matchers.clone(),
                    until,
                    created_by: who.to_string(),
                    created_at: now,
                    comment: comment.clone(),
                };
                let what = matchers_text(&s);
                let mut body = Rich::new()
                    .text(format!("{who} silenced alerts matching "))
                    .quoted(what.clone())
                    .text(format!(
                        " for {} (until {}): silence {}",
                        humantime::format_duration(*duration),
                        until.format("%Y-%m-%d %H:%M UTC"),
                        s.id
                    ));
                if let Some(c) = comment {
                    body = body.text(" — ").quoted(one_line(c, 200));
                }
                out.post(self.ops(), None, body);
                let id = s.id;
                book.silences.push(s);
                Rich::new().text(format!(
                    "Silence {id} is on until {}; /alert unsilence id:{id} ends it.",
                    until.format("%Y-%m-%d %H:%M UTC")
                ))
            }
            Command::AlertUnsilence { id } => {
                let Some(pos) = book.silences.iter().position(|s| s.id == *id) else {
                    return Err(UserError::new(format!(
                        "there is no silence {id} in force; /alert silences lists them"
                    ))
                    .into());
                };
                let s = book.silences.remove(pos);
                out.post(
                    self.ops(),
                    None,
                    Rich::new()
                        .text(format!("{who} ended silence {id} ("))
                        .quoted(matchers_text(&s))
                        .text(")."),
                );
                Rich::new().text(format!("Silence {id} ended."))
            }
            _ => return Ok(Decision::default()),
        };
        out.writes.push(Write::Silences(book));
        Ok(Decision {
            reply: Some(Reply::private(reply)),
            accepted: None,
            writes: out.writes,
        })
    }

    /// `/alert silences`.
    pub(crate) fn list_silences(
        &self,
        view: &dyn View,
        now: Timestamp,
    ) -> Result<Reply, EngineError> {
        let book = view.silences()?;
        let active: Vec<&Silence> = book.silences.iter().filter(|s| s.active(now)).collect();
        if active.is_empty() {
            return Ok(Reply::private("No silences in force."));
        }
        let noun = if active.len() == 1 {
            "silence"
        } else {
            "silences"
        };
        let mut r = Rich::new().text(format!("{} {noun} in force:", active.len()));
        for s in active {
            r = r
                .text(format!(
                    "\n  {} · until {} · by {} · ",
                    s.id,
                    s.until.format("%Y-%m-%d %H:%M UTC"),
                    s.created_by
                ))
                .quoted(matchers_text(s));
        }
        Ok(Reply::private(r))
    }
}

fn matchers_text(s: &Silence) -> String {
    s.matchers
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
