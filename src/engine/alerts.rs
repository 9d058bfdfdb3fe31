//! The engine's alert rules: routing, grouping and dedup, recovery, refiring
//! after close, stale groups, silences, and chat messages read by message
//! rules. Part of the engine: pure, deciding from what the [`View`] shows.
//!
//! An alert costs the same whatever the size of its group: a group's alerts
//! are records of their own, and the group record (moved, never copied,
//! within a batch) keeps only their count. Joins, refirings and recoveries
//! of one ticket within a batch are gathered into one post each.

use std::collections::{BTreeMap, BTreeSet};

use crate::commands::Command;
use crate::domain::alert::{
    shown_group_key, Alert, AlertSource, AlertStatus, OnRefire, Route, Silence,
};
use crate::domain::rich::{one_line, Rich};
use crate::domain::sanitize::clean_untrusted;
use crate::domain::{
    Actor, AlertStats, ChannelName, EntryKind, Source, Ticket, TicketId, TicketState, Timestamp,
    UserName,
};
use crate::engine::messages;
use crate::engine::tickets::Action;
use crate::engine::{
    Accepted, Decision, Engine, GroupRecord, Member, NewTicket, Out, Reply, View, Write,
};
use crate::error::{EngineError, StoreError, UserError};

/// What happened to alerts of one ticket, gathered into one post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Burst {
    Joined,
    FiredAgain,
    Recovered,
}

/// A run of alerts of one kind on one ticket within a batch.
struct Gathered {
    kind: Burst,
    count: u64,
    /// The first few alerts' summaries.
    names: Vec<String>,
    /// Alerts of the ticket still firing after the last one.
    still: u64,
}

/// How many alerts a gathered post names.
const NAMED: usize = 3;

/// Reads through to the store, keeping this decision's own changes, so that
/// alerts later in a batch see what earlier ones did.
struct Overlay<'v> {
    view: &'v dyn View,
    tickets: BTreeMap<u64, Ticket>,
    /// Groups read or changed; one being worked on is moved out and back.
    groups: BTreeMap<String, Option<GroupRecord>>,
    /// Alerts by (group key, fingerprint), as stored (see [`Overlay::member`]).
    members: BTreeMap<(String, String), Option<Member>>,
    dirty_tickets: BTreeSet<u64>,
    dirty_groups: BTreeSet<String>,
    dirty_members: BTreeSet<(String, String)>,
    /// Posts gathered per ticket number, not yet made.
    gathered: BTreeMap<u64, Gathered>,
    next_num: u64,
}

