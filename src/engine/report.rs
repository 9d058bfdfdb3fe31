//! The engine's side of reports: `/report` and the weekly report (the figures
//! and the chart are `crate::report`).

use chrono::Duration;

use crate::commands::ReportPeriod;
use crate::domain::rich::Rich;
use crate::domain::{TeamName, Timestamp};
use crate::engine::context::{Cx, Out};
use crate::engine::effect::{Attachment, Decision, Effect, Reply, Write};
use crate::engine::messages;
use crate::engine::view::{QueryView, View};
use crate::error::{EngineError, UserError};
use crate::report::{chart, compute, render};

/// The report over `period` before `now`, as text and a chart.
pub fn build(
    view: &dyn QueryView,
    period: ReportPeriod,
    team: Option<&TeamName>,
    now: Timestamp,
) -> Result<(Rich, Option<Attachment>), EngineError> {
    let span = Duration::from_std(period.0).unwrap_or(Duration::days(7));
    let from = now.checked_sub_signed(span).unwrap_or(now);
    let rows = view.report_rows(from, team)?;
    let report = compute(&rows, from, now, team);
    let text = render(&report, &period.label());
    let file = match chart(&report) {
        Ok(bytes) => Some(Attachment {
            name: format!("report-{}.png", now.format("%Y%m%d-%H%M%S")),
            bytes,
        }),
        Err(e) => {
            tracing::error!(error = %e, "the report's chart failed; answering without it");
            None
        }
    };
    Ok((text, file))
}

/// `/report [period:…] [team:…]`.
pub(crate) fn report(
    cx: &Cx<'_>,
    view: &dyn QueryView,
    period: ReportPeriod,
    team: Option<&TeamName>,
) -> Result<Reply, EngineError> {
    if let Some(t) = team {
        if cx.org.team(t).is_none() {
            return Err(crate::engine::tickets::unknown_team(t, cx.org).into());
        }
    }
    let (text, file) = build(view, period, team, cx.now)?;
    Ok(Reply {
        body: text,
        ephemeral: true,
        file,
        more: None,
    })
}

/// On a timer tick: whether the weekly report's time came, and what is
/// then to do. The one place of the rule: the timer asks it before
/// computing the figures, and the decision asks it again.
pub(crate) fn weekly_report_due(cx: &Cx<'_>) -> Result<Option<WeeklyDue>, EngineError> {
    let Some(weekly) = cx.config.policy.weekly_report else {
        return Ok(None);
    };
    weekly_step(cx.view, weekly.last_due(cx.now))
}

/// The weekly report for the scheduled instant `due`, posted once, with
/// the figures the timer computed.
pub(crate) fn scheduled_report(
    cx: &Cx<'_>,
    due: Timestamp,
    figures: &Rich,
    file: Option<&Attachment>,
) -> Result<Decision, EngineError> {
    let Some(step) = weekly_step(cx.view, due)? else {
        return Err(UserError::new("this weekly report was already posted").into());
    };
    let mut out = Out::new();
    out.writes
        .push(Write::Marker(WEEKLY_MARK.to_string(), due.timestamp()));
    if !step.post {
        // A new database notes the schedule; it reports from the next one.
        return Ok(Decision {
            reply: None,
            accepted: None,
            writes: out.writes,
        });
    }
    out.post(cx.ops(), None, messages::weekly_report(figures));
    if let Some(Write::Effect(Effect::Post(p))) = out.writes.last_mut() {
        p.file = file.cloned();
    }
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

/// The marker that keeps the last weekly report's scheduled instant.
const WEEKLY_MARK: &str = "weekly_report";

/// The weekly report's scheduled instant has come and is not yet posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeeklyDue {
    pub due: Timestamp,
    /// Post the report (with figures); `false`: a new database only notes
    /// the schedule, and reports from the next one.
    pub post: bool,
}

/// The rule: a scheduled instant is reported once; the first one a store
/// sees is only noted.
fn weekly_step(view: &dyn View, due: Timestamp) -> Result<Option<WeeklyDue>, EngineError> {
    Ok(match view.marker(WEEKLY_MARK)? {
        Some(m) if m >= due.timestamp() => None,
        Some(_) => Some(WeeklyDue { due, post: true }),
        None => Some(WeeklyDue { due, post: false }),
    })
}
