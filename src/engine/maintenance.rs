//! Maintenance windows: `/maintenance start|schedule|list|end`, the
//! recurring windows of `bot.toml` (`[[maintenance]]`), the windows a
//! deploy opens, and the timer that starts and ends them. While a window
//! is in force, matching alerts are recorded (see `alerts.rs`) but open no
//! ticket and post nothing; when it ends, those still firing are handled
//! as new alerts. Pure, like the rest of the engine.

use crate::commands::Command;
use crate::domain::alert::{Labels, MatchOp, Matcher};
use crate::domain::maintenance::{parse_time, Every, MaintenanceBook, Origin, Recur, Window};
use crate::domain::{Actor, ChannelName, TeamName};
use crate::engine::context::{Cx, Out};
use crate::engine::effect::{Decision, Reply, Write};
use crate::engine::messages;
use crate::error::{EngineError, UserError};

/// The team that owns the alerts the matchers name: the team of the route
/// their exact labels take.
pub(crate) fn owning_team(cx: &Cx<'_>, matchers: &[Matcher]) -> Option<TeamName> {
    let labels: Labels = matchers
        .iter()
        .filter(|m| m.op == MatchOp::Eq)
        .map(|m| (m.label.clone(), m.value.clone()))
        .collect();
    cx.config.alerts.route_for(&labels).team.clone()
}

fn channel_of(cx: &Cx<'_>, team: Option<&TeamName>) -> ChannelName {
    team.and_then(|t| cx.org.team(t))
        .map(|t| t.channel.clone())
        .unwrap_or_else(|| cx.ops().clone())
}

/// Operators, and members of the team that owns the alerts.
fn may_change(
    cx: &Cx<'_>,
    actor: &Actor,
    team: Option<&TeamName>,
    what: &str,
) -> Result<(), UserError> {
    let name = &actor.name;
    if cx.org.is_operator(name) {
        return Ok(());
    }
    match team {
        Some(t) if cx.org.team(t).is_some_and(|tm| tm.members.contains(name)) => Ok(()),
        Some(t) => Err(UserError::new(format!(
            "only operators and team {t} (who own these alerts) may {what}"
        ))),
        None => Err(UserError::new(format!(
            "only operators may {what}: no team owns these alerts (give matchers such as service=web that a route of a team takes)"
        ))),
    }
}

/// A span in the words people write it in: `1d`, `6h`, `90m`.
fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn too_long(d: std::time::Duration, max: std::time::Duration) -> UserError {
    UserError::new(format!(
        "a maintenance window lasts at most {} ([monitoring] max_maintenance); got {}",
        span(max),
        span(d)
    ))
}