impl<'v> Overlay<'v> {
    fn new(view: &'v dyn View) -> Result<Self, StoreError> {
        Ok(Self {
            view,
            tickets: BTreeMap::new(),
            groups: BTreeMap::new(),
            members: BTreeMap::new(),
            dirty_tickets: BTreeSet::new(),
            dirty_groups: BTreeSet::new(),
            dirty_members: BTreeSet::new(),
            gathered: BTreeMap::new(),
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

    /// The group of `key`, moved out of the overlay: the caller puts it
    /// back with [`Overlay::put_group`].
    fn take_group(&mut self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        if let Some(g) = self.groups.remove(key) {
            return Ok(g);
        }
        let mut g = self.view.group(key)?;
        if let Some(g) = g.as_mut() {
            // A record from before alerts had records of their own.
            for (fp, m) in std::mem::take(&mut g.members) {
                let k = (g.key.clone(), fp);
                self.dirty_members.insert(k.clone());
                self.members.insert(k, Some(m));
            }
        }
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

    /// The alert `fp` of group `g` as this episode sees it: an alert of an
    /// earlier ticket of the group is not one of its members; one last seen
    /// before the ticket was reopened counts as resolved.
    fn member(&mut self, g: &GroupRecord, fp: &str) -> Result<Option<Member>, StoreError> {
        let k = (g.key.clone(), fp.to_string());
        let m = match self.members.get(&k) {
            Some(m) => m.clone(),
            None => {
                let m = self.view.member(&g.key, fp)?;
                self.members.insert(k, m.clone());
                m
            }
        };
        Ok(m.filter(|m| m.episode >= g.first_episode).map(|mut m| {
            if m.episode < g.episode {
                m.status = AlertStatus::Resolved;
            }
            m
        }))
    }

    fn put_member(&mut self, g: &GroupRecord, fp: &str, mut m: Member) {
        m.episode = g.episode;
        let k = (g.key.clone(), fp.to_string());
        self.dirty_members.insert(k.clone());
        self.members.insert(k, Some(m));
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
        for k in &self.dirty_members {
            if let Some(Some(m)) = self.members.remove(k) {
                out.writes.push(Write::Member(k.0.clone(), k.1.clone(), m));
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
    // Labels and annotations are the monitoring tool's words, untrusted.
    clean_untrusted(&d)
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
        let mut touched_set = BTreeSet::new();
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
            let touched = match ov.take_group(&key)? {
                None if alert.status == AlertStatus::Firing => {
                    let (id, g) = self
                        .open_alert_ticket(&mut ov, &mut out, alert, route, key, 0, &actor, now)?;
                    ov.put_group(g);
                    Some(id)
                }
                None => None,
                Some(mut g) => {
                    let id =
                        self.alert_on_group(&mut ov, &mut out, &mut g, alert, route, &actor, now)?;
                    ov.put_group(g);
                    id
                }
            };
            if let Some(id) = touched {
                if touched_set.insert(id.num()) {
                    acc.tickets.push(id);
                }
            }
        }
        for (num, g) in std::mem::take(&mut ov.gathered) {
            if let Some(t) = ov.tickets.get(&num) {
                self.post_gathered(&mut out, t, g);
            }
        }
        ov.finish(&mut out);
        Ok(Decision {
            reply: None,
            accepted: Some(acc),
            writes: out.writes,
        })
    }

    /// Adds an alert to the post gathered for its ticket; a run of another
    /// kind is posted first, so that the posts keep the alerts' order.
    fn gather(
        &self,
        ov: &mut Overlay<'_>,
        out: &mut Out,
        t: &Ticket,
        kind: Burst,
        name: &str,
        still: u64,
    ) {
        let num = t.id.num();
        if let Some(g) = ov.gathered.get_mut(&num).filter(|g| g.kind == kind) {
            g.count += 1;
            if g.names.len() < NAMED {
                g.names.push(name.to_string());
            }
            g.still = still;
            return;
        }
        self.flush_gathered(ov, out, t);
        ov.gathered.insert(
            num,
            Gathered {
                kind,
                count: 1,
                names: vec![name.to_string()],
                still,
            },
        );
    }

    /// Makes the post gathered for a ticket, before anything else is said
    /// about it.
    fn flush_gathered(&self, ov: &mut Overlay<'_>, out: &mut Out, t: &Ticket) {
        if let Some(g) = ov.gathered.remove(&t.id.num()) {
            self.post_gathered(out, t, g);
        }
    }

    fn post_gathered(&self, out: &mut Out, t: &Ticket, g: Gathered) {
        match g.kind {
            Burst::Joined => out.thread(
                self.ops(),
                &t.id,
                messages::alerts_joined(&g.names, g.count),
            ),
            Burst::FiredAgain => out.post(
                &self.team_channel(t),
                Some(&t.id),
                messages::alerts_fired_again(t, &g.names, g.count),
            ),
            Burst::Recovered => out.post(
                &self.team_channel(t),
                Some(&t.id),
                messages::alerts_recovered(t, &g.names, g.count, g.still),
            ),
        }
    }

    /// Opens a ticket for a group's first alert; returns it and the group,
    /// which starts at `episode` (its alerts of earlier tickets are not
    /// members).
    #[allow(clippy::too_many_arguments)]
    fn open_alert_ticket(
        &self,
        ov: &mut Overlay<'_>,
        out: &mut Out,
        alert: &Alert,
        route: &Route,
        key: String,
        episode: u64,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(TicketId, GroupRecord), EngineError> {
        let num = ov.allocate();
        let summary = clean_untrusted(&alert.summary());
        let title = one_line(&summary, crate::domain::MAX_TITLE);
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
            group: shown_group_key(&key),
            count: 1,
            last_seen: now,
        });
        // A team with an on-call rotation: the alert goes to whoever is on call.
        if let Some(team) = route.team.as_ref() {
            if let Some(user) = self.on_call_now(ov.view, team, now)? {
                let action = Action::AssignUser {
                    team: team.clone(),
                    user,
                };
                t = self.system_move(out, &t, actor, action, now)?;
            }
        }
        let id = t.id.clone();
        let g = GroupRecord {
            key,
            route: route.name.clone(),
            ticket: id.clone(),
            members: BTreeMap::new(),
            last_seen: now,
            stale: false,
            firing: 1,
            episode,
            first_episode: episode,
        };
        ov.put_member(
            &g,
            &alert.fingerprint,
            Member {
                status: AlertStatus::Firing,
                count: 1,
                last_seen: now,
                summary,
                starts_at: alert.starts_at,
                episode,
            },
        );
        ov.put_ticket(t);
        Ok((id, g))
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

    /// An alert of a group that exists: `g` is changed in place (or
    /// replaced by a new group when a new ticket opens).
    #[allow(clippy::too_many_arguments)]
    fn alert_on_group(
        &self,
        ov: &mut Overlay<'_>,
        out: &mut Out,
        g: &mut GroupRecord,
        alert: &Alert,
        route: &Route,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Option<TicketId>, EngineError> {
        let Some(mut t) = ov.ticket(&g.ticket)? else {
            // The group points at a ticket that is gone: start afresh.
            if alert.status == AlertStatus::Firing {
                let (id, fresh) = self.open_alert_ticket(
                    ov,
                    out,
                    alert,
                    route,
                    g.key.clone(),
                    g.episode + 1,
                    actor,
                    now,
                )?;
                *g = fresh;
                return Ok(Some(id));
            }
            return Ok(None);
        };
        let summary = clean_untrusted(&alert.detail());
        let fp = alert.fingerprint.as_str();
        let mut member = ov.member(g, fp)?;
        if alert.status == AlertStatus::Resolved {
            // A resolve of an earlier firing episode, arriving late: old news.
            let member_start = member.as_ref().and_then(|m| m.starts_at);
            if let (Some(theirs), Some(ours)) = (alert.starts_at, member_start) {
                if theirs < ours {
                    return Ok(None);
                }
            }
        }
        let stats = t.alerts.get_or_insert_with(|| AlertStats {
            group: shown_group_key(&g.key),
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
                        let (id, fresh) = self.open_alert_ticket(
                            ov,
                            out,
                            alert,
                            route,
                            g.key.clone(),
                            g.episode + 1,
                            actor,
                            now,
                        )?;
                        *g = fresh;
                        return Ok(Some(id));
                    }
                    self.flush_gathered(ov, out, &t);
                    let reason = format!("the alert fired again: {summary}");
                    t = self.system_move(out, &t, actor, Action::Reopen { reason }, now)?;
                    // A new episode: every alert of the group counts as
                    // resolved until it fires again.
                    g.episode += 1;
                    g.firing = 0;
                    if let Some(m) = member.as_mut() {
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
                let comes_back = member
                    .as_ref()
                    .is_none_or(|m| m.status == AlertStatus::Resolved);
                if comes_back && matches!(t.state, TicketState::Resolved | TicketState::Qa) {
                    // The fix did not hold: back to the team before anyone closes it.
                    self.flush_gathered(ov, out, &t);
                    t = self.refired_while_resolved(t, out, actor, &summary, now)?;
                }
                let m = match member {
                    Some(mut m) if m.status == AlertStatus::Firing => {
                        m.count += 1;
                        m.last_seen = now;
                        if alert.starts_at.is_some() {
                            m.starts_at = m.starts_at.max(alert.starts_at);
                        }
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
                        m
                    }
                    Some(mut m) => {
                        m.status = AlertStatus::Firing;
                        m.count += 1;
                        m.last_seen = now;
                        m.starts_at = alert.starts_at.or(m.starts_at);
                        g.firing += 1;
                        self.note(
                            &mut t,
                            out,
                            actor,
                            EntryKind::Alert,
                            format!("fired again: {summary}"),
                            now,
                        );
                        self.gather(ov, out, &t, Burst::FiredAgain, &summary, g.firing);
                        m
                    }
                    None => {
                        g.firing += 1;
                        self.note(
                            &mut t,
                            out,
                            actor,
                            EntryKind::Alert,
                            format!("joined: {summary}"),
                            now,
                        );
                        self.gather(ov, out, &t, Burst::Joined, &summary, g.firing);
                        Member {
                            status: AlertStatus::Firing,
                            count: 1,
                            last_seen: now,
                            summary,
                            starts_at: alert.starts_at,
                            episode: g.episode,
                        }
                    }
                };
                ov.put_member(g, fp, m);
            }
            AlertStatus::Resolved => {
                let Some(mut m) = member.filter(|m| m.status == AlertStatus::Firing) else {
                    // A resolve we already have, or of an alert never seen firing.
                    ov.put_ticket(t);
                    return Ok(None);
                };
                m.status = AlertStatus::Resolved;
                m.last_seen = now;
                ov.put_member(g, fp, m);
                g.firing = g.firing.saturating_sub(1);
                let still = g.firing;
                self.note(
                    &mut t,
                    out,
                    actor,
                    EntryKind::Alert,
                    format!("recovered: {summary}"),
                    now,
                );
                self.gather(ov, out, &t, Burst::Recovered, &summary, still);
                let open = matches!(
                    t.state,
                    TicketState::Open | TicketState::Assigned | TicketState::InProgress
                );
                if still == 0 && route.resolve_on_recovery && open {
                    self.flush_gathered(ov, out, &t);
                    let note = "all alerts recovered".to_string();
                    t = self.system_move(out, &t, actor, Action::Resolve { note }, now)?;
                }
            }
        }
        let id = t.id.clone();
        ov.put_ticket(t);
        Ok(Some(id))
    }

    /// An alert of a resolved ticket fires again: the ticket goes back to
    /// its team (the operator must not close it on a fix that did not hold).
    fn refired_while_resolved(
        &self,
        t: Ticket,
        out: &mut Out,
        actor: &Actor,
        summary: &str,
        now: Timestamp,
    ) -> Result<Ticket, EngineError> {
        let reason = format!("the alert fired again: {summary}");
        Ok(self.system_move(out, &t, actor, Action::Reject { reason }, now)?)
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
            let firing = g.firing > 0;
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
                messages::ticket_head(&t).text(format!(
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
                let until = chrono::Duration::from_std(*duration)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .ok_or_else(|| UserError::new("`duration` is too long: at most 30d"))?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::commands::parse_command;
    use crate::config::Config;
    use crate::domain::alert::Labels;
    use crate::engine::{Effect, Event, Post};
    use crate::store::Store;

    const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
qa_team = "qa"
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[teams.infra]
channel = "infra"
members = ["ivan"]
[teams.qa]
channel = "qa"
members = ["quinn"]

[alerts.default]
stale_after = "2h"

[[alerts.routes]]
name = "web-critical"
match = { service = "web|checkout", severity = "critical" }
team = "backend"
priority = "p1"
group_by = ["alertname", "service"]
resolve_on_recovery = true

[[alerts.routes]]
name = "db"
match = { service = "db.*" }
team = "infra"
priority = "p2"
on_refire = "new"

[[alerts.message_rules]]
channel = "alerts"
pattern = '^\[(?P<status>FIRING|RESOLVED)\] (?P<alertname>\S+) (?P<service>\S+)'
"#;

    /// The engine on a real store, with a clock the test moves.
    struct Bench {
        _dir: tempfile::TempDir,
        store: Store,
        engine: Engine,
        now: Timestamp,
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn alert(status: AlertStatus, pairs: &[(&str, &str)]) -> Alert {
        let l = labels(pairs);
        Alert {
            source: AlertSource::Alertmanager,
            status,
            fingerprint: crate::domain::alert::fingerprint(&l),
            labels: l,
            annotations: Labels::new(),
            starts_at: None,
            generator_url: None,
        }
    }

    fn firing(pairs: &[(&str, &str)]) -> Alert {
        alert(AlertStatus::Firing, pairs)
    }

    fn resolved(pairs: &[(&str, &str)]) -> Alert {
        alert(AlertStatus::Resolved, pairs)
    }

    impl Bench {
        fn new() -> Bench {
            let dir = tempfile::tempdir().unwrap();
            let config = Config::parse(&dir.path().join("bot.toml"), CONFIG)
                .unwrap()
                .config;
            let store = Store::open(&config.storage_path).unwrap();
            Bench {
                _dir: dir,
                store,
                engine: Engine::new(Arc::new(config)),
                now: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            }
        }

        fn event(&self, ev: Event) -> Result<Decision, EngineError> {
            let now = self.now;
            let mut r = self
                .store
                .apply_batch(
                    &[ev],
                    |view, ev| {
                        let d = self.engine.decide(view, ev, now)?;
                        Ok((d.writes.clone(), d))
                    },
                    || now,
                )
                .unwrap();
            r.remove(0)
        }

        fn alerts(&self, alerts: Vec<Alert>) -> Accepted {
            self.event(Event::Alerts { alerts })
                .unwrap()
                .accepted
                .unwrap()
        }

        fn cmd(&self, who: &str, line: &str) -> Result<Decision, EngineError> {
            let command = parse_command(line, "OPS").unwrap();
            let ev = Event::Command {
                actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
                channel: ChannelName::parse("ops").unwrap(),
                command,
            };
            if ev.is_query() {
                let r = self.engine.query(&self.store, &ev, self.now)?;
                return Ok(Decision {
                    reply: Some(r),
                    ..Decision::default()
                });
            }
            self.event(ev)
        }

        fn advance(&mut self, d: chrono::Duration) {
            self.now += d;
        }

        fn ticket(&self, n: u64) -> Ticket {
            self.store
                .ticket(&TicketId::new("OPS", n))
                .unwrap()
                .unwrap()
        }

        fn timeline(&self, n: u64) -> Vec<String> {
            use crate::engine::QueryView;
            self.store
                .timeline(&TicketId::new("OPS", n))
                .unwrap()
                .into_iter()
                .map(|e| format!("{}: {}", e.kind.as_str(), e.text))
                .collect()
        }

        /// The posts queued since the last call, as `#channel text` or
        /// `#channel›OPS-N text` for threads.
        fn posts(&self) -> Vec<String> {
            let items = self.store.outbox_pending(10_000).unwrap();
            let mut out = Vec::new();
            for i in items {
                self.store.outbox_done(i.seq).unwrap();
                let Effect::Post(Post {
                    channel,
                    ticket,
                    thread,
                    body,
                    ..
                }) = i.effect
                else {
                    continue;
                };
                let place = match (thread, ticket) {
                    (true, Some(t)) => format!("#{channel}›{t}"),
                    _ => format!("#{channel}"),
                };
                out.push(format!("{place} {}", body.to_plain()));
            }
            out
        }

        fn tickets(&self) -> usize {
            self.store.ticket_count()
        }
    }

    #[test]
    fn routes_pick_team_and_priority_first_match_wins() {
        let b = Bench::new();
        let acc = b.alerts(vec![
            firing(&[
                ("alertname", "Latency"),
                ("service", "checkout"),
                ("severity", "critical"),
            ]),
            firing(&[
                ("alertname", "Latency"),
                ("service", "checkout"),
                ("severity", "warning"),
            ]),
            firing(&[
                ("alertname", "Disk"),
                ("service", "db-2"),
                ("severity", "critical"),
            ]),
        ]);
        assert_eq!(acc.accepted, 3);
        assert_eq!(acc.tickets.len(), 3);
        let (t1, t2, t3) = (b.ticket(1), b.ticket(2), b.ticket(3));
        assert_eq!(
            (t1.team.unwrap().as_str(), t1.priority.as_str()),
            ("backend", "p1")
        );
        // Not critical: no route takes it; the default leaves it to the operators.
        assert_eq!(
            (t2.team, t2.priority.as_str(), t2.state),
            (None, "p3", TicketState::Open)
        );
        // `db.*` comes after web-critical but matches db-2 whatever the severity.
        assert_eq!(
            (t3.team.unwrap().as_str(), t3.priority.as_str()),
            ("infra", "p2")
        );
    }

    #[test]
    fn one_ticket_per_group_with_repeats_and_joins_noted() {
        let b = Bench::new();
        let a1 = [
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
            ("instance", "web-1"),
        ];
        let a2 = [
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
            ("instance", "web-2"),
        ];
        let acc = b.alerts(vec![firing(&a1), firing(&a1), firing(&a2)]);
        assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
        b.posts();
        let acc = b.alerts(vec![firing(&a1)]);
        assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
        assert_eq!(b.tickets(), 1);
        let t = b.ticket(1);
        assert_eq!(t.alerts.as_ref().unwrap().count, 4);
        let tl = b.timeline(1);
        assert_eq!(
            &tl[2..],
            [
                "alert: repeat #2: Latency web (web-1)",
                "alert: joined: Latency web (web-2)",
                "alert: repeat #3: Latency web (web-1)"
            ]
        );
        // A repeat is on the record but posts nothing.
        assert!(b.posts().is_empty());
    }

    #[test]
    fn recovery_notes_then_resolves_when_the_route_says_so() {
        let b = Bench::new();
        let a1 = [
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
            ("instance", "1"),
        ];
        let a2 = [
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
            ("instance", "2"),
        ];
        b.alerts(vec![firing(&a1), firing(&a2)]);
        b.posts();
        b.alerts(vec![resolved(&a1)]);
        assert_eq!(b.ticket(1).state, TicketState::Assigned);
        assert_eq!(
            b.posts(),
            vec!["#backend OPS-1 · p1 · Latency web — recovered: Latency web (1); 1 still firing"]
        );
        b.alerts(vec![resolved(&a2), resolved(&a2)]);
        let t = b.ticket(1);
        assert_eq!(t.state, TicketState::Resolved);
        assert_eq!(t.resolution.as_deref(), Some("all alerts recovered"));
        let posts = b.posts();
        assert_eq!(posts[0], "#backend OPS-1 · p1 · Latency web — recovered: Latency web (2); no alert of this ticket is firing");
        assert!(posts[1].starts_with("#ops OPS-1 · p1 · Latency web — resolved by alertmanager: all alerts recovered. Operators, verify it"), "{posts:?}");
        assert!(
            posts[1].ends_with("@olivia"),
            "the operator is pinged: {posts:?}"
        );
        // The second resolve of the same alert changed nothing more.
        assert_eq!(posts.len(), 3);

        // A route without resolve_on_recovery only notes it.
        let db = [("alertname", "Disk"), ("service", "db-1")];
        b.alerts(vec![firing(&db), resolved(&db)]);
        assert_eq!(b.ticket(2).state, TicketState::Assigned);
        assert_eq!(b.timeline(2).last().unwrap(), "alert: recovered: Disk db-1");
    }

    #[test]
    fn refiring_after_close_reopens_or_opens_anew_as_the_route_says() {
        let b = Bench::new();
        let web = [
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
        ];
        b.alerts(vec![firing(&web), resolved(&web)]);
        b.cmd("olivia", "/ticket verify id:OPS-1").unwrap();
        assert_eq!(b.ticket(1).state, TicketState::Closed);
        b.posts();
        let acc = b.alerts(vec![firing(&web)]);
        assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
        let t = b.ticket(1);
        assert_eq!(t.state, TicketState::Assigned);
        assert!(b
            .timeline(1)
            .contains(&"reopened: the alert fired again: Latency web".to_string()));
        let posts = b.posts();
        assert!(posts[0].starts_with("#backend OPS-1 · p1 · Latency web — reopened by alertmanager: the alert fired again"), "{posts:?}");

        // The db route says "new".
        let db = [("alertname", "Disk"), ("service", "db-1")];
        b.alerts(vec![firing(&db)]);
        b.cmd("olivia", "/ticket resolve id:OPS-2 note:cleaned")
            .unwrap();
        b.cmd("olivia", "/ticket verify id:OPS-2").unwrap();
        let acc = b.alerts(vec![firing(&db)]);
        assert_eq!(acc.tickets, vec![TicketId::new("OPS", 3)]);
        assert_eq!(b.ticket(2).state, TicketState::Closed);
        assert_eq!(b.ticket(3).state, TicketState::Assigned);
        // The group now follows the new ticket.
        b.alerts(vec![firing(&db)]);
        assert_eq!(b.ticket(3).alerts.unwrap().count, 2);
    }

    #[test]
    fn a_fix_that_does_not_hold_goes_back_to_the_team() {
        let b = Bench::new();
        let web = [
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
        ];
        b.alerts(vec![firing(&web), resolved(&web)]);
        assert_eq!(b.ticket(1).state, TicketState::Resolved);
        b.posts();
        // Before the operator verifies, it fires again.
        b.alerts(vec![firing(&web)]);
        let t = b.ticket(1);
        assert_eq!(t.state, TicketState::Assigned);
        assert_eq!(t.resolution, None);
        let posts = b.posts();
        assert!(
            posts[0].starts_with("#backend OPS-1 · p1 · Latency web — rejected by alertmanager: the alert fired again: Latency web"),
            "{posts:?}"
        );
        let e = b.cmd("olivia", "/ticket verify id:OPS-1").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("cannot verify OPS-1: it is `assigned`"));
    }

    #[test]
    fn a_late_resolve_of_an_earlier_episode_is_ignored() {
        let b = Bench::new();
        let labels_ = [("alertname", "Mem"), ("instance", "h1")];
        let at = |h: u32| Some(chrono::Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap());
        let mut first = firing(&labels_);
        first.starts_at = at(9);
        let mut late_resolve = resolved(&labels_);
        late_resolve.starts_at = at(9);
        let mut again = firing(&labels_);
        again.starts_at = at(11);
        b.alerts(vec![first, resolved(&labels_)]);
        b.alerts(vec![again]);
        // The resolve of the 9 o'clock episode arrives after the 11 o'clock firing.
        let acc = b.alerts(vec![late_resolve]);
        assert!(acc.tickets.is_empty());
        assert_eq!(b.timeline(1).last().unwrap(), "alert: fired again: Mem h1");
        let g = b.store.groups().next().unwrap().unwrap();
        let members: Vec<_> = b.store.group_members(&g.key).map(|m| m.unwrap()).collect();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].1.status, AlertStatus::Firing);
    }

    #[test]
    fn quiet_groups_go_stale_once_and_wake_up_again() {
        let mut b = Bench::new();
        let a = [("alertname", "Mem"), ("instance", "h1")];
        b.alerts(vec![firing(&a)]);
        b.posts();
        let bot_candidates = |b: &Bench| -> Vec<String> {
            b.store
                .groups()
                .map(|g| g.unwrap())
                .filter(|g| !g.stale)
                .map(|g| g.key)
                .collect()
        };
        b.advance(chrono::Duration::minutes(119));
        b.event(Event::MarkStale {
            groups: bot_candidates(&b),
        })
        .unwrap();
        assert!(b.posts().is_empty(), "not yet");
        b.advance(chrono::Duration::minutes(2));
        b.event(Event::MarkStale {
            groups: bot_candidates(&b),
        })
        .unwrap();
        assert_eq!(
            b.timeline(1).last().unwrap(),
            "stale: no alert for over 2h (route default): marked stale"
        );
        let posts = b.posts();
        assert_eq!(posts.len(), 1);
        assert!(
            posts[0].starts_with("#ops OPS-1 · p3 · Mem h1 — stale: no alert for over 2h."),
            "{posts:?}"
        );
        // Marked once: a second pass does nothing.
        let all: Vec<String> = b.store.groups().map(|g| g.unwrap().key).collect();
        b.event(Event::MarkStale { groups: all }).unwrap();
        assert!(b.posts().is_empty());
        // The alert comes back.
        b.alerts(vec![firing(&a)]);
        assert!(b
            .timeline(1)
            .contains(&"alert: alerts arrive again; no longer stale".to_string()));
        assert!(!b.store.groups().next().unwrap().unwrap().stale);
    }

    #[test]
    fn silences_keep_alerts_on_record_without_tickets_and_expire() {
        let b = Bench::new();
        let d = b.cmd("bob", "/alert silence matchers:\"alertname=Flappy service=~web.*\" duration:1h comment:deploying").unwrap();
        assert_eq!(
            d.reply.unwrap().body.to_plain(),
            "Silence 1 is on until 2026-03-01 13:00 UTC; /alert unsilence id:1 ends it."
        );
        assert_eq!(
            b.posts(),
            vec!["#ops bob silenced alerts matching alertname=Flappy service=~web.* for 1h (until 2026-03-01 13:00 UTC): silence 1 — deploying"]
        );
        let acc = b.alerts(vec![
            firing(&[("alertname", "Flappy"), ("service", "web")]),
            firing(&[("alertname", "Flappy"), ("service", "api")]),
        ]);
        assert_eq!(acc.accepted, 2);
        assert_eq!(
            acc.tickets,
            vec![TicketId::new("OPS", 1)],
            "only the unsilenced one"
        );
        let kept: Vec<Alert> = b.store.silenced_alerts().map(|a| a.unwrap()).collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].labels["service"], "web");
        b.posts();

        // An outsider may not silence; a bad matcher or duration is refused.
        let e = b
            .cmd("zed", "/alert silence matchers:alertname=X duration:1h")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "only operators, team members may run /alert silence"
        );
        let e = parse_command("/alert silence matchers:alertname duration:1h", "OPS").unwrap_err();
        assert!(e.to_string().contains("is not a matcher"), "{e}");
        let e = parse_command("/alert silence matchers:a=b duration:7x", "OPS").unwrap_err();
        assert!(
            e.to_string()
                .contains("`duration` must be a duration from 1m to 30d"),
            "{e}"
        );

        // Silences survive a restart of the store.
        let listed = b
            .cmd("zed", "/alert silences")
            .unwrap()
            .reply
            .unwrap()
            .body
            .to_plain();
        assert!(listed.starts_with("1 silence in force:\n  1 · until 2026-03-01 13:00 UTC · by bob · alertname=Flappy service=~web.*"), "{listed}");
        let path = b.store.path().to_path_buf();
        let Bench {
            _dir,
            store,
            engine,
            now,
        } = b;
        drop(store);
        let mut b = Bench {
            _dir,
            store: Store::open(&path).unwrap(),
            engine,
            now,
        };
        assert_eq!(
            b.cmd("zed", "/alert silences")
                .unwrap()
                .reply
                .unwrap()
                .body
                .to_plain(),
            listed
        );

        // It ends by itself.
        b.advance(chrono::Duration::minutes(61));
        let acc = b.alerts(vec![firing(&[("alertname", "Flappy"), ("service", "web")])]);
        assert_eq!(acc.tickets.len(), 1);
        assert_eq!(
            b.cmd("olivia", "/alert silences")
                .unwrap()
                .reply
                .unwrap()
                .body
                .to_plain(),
            "No silences in force."
        );
        let e = b.cmd("olivia", "/alert unsilence id:1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no silence 1 in force; /alert silences lists them"
        );
    }

    #[test]
    fn unsilence_ends_it_now() {
        let b = Bench::new();
        b.cmd("olivia", "/alert silence matchers:alertname=X duration:2h")
            .unwrap();
        b.cmd("olivia", "/alert unsilence id:1").unwrap();
        let acc = b.alerts(vec![firing(&[("alertname", "X")])]);
        assert_eq!(acc.tickets.len(), 1);
    }

    #[test]
    fn a_chat_line_in_a_ruled_channel_is_an_alert() {
        let b = Bench::new();
        let ev = |channel: &str, text: &str| Event::ChatMessage {
            author: Actor::new(UserName::parse("grafana-bot").unwrap(), Source::Console),
            channel: ChannelName::parse(channel).unwrap(),
            text: text.into(),
        };
        b.event(ev("alerts", "[FIRING] HighLatency web")).unwrap();
        // The same words elsewhere are just chat.
        b.event(ev("backend", "[FIRING] HighLatency web")).unwrap();
        b.event(ev("alerts", "coffee?")).unwrap();
        assert_eq!(b.tickets(), 1);
        let t = b.ticket(1);
        assert_eq!(t.opened_by.as_str(), "monitoring");
        assert!(t
            .description
            .unwrap()
            .starts_with("posted by grafana-bot in #alerts: [FIRING] HighLatency web"));
        b.event(ev("alerts", "[RESOLVED] HighLatency web")).unwrap();
        assert_eq!(
            b.timeline(1).last().unwrap(),
            "alert: recovered: HighLatency web"
        );
    }

    fn web(i: usize) -> Alert {
        let instance = format!("web-{i}");
        firing(&[
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
            ("instance", instance.as_str()),
        ])
    }

    #[test]
    fn a_flood_of_one_group_makes_one_post_per_kind_and_keeps_the_record() {
        let b = Bench::new();
        // 500 alerts of one group, each twice, in one batch.
        let mut batch: Vec<Alert> = (0..500).map(web).collect();
        batch.extend((0..500).map(web));
        let acc = b.alerts(batch);
        assert_eq!(acc.accepted, 1000);
        assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
        let posts = b.posts();
        assert_eq!(posts.len(), 5, "{posts:#?}");
        assert!(
            posts[0].starts_with("#ops New alert ticket OPS-1"),
            "{posts:?}"
        );
        assert_eq!(
            posts[4],
            "#ops›OPS-1 +499 alerts joined this ticket: Latency web (web-1), Latency web (web-2), Latency web (web-3) and 496 more"
        );
        // Counts and timeline as if they had come one by one.
        assert_eq!(b.ticket(1).alerts.unwrap().count, 1000);
        let tl = b.timeline(1);
        assert_eq!(
            tl.iter()
                .filter(|e| e.starts_with("alert: joined: "))
                .count(),
            499
        );
        assert_eq!(
            tl.iter()
                .filter(|e| e.starts_with("alert: repeat #2: "))
                .count(),
            500
        );
        let g = b.store.groups().next().unwrap().unwrap();
        assert_eq!(g.firing, 500);
        assert_eq!(b.store.group_members(&g.key).count(), 500);

        // All recover in one batch: one post, then the resolve it leads to.
        let resolved_all: Vec<Alert> = (0..500)
            .map(|i| {
                let mut a = web(i);
                a.status = AlertStatus::Resolved;
                a
            })
            .collect();
        b.alerts(resolved_all);
        let posts = b.posts();
        assert_eq!(
            posts[0],
            "#backend OPS-1 · p1 · Latency web — 500 alerts recovered: Latency web (web-0), Latency web (web-1), Latency web (web-2) and 497 more; no alert of this ticket is firing"
        );
        assert!(
            posts[1].starts_with(
                "#ops OPS-1 · p1 · Latency web — resolved by alertmanager: all alerts recovered."
            ),
            "{posts:?}"
        );
        assert_eq!(posts.len(), 3, "{posts:#?}");
        assert_eq!(b.ticket(1).state, TicketState::Resolved);

        // They fire again: back to the team, and one post for the lot.
        b.alerts((0..500).map(web).collect());
        let posts = b.posts();
        assert!(posts[0].starts_with("#backend OPS-1 · p1 · Latency web — rejected by alertmanager: the alert fired again: Latency web (web-0)"), "{posts:?}");
        assert_eq!(
            posts.last().unwrap(),
            "#backend OPS-1 · p1 · Latency web — 500 alerts fired again: Latency web (web-0), Latency web (web-1), Latency web (web-2) and 497 more"
        );
        assert_eq!(posts.len(), 3, "{posts:#?}");
        assert_eq!(b.store.groups().next().unwrap().unwrap().firing, 500);
    }

    /// The bytes an event writes, counted as the store encodes them.
    fn written(writes: &[Write]) -> usize {
        let len = |v: Result<Vec<u8>, serde_json::Error>| v.map(|v| v.len()).unwrap_or(0);
        writes
            .iter()
            .map(|w| match w {
                Write::Ticket(t) => len(serde_json::to_vec(t)),
                Write::Timeline(_, e) => len(serde_json::to_vec(e)),
                Write::Effect(e) => len(serde_json::to_vec(e)),
                Write::Group(g) => len(serde_json::to_vec(g)),
                Write::Member(k, fp, m) => k.len() + fp.len() + len(serde_json::to_vec(m)),
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn an_alert_costs_the_same_whatever_the_size_of_its_group() {
        let b = Bench::new();
        let mut size = 0;
        let mut costs = Vec::new();
        for target in [10, 3000] {
            b.alerts((size..target).map(web).collect());
            size = target;
            // One new alert of the group, one repeat, one recovery.
            let mut resolve = web(1);
            resolve.status = AlertStatus::Resolved;
            let mut cost = Vec::new();
            for a in [web(size), web(0), resolve] {
                let d = b.event(Event::Alerts { alerts: vec![a] }).unwrap();
                cost.push((d.writes.len(), written(&d.writes)));
            }
            size += 1;
            b.alerts(vec![web(1)]);
            costs.push(cost);
        }
        for (small, big) in costs[0].iter().zip(&costs[1]) {
            assert_eq!(small.0, big.0, "records written: {costs:?}");
            // A few more digits in the counters and names, no more.
            assert!(big.1 <= small.1 + 32, "bytes written: {costs:?}");
        }
    }

    #[test]
    fn a_group_stored_with_its_alerts_inside_is_split_when_the_store_opens() {
        let b = Bench::new();
        b.alerts(vec![web(0), web(1)]);
        let mut g = b.store.groups().next().unwrap().unwrap();
        // As records were before alerts had records of their own.
        for (fp, m) in b.store.group_members(&g.key).map(|m| m.unwrap()) {
            g.members.insert(fp, m);
        }
        g.firing = 0;
        let key = g.key.clone();
        b.store.put_legacy_group(&g).unwrap();
        b.store.set_schema_version(1).unwrap();
        let path = b.store.path().to_path_buf();
        let Bench {
            _dir,
            store,
            engine,
            now,
        } = b;
        drop(store);
        // sled lets go of its file lock once its own threads are done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let reopened = loop {
            match Store::open(&path) {
                Err(crate::error::StoreError::Locked { .. })
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => break r.unwrap(),
            }
        };
        let b = Bench {
            _dir,
            store: reopened,
            engine,
            now,
        };
        let g = b.store.groups().next().unwrap().unwrap();
        assert!(g.members.is_empty());
        assert_eq!(g.firing, 2);
        assert_eq!(b.store.group_members(&key).count(), 2);
        b.alerts(vec![web(1)]);
        assert_eq!(
            b.timeline(1).last().unwrap(),
            "alert: repeat #2: Latency web (web-1)"
        );
    }
}
