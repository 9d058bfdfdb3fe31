//! The engine's side of reports: `/report` and the weekly report (the figures
//! and the chart are `crate::report`).

use chrono::Duration;

use crate::commands::ReportPeriod;
use crate::domain::rich::Rich;
use crate::domain::{TeamName, Timestamp};
use crate::engine::{Attachment, Decision, Engine, Out, QueryView, Reply, View, Write};
use crate::error::{EngineError, UserError};
use crate::report::{chart, compute, render};

/// The report over `period` before `now`, as text and a chart.
pub fn build(
    view: &dyn QueryView,
    period: ReportPeriod,
    team: Option<&TeamName>,
    now: Timestamp,
) -> Result<(String, Option<Attachment>), EngineError> {
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

impl Engine {
    /// `/report [period:…] [team:…]`.
    pub(crate) fn report(
        &self,
        view: &dyn QueryView,
        period: ReportPeriod,
        team: Option<&TeamName>,
        now: Timestamp,
    ) -> Result<Reply, EngineError> {
        if let Some(t) = team {
            if self.config.org.team(t).is_none() {
                return Err(crate::engine::tickets::unknown_team(t, &self.config.org).into());
            }
        }
        let (text, file) = build(view, period, team, now)?;
        Ok(Reply {
            body: Rich::new().text(text),
            ephemeral: true,
            file,
        })
    }

    /// The weekly report for the scheduled instant `due`, posted once.
    pub(crate) fn scheduled_report(
        &self,
        view: &dyn View,
        due: Timestamp,
        body: &Rich,
        file: Option<&Attachment>,
    ) -> Result<Decision, EngineError> {
        let key = "weekly_report".to_string();
        let mark = due.timestamp();
        if view.marker(&key)?.is_some_and(|m| m >= mark) {
            return Err(UserError::new("this weekly report was already posted").into());
        }
        let first = view.marker(&key)?.is_none();
        let mut out = Out::new();
        out.writes.push(Write::Marker(key, mark));
        if first {
            // A new database notes the schedule; it reports from the next one.
            return Ok(Decision {
                reply: None,
                accepted: None,
                writes: out.writes,
            });
        }
        out.post(self.ops(), None, body.clone());
        if let Some(crate::engine::Write::Effect(crate::engine::Effect::Post(p))) =
            out.writes.last_mut()
        {
            p.file = file.cloned();
        }
        Ok(Decision {
            reply: None,
            accepted: None,
            writes: out.writes,
        })
    }
}
