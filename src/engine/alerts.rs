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
use crate::domain::links::{alert_links, is_link_key};
use crate::domain::maintenance::MaintenanceBook;
use crate::domain::rich::one_line;
use crate::domain::sanitize::clean_untrusted;
use crate::domain::silences::AmOrder;
use crate::domain::{
    Actor, AlertStats, ChannelName, EntryKind, Source, Ticket, TicketId, TicketState, UserName,
};
use crate::engine::context::{Cx, NewTicket, Out};
use crate::engine::effect::{Accepted, Decision, Effect, GroupRecord, Member, Reply, Write};
use crate::engine::messages;
use crate::engine::oncall::on_call_now;
use crate::engine::tickets::Action;
use crate::engine::view::View;
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
    /// Tickets whose group flaps: their firing and resolved posts are held.
    held: BTreeSet<u64>,
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
            held: BTreeSet::new(),
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

/// The channel where a ticket's team works, or the operations channel.
fn team_channel(cx: &Cx<'_>, t: &Ticket) -> ChannelName {
    t.team
        .as_ref()
        .and_then(|n| cx.org.team(n))
        .map(|tm| tm.channel.clone())
        .unwrap_or_else(|| cx.ops().clone())
}

/// A chat message: an alert when a message rule of its channel reads it.
pub(crate) fn chat_message(
    cx: &Cx<'_>,
    author: &Actor,
    channel: &ChannelName,
    text: &str,
) -> Result<Decision, EngineError> {
    let alert = cx
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
            let mut d = alerts(cx, &[a])?;
            d.accepted = None;
            Ok(d)
        }
        None => Ok(Decision::default()),
    }
}

/// A batch of alerts, applied whole.
pub(crate) fn alerts(cx: &Cx<'_>, alerts: &[Alert]) -> Result<Decision, EngineError> {
    let mut windows = cx.view.maintenance()?;
    let before = windows.clone();
    let mut d = alerts_in(cx, alerts, &mut windows)?;
    if windows != before {
        d.writes.push(Write::Maintenance(windows));
    }
    Ok(d)
}