/// `/maintenance start`, `/maintenance schedule`, `/maintenance end`.
pub(crate) fn command(
    cx: &Cx<'_>,
    actor: &Actor,
    command: &Command,
) -> Result<Decision, EngineError> {
    let spec = command.name().spec();
    if !spec.who.admits(&actor.name, cx.org) {
        return Err(UserError::new(format!(
            "only {} may run /{}",
            spec.who.describe(),
            spec.full_name()
        ))
        .into());
    }
    let mut book = cx.view.maintenance()?;
    let mut out = Out::new();
    let max = cx.config.monitoring.max_maintenance;
    let by = Origin::Command {
        by: actor.name.to_string(),
    };
    let reply = match command {
        Command::MaintenanceStart {
            matchers,
            duration,
            comment,
        } => {
            let team = owning_team(cx, matchers);
            may_change(
                cx,
                actor,
                team.as_ref(),
                "start a maintenance window for them",
            )?;
            if *duration > max {
                return Err(too_long(*duration, max).into());
            }
            let until = chrono::Duration::from_std(*duration)
                .ok()
                .and_then(|d| cx.now.checked_add_signed(d))
                .ok_or_else(|| too_long(*duration, max))?;
            let w = Window {
                id: book.allocate(),
                matchers: matchers.clone(),
                from: cx.now,
                until,
                recur: None,
                comment: comment.clone(),
                origin: by,
                team,
                started: true,
                recorded: 0,
                held: Default::default(),
            };
            out.post(
                &channel_of(cx, w.team.as_ref()),
                None,
                messages::maintenance_started(&w),
            );
            let reply = messages::maintenance_started_reply(&w);
            book.windows.push(w);
            reply
        }
        Command::MaintenanceSchedule {
            matchers,
            from,
            until,
            every,
            comment,
        } => {
            let team = owning_team(cx, matchers);
            may_change(
                cx,
                actor,
                team.as_ref(),
                "schedule a maintenance window for them",
            )?;
            let tz = cx.config.monitoring.time_zone;
            let (local_from, from) = parse_time("from", from, tz)?;
            let (local_until, until) = parse_time("until", until, tz)?;
            if until <= from {
                return Err(UserError::new(format!(
                    "`until` ({}) must come after `from` ({})",
                    crate::domain::policy::clock(until),
                    crate::domain::policy::clock(from)
                ))
                .into());
            }
            if until <= cx.now {
                return Err(UserError::new(format!(
                    "that window is in the past: it would have ended {}; give times to come",
                    crate::domain::policy::clock(until)
                ))
                .into());
            }
            let length = (until - from).to_std().unwrap_or_default();
            if length > max {
                return Err(too_long(length, max).into());
            }
            if let Some(e) = every {
                if length.as_secs() >= e.days() as u64 * 86_400 {
                    return Err(UserError::new(format!(
                        "a window that comes back {e} must be shorter than a {}",
                        if *e == Every::Daily { "day" } else { "week" }
                    ))
                    .into());
                }
            }
            let w = Window {
                id: book.allocate(),
                matchers: matchers.clone(),
                from,
                until,
                recur: every.map(|every| Recur {
                    every,
                    tz: tz.name().to_string(),
                    local_from,
                    local_until,
                }),
                comment: comment.clone(),
                origin: by,
                team,
                started: false,
                recorded: 0,
                held: Default::default(),
            };
            let reply = messages::maintenance_scheduled_reply(&w);
            book.windows.push(w);
            reply
        }
        Command::MaintenanceEnd { id } => {
            let Some(pos) = book.windows.iter().position(|w| w.id == *id) else {
                return Err(UserError::new(format!(
                    "there is no maintenance window {id}; /maintenance list shows them"
                ))
                .into());
            };
            let team = book.windows[pos].team.clone();
            may_change(cx, actor, team.as_ref(), "end this maintenance window")?;
            let w = book.windows.remove(pos);
            let released = end(cx, &mut out, &w, Some(&actor.name.to_string()));
            let reply = messages::maintenance_ended_reply(&w);
            release(cx, &mut out, &mut book, &released)?;
            reply
        }
        _ => return Ok(Decision::default()),
    };
    out.writes.push(Write::Maintenance(book));
    Ok(Decision {
        reply: Some(Reply::private(reply)),
        accepted: None,
        writes: out.writes,
    })
}

/// Says a window's end (when anyone heard of it, or it took alerts in) and
/// returns its alerts still firing.
fn end(
    cx: &Cx<'_>,
    out: &mut Out,
    w: &Window,
    by: Option<&String>,
) -> Vec<crate::domain::alert::Alert> {
    if w.started || w.recorded > 0 {
        out.post(
            &channel_of(cx, w.team.as_ref()),
            None,
            messages::maintenance_ended(w, by.map(String::as_str)),
        );
    }
    w.held.values().cloned().collect()
}

/// Alerts a window held, handled now as new alerts (another window in
/// force may take them in).
fn release(
    cx: &Cx<'_>,
    out: &mut Out,
    book: &mut MaintenanceBook,
    alerts: &[crate::domain::alert::Alert],
) -> Result<(), EngineError> {
    if alerts.is_empty() {
        return Ok(());
    }
    let d = crate::engine::alerts::alerts_in(cx, alerts, book)?;
    out.writes.extend(d.writes);
    Ok(())
}

/// `/maintenance list`.
pub(crate) fn list(cx: &Cx<'_>) -> Result<Reply, EngineError> {
    let book = cx.view.maintenance()?;
    let mut windows: Vec<&Window> = book.windows.iter().collect();
    windows.sort_by_key(|w| (w.from, w.id));
    let waiting: Vec<&crate::domain::maintenance::Scheduled> = cx
        .config
        .monitoring
        .maintenance
        .iter()
        .filter(|s| {
            !book
                .windows
                .iter()
                .any(|w| matches!(&w.origin, Origin::Config { name } if *name == s.name))
        })
        .collect();
    Ok(Reply::private(messages::maintenance_list(
        &windows, &waiting, cx.now,
    )))
}

/// The timer's mark of the last occurrence of a `[[maintenance]]` opened.
fn mark(name: &str) -> String {
    format!("maintenance:{name}")
}