/// A batch of alerts, with the maintenance windows as the caller has them
/// (it writes them): those a window in force takes in are recorded there.
pub(crate) fn alerts_in(
    cx: &Cx<'_>,
    alerts: &[Alert],
    windows: &mut MaintenanceBook,
) -> Result<Decision, EngineError> {
    let mut ov = Overlay::new(cx.view)?;
    let mut out = Out::new();
    out.alert = true;
    let book = cx.view.silences()?;
    let mut acc = Accepted::default();
    let mut touched_set = BTreeSet::new();
    let mut beats: Option<crate::domain::heartbeat::HeartbeatBook> = None;
    for alert in alerts {
        acc.accepted += 1;
        // A heartbeat's alert (Alertmanager's always-firing Watchdog) is a
        // beat, never a ticket.
        if let Some(hb) = crate::engine::heartbeats::for_alert(cx, alert.name()) {
            if alert.status == AlertStatus::Firing {
                let book = match beats.as_mut() {
                    Some(b) => b,
                    None => beats.insert(cx.view.heartbeats()?),
                };
                crate::engine::heartbeats::beat_into(cx, &mut out, book, hb)?;
            }
            continue;
        }
        if in_maintenance(cx, &mut ov, &mut out, windows, alert)? {
            continue;
        }
        if book
            .silences
            .iter()
            .any(|s| s.active(cx.now) && s.silences(alert))
        {
            out.writes.push(Write::Silenced(alert.clone()));
            continue;
        }
        let actor = monitor(alert.source);
        let route = cx.config.alerts.route_for(&alert.labels);
        let key = route.group_key(alert);
        let touched = match ov.take_group(&key)? {
            None if alert.status == AlertStatus::Firing => {
                let (id, g) = open_alert_ticket(
                    cx,
                    &mut ov,
                    &mut out,
                    Routed {
                        alert,
                        route,
                        actor: &actor,
                    },
                    key,
                    0,
                )?;
                ov.put_group(g);
                Some(id)
            }
            None => None,
            Some(mut g) => {
                let id = alert_on_group(cx, &mut ov, &mut out, &mut g, alert, route, &actor)?;
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
            post_gathered(cx, &mut out, t, g);
        }
    }
    ov.finish(&mut out);
    if let Some(book) = beats {
        out.writes.push(Write::Heartbeats(book));
    }
    Ok(Decision {
        reply: None,
        accepted: Some(acc),
        writes: out.writes,
    })
}

/// Adds an alert to the post gathered for its ticket; a run of another
/// kind is posted first, so that the posts keep the alerts' order.
fn gather(
    cx: &Cx<'_>,
    ov: &mut Overlay<'_>,
    out: &mut Out,
    t: &Ticket,
    kind: Burst,
    name: &str,
    still: u64,
) {
    let num = t.id.num();
    if kind != Burst::Joined && ov.held.contains(&num) {
        // Flapping: on the record, not posted.
        return;
    }
    if let Some(g) = ov.gathered.get_mut(&num).filter(|g| g.kind == kind) {
        g.count += 1;
        if g.names.len() < NAMED {
            g.names.push(name.to_string());
        }
        g.still = still;
        return;
    }
    flush_gathered(cx, ov, out, t);
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
fn flush_gathered(cx: &Cx<'_>, ov: &mut Overlay<'_>, out: &mut Out, t: &Ticket) {
    if let Some(g) = ov.gathered.remove(&t.id.num()) {
        post_gathered(cx, out, t, g);
    }
}

fn post_gathered(cx: &Cx<'_>, out: &mut Out, t: &Ticket, g: Gathered) {
    match g.kind {
        Burst::Joined => out.thread(cx.ops(), &t.id, messages::alerts_joined(&g.names, g.count)),
        Burst::FiredAgain => out.post(
            &team_channel(cx, t),
            Some(&t.id),
            messages::alerts_fired_again(t, &g.names, g.count),
        ),
        Burst::Recovered => out.post(
            &team_channel(cx, t),
            Some(&t.id),
            messages::alerts_recovered(t, &g.names, g.count, g.still),
        ),
    }
}

/// An alert as routed: what fired, the route it matched, and the monitor
/// it comes from.
#[derive(Clone, Copy)]
struct Routed<'a> {
    alert: &'a Alert,
    route: &'a Route,
    actor: &'a Actor,
}

/// Opens a ticket for a group's first alert; returns it and the group,
/// which starts at `episode` (its alerts of earlier tickets are not
/// members).
fn open_alert_ticket(
    cx: &Cx<'_>,
    ov: &mut Overlay<'_>,
    out: &mut Out,
    routed: Routed<'_>,
    key: String,
    episode: u64,
) -> Result<(TicketId, GroupRecord), EngineError> {
    let Routed {
        alert,
        route,
        actor,
    } = routed;
    let num = ov.allocate();
    let summary = clean_untrusted(&alert.summary());
    let title = one_line(&summary, crate::domain::MAX_TITLE);
    let description = describe_alert(alert);
    let mut t = cx.open_ticket(
        out,
        NewTicket {
            num,
            actor,
            channel: cx.ops(),
            title: &title,
            description: Some(&description),
            priority: route.priority,
            team: route.team.as_ref(),
            headline: "New alert ticket ",
        },
    );
    t.alerts = Some(AlertStats {
        group: shown_group_key(&key),
        count: 1,
        last_seen: cx.now,
        flaps: 0,
        links: alert_links(alert),
        labels: alert.labels.clone(),
        annotations: alert
            .annotations
            .iter()
            .filter(|(k, _)| !is_link_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    });
    // A team with an on-call rotation: the alert goes to whoever is on call.
    if let Some(team) = route.team.as_ref() {
        if let Some(user) = on_call_now(cx, team)? {
            let action = Action::AssignUser {
                team: team.clone(),
                user,
            };
            t = cx.system_move(out, &t, actor, action)?;
        }
    }
    let id = t.id.clone();
    let g = GroupRecord {
        key,
        route: route.name.clone(),
        ticket: id.clone(),
        members: BTreeMap::new(),
        last_seen: cx.now,
        stale: false,
        firing: 1,
        episode,
        first_episode: episode,
        flap: Default::default(),
    };
    ov.put_member(
        &g,
        &alert.fingerprint,
        Member {
            status: AlertStatus::Firing,
            count: 1,
            last_seen: cx.now,
            summary,
            starts_at: alert.starts_at,
            episode,
        },
    );
    ov.put_ticket(t);
    Ok((id, g))
}

fn note(cx: &Cx<'_>, t: &mut Ticket, out: &mut Out, actor: &Actor, kind: EntryKind, text: String) {
    let e = cx.entry(t, actor, kind, t.state, t.state, &text);
    out.writes.push(Write::Timeline(t.id.clone(), e));
    t.updated_at = cx.now;
}

/// Opens a new ticket for the next episode of group `g` (its ticket is gone,
/// or closed with a route that opens anew on refiring); `g` becomes the new
/// group.
fn open_next_episode(
    cx: &Cx<'_>,
    ov: &mut Overlay<'_>,
    out: &mut Out,
    g: &mut GroupRecord,
    routed: Routed<'_>,
) -> Result<TicketId, EngineError> {
    let (id, fresh) = open_alert_ticket(cx, ov, out, routed, g.key.clone(), g.episode + 1)?;
    *g = fresh;
    Ok(id)
}

/// An alert of a group that exists: `g` is changed in place (or
/// replaced by a new group when a new ticket opens).
fn alert_on_group(
    cx: &Cx<'_>,
    ov: &mut Overlay<'_>,
    out: &mut Out,
    g: &mut GroupRecord,
    alert: &Alert,
    route: &Route,
    actor: &Actor,
) -> Result<Option<TicketId>, EngineError> {
    let Some(mut t) = ov.ticket(&g.ticket)? else {
        // The group points at a ticket that is gone: start afresh.
        if alert.status == AlertStatus::Firing {
            let routed = Routed {
                alert,
                route,
                actor,
            };
            return open_next_episode(cx, ov, out, g, routed).map(Some);
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
    // A flapping group that stayed in one state for its window stops
    // flapping before this alert counts.
    if let Some(flap) = route.flap.as_ref().filter(|f| g.flap.settled(f, cx.now)) {
        flush_gathered(cx, ov, out, &t);
        t = settle_flap(cx, out, t, g, route, flap)?;
    }
    if g.flap.flapping {
        ov.held.insert(t.id.num());
    } else {
        ov.held.remove(&t.id.num());
    }
    let was_firing = g.firing > 0;
    let stats = t.alerts.get_or_insert_with(|| AlertStats {
        group: shown_group_key(&g.key),
        count: 0,
        last_seen: cx.now,
        flaps: 0,
        links: Vec::new(),
        labels: Default::default(),
        annotations: Default::default(),
    });
    stats.count += 1;
    stats.last_seen = cx.now;
    match alert.status {
        AlertStatus::Firing => {
            g.last_seen = cx.now;
            if t.state == TicketState::Closed {
                if route.on_refire == OnRefire::New {
                    ov.put_ticket(t);
                    let routed = Routed {
                        alert,
                        route,
                        actor,
                    };
                    return open_next_episode(cx, ov, out, g, routed).map(Some);
                }
                flush_gathered(cx, ov, out, &t);
                let reason = format!("the alert fired again: {summary}");
                t = cx.system_move(out, &t, actor, Action::Reopen { reason })?;
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
                note(
                    cx,
                    &mut t,
                    out,
                    actor,
                    EntryKind::Alert,
                    "alerts arrive again; no longer stale".into(),
                );
            }
            let comes_back = member
                .as_ref()
                .is_none_or(|m| m.status == AlertStatus::Resolved);
            if comes_back && matches!(t.state, TicketState::Resolved | TicketState::Qa) {
                // The fix did not hold: back to the team before anyone closes it.
                flush_gathered(cx, ov, out, &t);
                t = refired_while_resolved(cx, t, out, actor, &summary)?;
            }
            let m = match member {
                Some(mut m) if m.status == AlertStatus::Firing => {
                    m.count += 1;
                    m.last_seen = cx.now;
                    if alert.starts_at.is_some() {
                        m.starts_at = m.starts_at.max(alert.starts_at);
                    }
                    let n = m.count;
                    // A repeat: on the record, no post.
                    note(
                        cx,
                        &mut t,
                        out,
                        actor,
                        EntryKind::Alert,
                        format!("repeat #{n}: {summary}"),
                    );
                    m
                }
                Some(mut m) => {
                    m.status = AlertStatus::Firing;
                    m.count += 1;
                    m.last_seen = cx.now;
                    m.starts_at = alert.starts_at.or(m.starts_at);
                    g.firing += 1;
                    note(
                        cx,
                        &mut t,
                        out,
                        actor,
                        EntryKind::Alert,
                        format!("fired again: {summary}"),
                    );
                    gather(cx, ov, out, &t, Burst::FiredAgain, &summary, g.firing);
                    m
                }
                None => {
                    g.firing += 1;
                    note(
                        cx,
                        &mut t,
                        out,
                        actor,
                        EntryKind::Alert,
                        format!("joined: {summary}"),
                    );
                    gather(cx, ov, out, &t, Burst::Joined, &summary, g.firing);
                    Member {
                        status: AlertStatus::Firing,
                        count: 1,
                        last_seen: cx.now,
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
            m.last_seen = cx.now;
            ov.put_member(g, fp, m);
            g.firing = g.firing.saturating_sub(1);
            let still = g.firing;
            note(
                cx,
                &mut t,
                out,
                actor,
                EntryKind::Alert,
                format!("recovered: {summary}"),
            );
            gather(cx, ov, out, &t, Burst::Recovered, &summary, still);
            let open = matches!(
                t.state,
                TicketState::Open | TicketState::Assigned | TicketState::InProgress
            );
            if still == 0 && route.resolve_on_recovery && open && !g.flap.flapping {
                flush_gathered(cx, ov, out, &t);
                let note = "all alerts recovered".to_string();
                t = cx.system_move(out, &t, actor, Action::Resolve { note })?;
            }
        }
    }
    if let Some(flap) = route.flap.as_ref() {
        if was_firing != (g.firing > 0) && g.flap.change(flap, cx.now) {
            // One post says so; its firing and resolved posts wait.
            flush_gathered(cx, ov, out, &t);
            ov.held.insert(t.id.num());
            note(
                cx,
                &mut t,
                out,
                actor,
                EntryKind::Alert,
                messages::flapping_note(g.flap.changes.len(), flap.within),
            );
            out.post(
                &team_channel(cx, &t),
                Some(&t.id),
                messages::flapping_started(&t, g.flap.changes.len(), flap.within),
            );
        }
        if let Some(s) = t.alerts.as_mut() {
            s.flaps = g.flap.shown();
        }
    }
    let id = t.id.clone();
    ov.put_ticket(t);
    Ok(Some(id))
}

/// A flapping group stayed in one state for its window: it stops
/// flapping, said once; a group that stayed resolved resolves its ticket
/// now if its route resolves on recovery.
fn settle_flap(
    cx: &Cx<'_>,
    out: &mut Out,
    mut t: Ticket,
    g: &mut GroupRecord,
    route: &Route,
    flap: &crate::domain::flap::Flap,
) -> Result<Ticket, EngineError> {
    g.flap.settle();
    if let Some(s) = t.alerts.as_mut() {
        s.flaps = 0;
    }
    let firing = g.firing > 0;
    let actor = monitor(AlertSource::Alertmanager);
    note(
        cx,
        &mut t,
        out,
        &actor,
        EntryKind::Alert,
        messages::flapping_ended_note(firing, flap.within),
    );
    out.post(
        &team_channel(cx, &t),
        Some(&t.id),
        messages::flapping_ended(&t, firing, flap.within),
    );
    let open = matches!(
        t.state,
        TicketState::Open | TicketState::Assigned | TicketState::InProgress
    );
    if !firing && route.resolve_on_recovery && open {
        let note = "all alerts recovered (and stayed so)".to_string();
        t = cx.system_move(out, &t, &actor, Action::Resolve { note })?;
    }
    Ok(t)
}

/// An alert of a resolved ticket fires again: the ticket goes back to
/// its team (the operator must not close it on a fix that did not hold).
fn refired_while_resolved(
    cx: &Cx<'_>,
    t: Ticket,
    out: &mut Out,
    actor: &Actor,
    summary: &str,
) -> Result<Ticket, EngineError> {
    let reason = format!("the alert fired again: {summary}");
    Ok(cx.system_move(out, &t, actor, Action::Reject { reason })?)
}

/// Marks quiet alert groups stale (their route says after how long).
pub(crate) fn mark_stale(cx: &Cx<'_>, keys: &[String]) -> Result<Decision, EngineError> {
    let mut out = Out::new();
    out.alert = true;
    for key in keys {
        let Some(mut g) = cx.view.group(key)? else {
            continue;
        };
        let Some(route) = cx.config.alerts.route(&g.route) else {
            continue;
        };
        if let Some(flap) = route.flap.as_ref().filter(|f| g.flap.settled(f, cx.now)) {
            if let Some(t) = cx.view.ticket(&g.ticket)? {
                let t = settle_flap(cx, &mut out, t, &mut g, route, flap)?;
                out.writes.push(Write::Ticket(t));
            } else {
                g.flap.settle();
            }
            out.writes.push(Write::Group(g));
            continue;
        }
        let Some(after) = route.stale_after else {
            continue;
        };
        let quiet = (cx.now - g.last_seen).to_std().unwrap_or_default();
        let firing = g.firing > 0;
        if g.stale || quiet < after || !firing {
            continue;
        }
        let Some(mut t) = cx.view.ticket(&g.ticket)? else {
            continue;
        };
        if t.state == TicketState::Closed {
            continue;
        }
        g.stale = true;
        let actor = monitor(AlertSource::Alertmanager);
        let took = humantime::format_duration(std::time::Duration::from_secs(after.as_secs()));
        note(
            cx,
            &mut t,
            &mut out,
            &actor,
            EntryKind::Stale,
            format!(
                "no alert for over {took} (route {}): marked stale",
                route.name
            ),
        );
        out.post(
            &team_channel(cx, &t),
            Some(&t.id),
            messages::ticket_stale(&t, &took.to_string()),
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
    cx: &Cx<'_>,
    actor: &Actor,
    command: &Command,
) -> Result<Decision, EngineError> {
    let org = &cx.org;
    let spec = command.name().spec();
    if !spec.who.admits(&actor.name, org) {
        return Err(UserError::new(format!(
            "only {} may run /{}",
            spec.who.describe(),
            spec.full_name()
        ))
        .into());
    }
    let mut book = cx.view.silences()?;
    book.silences.retain(|s| s.active(cx.now));
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
                .and_then(|d| cx.now.checked_add_signed(d))
                .ok_or_else(|| UserError::new("`duration` is too long: at most 30d"))?;
            let s = Silence {
                id: book.next_id,
                matchers: matchers.clone(),
                until,
                created_by: who.to_string(),
                created_at: cx.now,
                comment: comment.clone(),
                am_id: None,
            };
            out.post(cx.ops(), None, messages::silence_set(who, &s, *duration));
            let reply = if cx.config.alerts.alertmanager.is_some() {
                // Alertmanager keeps it too; the id it gives comes back
                // as `Event::SilenceMade`.
                out.writes
                    .push(Write::Effect(Effect::Alertmanager(AmOrder::create(&s))));
                messages::silence_set_reply_alertmanager(&s)
            } else {
                messages::silence_set_reply(&s)
            };
            book.silences.push(s);
            reply
        }
        Command::AlertUnsilence { id } => {
            let Some(pos) = book.silences.iter().position(|s| s.id == *id) else {
                return Err(UserError::new(format!(
                    "there is no silence {id} in force; /alert silences lists them"
                ))
                .into());
            };
            let s = book.silences.remove(pos);
            // Not yet made in Alertmanager: it is ended there once its id
            // comes back (`silences::silence_made`).
            if let Some(id) = &s.am_id {
                let order = AmOrder::Expire { id: id.clone() };
                out.writes.push(Write::Effect(Effect::Alertmanager(order)));
            }
            out.post(cx.ops(), None, messages::silence_ended(who, &s));
            messages::silence_ended_reply(s.id)
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
pub(crate) fn list_silences(cx: &Cx<'_>) -> Result<Reply, EngineError> {
    let book = cx.view.silences()?;
    let active: Vec<&Silence> = book.silences.iter().filter(|s| s.active(cx.now)).collect();
    if cx.config.alerts.alertmanager.is_some() {
        let theirs: Vec<_> = book.external.iter().filter(|s| s.active(cx.now)).collect();
        if active.is_empty() && theirs.is_empty() {
            return Ok(Reply::private(messages::answers::no_silences(true)));
        }
        return Ok(Reply::private(messages::silences_list_alertmanager(
            &active, &theirs,
        )));
    }
    if active.is_empty() {
        return Ok(Reply::private(messages::answers::no_silences(false)));
    }
    Ok(Reply::private(messages::silences_list(&active)))
}

/// An alert a maintenance window in force takes in: recorded in the window
/// and kept on record (with the silenced alerts); an existing ticket of its
/// group notes it on its timeline. No ticket opens, nothing is posted.
fn in_maintenance(
    cx: &Cx<'_>,
    ov: &mut Overlay<'_>,
    out: &mut Out,
    windows: &mut MaintenanceBook,
    alert: &Alert,
) -> Result<bool, EngineError> {
    let Some(w) = windows.covering(alert, cx.now) else {
        return Ok(false);
    };
    w.record(alert);
    let id = w.id;
    out.writes.push(Write::Silenced(alert.clone()));
    let route = cx.config.alerts.route_for(&alert.labels);
    let key = route.group_key(alert);
    if let Some(g) = ov.take_group(&key)? {
        if let Some(mut t) = ov.ticket(&g.ticket)? {
            if t.state != TicketState::Closed {
                let actor = monitor(alert.source);
                let summary = clean_untrusted(&alert.detail());
                let text = messages::maintenance_note(id, alert.status, &summary);
                note(cx, &mut t, out, &actor, EntryKind::Alert, text);
                ov.put_ticket(t);
            }
        }
        // Back unchanged: not written again.
        ov.groups.insert(g.key.clone(), Some(g));
    }
    Ok(true)
}