/// Windows of `bot.toml` whose occurrence runs now and was not opened yet
/// (by index in the config, with the occurrence's start and end).
type Occurrence = (usize, crate::domain::Timestamp, crate::domain::Timestamp);

fn config_windows(cx: &Cx<'_>) -> Result<Vec<Occurrence>, EngineError> {
    let mut out = Vec::new();
    for (i, s) in cx.config.monitoring.maintenance.iter().enumerate() {
        let Some((_, _, from, until)) = s.current(cx.now) else {
            continue;
        };
        if cx.view.marker(&mark(&s.name))? != Some(from.timestamp()) {
            out.push((i, from, until));
        }
    }
    Ok(out)
}

/// Whether the timer has something to do: a window to start or to end,
/// or an occurrence of a `[[maintenance]]` to open.
pub(crate) fn due(cx: &Cx<'_>) -> Result<bool, EngineError> {
    let book = cx.view.maintenance()?;
    let now = cx.now;
    Ok(book
        .windows
        .iter()
        .any(|w| w.until <= now || (!w.started && w.from <= now))
        || !config_windows(cx)?.is_empty())
}

/// The timer: opens the `[[maintenance]]` occurrences that run now, ends
/// the windows whose time is up (their alerts still firing are handled as
/// new ones; a recurring window moves on to its next occurrence) and
/// starts those whose time came. Each start and end is posted once.
pub(crate) fn tick(cx: &Cx<'_>) -> Result<Decision, EngineError> {
    let mut book = cx.view.maintenance()?;
    let mut out = Out::new();
    for (i, from, until) in config_windows(cx)? {
        let Some(s) = cx.config.monitoring.maintenance.get(i) else {
            continue;
        };
        out.writes
            .push(Write::Marker(mark(&s.name), from.timestamp()));
        let id = book.allocate();
        book.windows.push(Window {
            id,
            matchers: s.matchers.clone(),
            from,
            until,
            recur: None,
            comment: s.comment.clone(),
            origin: Origin::Config {
                name: s.name.clone(),
            },
            team: s.team.clone(),
            started: false,
            recorded: 0,
            held: Default::default(),
        });
    }
    let mut released = Vec::new();
    let mut keep = Vec::new();
    for mut w in std::mem::take(&mut book.windows) {
        if w.until <= cx.now {
            released.extend(end(cx, &mut out, &w, None));
            if !w.advance(cx.now) {
                continue;
            }
        }
        if !w.started && w.covers(cx.now) {
            w.started = true;
            out.post(
                &channel_of(cx, w.team.as_ref()),
                None,
                messages::maintenance_started(&w),
            );
        }
        keep.push(w);
    }
    book.windows = keep;
    release(cx, &mut out, &mut book, &released)?;
    out.writes.push(Write::Maintenance(book));
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

/// A deploy to an environment with `maintenance = "10m"` opens a window for
/// its service and environment (alerts labelled `service` and `env`) as
/// its job is ordered; the run notes it, and its progress message says so.
pub(crate) fn open_for_deploy(
    cx: &Cx<'_>,
    out: &mut Out,
    run: &mut crate::domain::run::Run,
) -> Result<(), EngineError> {
    let Some(deploy) = run.deploy.as_mut() else {
        return Ok(());
    };
    let Some(svc) = cx.config.services.get(&deploy.service) else {
        return Ok(());
    };
    let Some(length) = svc
        .environments
        .get(&deploy.env)
        .and_then(|e| e.maintenance)
    else {
        return Ok(());
    };
    let Some(until) = chrono::Duration::from_std(length)
        .ok()
        .and_then(|d| cx.now.checked_add_signed(d))
    else {
        return Ok(());
    };
    let matchers = ["service", "env"]
        .iter()
        .zip([&deploy.service, &deploy.env])
        .map(|(label, value)| Matcher::parse(&format!("{label}={value}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut book = cx.view.maintenance()?;
    let w = Window {
        id: book.allocate(),
        matchers,
        from: cx.now,
        until,
        recur: None,
        comment: None,
        origin: Origin::Deploy { run: run.id },
        team: svc.team.clone(),
        // Said in the deploy's progress message.
        started: true,
        recorded: 0,
        held: Default::default(),
    };
    deploy.maintenance = Some(crate::domain::maintenance::DeployWindow {
        id: w.id,
        matchers: w.matchers_text(),
        until,
    });
    book.windows.push(w);
    out.writes.push(Write::Maintenance(book));
    Ok(())
}
