//! Reports: tickets opened and closed, times to acknowledge and to resolve,
//! deadline breaches, by team and priority, and a PNG chart. Computed from
//! the timelines (the record of what happened), by pure functions: the store
//! only hands over each ticket's entries.
//!
//! Over a period `[from, to)`:
//! - *opened*: tickets whose opening falls in the period;
//! - *closed*: tickets verified and closed in the period (once each);
//! - *time to acknowledge*: from opening to the first take (or resolve, when
//!   nobody took it first), for tickets first acknowledged in the period;
//! - *time to resolve*: from opening to the first resolve, for tickets first
//!   resolved in the period;
//! - *breaches*: deadline breaches recorded in the period.
//!
//! Means are arithmetic; the median and the 90th percentile are nearest-rank
//! (the smallest value with at least 50 % / 90 % of the values at or below
//! it), so each is a time that some ticket really took.

use std::collections::BTreeMap;
use std::sync::Once;

use chrono::Duration;
use serde::Deserialize;

use crate::domain::{EntryKind, Priority, TeamName, Ticket, Timestamp};

/// What a report needs of a timeline entry (the rest is not decoded).
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct EntryLite {
    pub at: Timestamp,
    pub kind: EntryKind,
}

/// One ticket, as a report sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub team: Option<TeamName>,
    pub priority: Priority,
    pub opened: Timestamp,
    pub acknowledged: Option<Timestamp>,
    pub resolved: Option<Timestamp>,
    pub closed: Vec<Timestamp>,
    pub breaches: Vec<Timestamp>,
}

impl Row {
    /// Reads a ticket and its timeline, in order.
    pub fn of(t: &Ticket, entries: impl IntoIterator<Item = EntryLite>) -> Row {
        let mut row = Row {
            team: t.team.clone(),
            priority: t.priority,
            opened: t.created_at,
            acknowledged: None,
            resolved: None,
            closed: Vec::new(),
            breaches: Vec::new(),
        };
        for e in entries {
            match e.kind {
                EntryKind::Opened => row.opened = e.at,
                EntryKind::Taken => {
                    row.acknowledged.get_or_insert(e.at);
                }
                EntryKind::Resolved => {
                    row.acknowledged.get_or_insert(e.at);
                    row.resolved.get_or_insert(e.at);
                }
                EntryKind::Verified => row.closed.push(e.at),
                EntryKind::Breached => row.breaches.push(e.at),
                _ => {}
            }
        }
        row
    }
}

/// Mean, median and 90th percentile of some durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: usize,
    pub mean: Duration,
    pub median: Duration,
    pub p90: Duration,
}

impl Stats {
    pub fn of(mut v: Vec<Duration>) -> Stats {
        if v.is_empty() {
            return Stats::default();
        }
        v.sort();
        let n = v.len();
        let total: i64 = v
            .iter()
            .fold(0i64, |acc, d| acc.saturating_add(d.num_seconds()));
        let rank = |p: f64| {
            let k = ((p * n as f64).ceil() as usize).clamp(1, n);
            v[k - 1]
        };
        Stats {
            count: n,
            mean: Duration::seconds(total / n as i64),
            median: rank(0.5),
            p90: rank(0.9),
        }
    }

    fn show(&self) -> String {
        if self.count == 0 {
            "—".into()
        } else {
            format!(
                "mean {}, median {}, p90 {} (n={})",
                crate::domain::policy::human(self.mean),
                crate::domain::policy::human(self.median),
                crate::domain::policy::human(self.p90),
                self.count
            )
        }
    }
}

/// Figures for one slice (everything, a team, a priority).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub opened: usize,
    pub closed: usize,
    pub acknowledge: Stats,
    pub resolve: Stats,
    pub breaches: usize,
}

#[derive(Default)]
struct Acc {
    opened: usize,
    closed: usize,
    ack: Vec<Duration>,
    res: Vec<Duration>,
    breaches: usize,
}

impl Acc {
    fn done(self) -> Figures {
        Figures {
            opened: self.opened,
            closed: self.closed,
            acknowledge: Stats::of(self.ack),
            resolve: Stats::of(self.res),
            breaches: self.breaches,
        }
    }
}

/// A whole report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub from: Timestamp,
    pub to: Timestamp,
    pub team: Option<TeamName>,
    pub total: Figures,
    /// By team (`None`: no team yet).
    pub by_team: BTreeMap<Option<TeamName>, Figures>,
    pub by_priority: BTreeMap<Priority, Figures>,
    /// Per UTC day from `from`'s day: tickets opened and closed.
    pub days: Vec<(chrono::NaiveDate, usize, usize)>,
}

/// Computes a report over `[from, to)` from the rows.
pub fn compute(rows: &[Row], from: Timestamp, to: Timestamp, team: Option<&TeamName>) -> Report {
    let inside = |t: Timestamp| from <= t && t < to;
    let mut total = Acc::default();
    let mut by_team: BTreeMap<Option<TeamName>, Acc> = BTreeMap::new();
    let mut by_prio: BTreeMap<Priority, Acc> = BTreeMap::new();
    let first_day = from.date_naive();
    let n_days = ((to.date_naive() - first_day).num_days() + 1).clamp(1, 400) as usize;
    let mut days: Vec<(chrono::NaiveDate, usize, usize)> = (0..n_days)
        .map(|i| {
            let day = first_day
                .checked_add_signed(Duration::days(i as i64))
                .unwrap_or(first_day);
            (day, 0, 0)
        })
        .collect();
    let day_of = |t: Timestamp| {
        let i = (t.date_naive() - first_day).num_days();
        usize::try_from(i).ok().filter(|i| *i < n_days)
    };
    for r in rows {
        if team.is_some_and(|tm| r.team.as_ref() != Some(tm)) {
            continue;
        }
        let mut one = Acc::default();
        if inside(r.opened) {
            one.opened = 1;
            if let Some(i) = day_of(r.opened) {
                days[i].1 += 1;
            }
        }
        if let Some(c) = r.closed.iter().rev().find(|c| inside(**c)) {
            one.closed = 1;
            if let Some(i) = day_of(*c) {
                days[i].2 += 1;
            }
        }
        if let Some(a) = r.acknowledged.filter(|a| inside(*a)) {
            one.ack.push(a - r.opened);
        }
        if let Some(s) = r.resolved.filter(|s| inside(*s)) {
            one.res.push(s - r.opened);
        }
        one.breaches = r.breaches.iter().filter(|b| inside(**b)).count();
        for acc in [
            &mut total,
            by_team.entry(r.team.clone()).or_default(),
            by_prio.entry(r.priority).or_default(),
        ] {
            acc.opened += one.opened;
            acc.closed += one.closed;
            acc.ack.extend(one.ack.iter().copied());
            acc.res.extend(one.res.iter().copied());
            acc.breaches += one.breaches;
        }
    }
    let by_team = by_team
        .into_iter()
        .map(|(k, a)| (k, a.done()))
        .filter(|(_, f)| {
            f.opened + f.closed + f.acknowledge.count + f.resolve.count + f.breaches > 0
        })
        .collect();
    let by_priority = by_prio
        .into_iter()
        .map(|(k, a)| (k, a.done()))
        .filter(|(_, f)| {
            f.opened + f.closed + f.acknowledge.count + f.resolve.count + f.breaches > 0
        })
        .collect();
    Report {
        from,
        to,
        team: team.cloned(),
        total: total.done(),
        by_team,
        by_priority,
        days,
    }
}

fn line(name: &str, f: &Figures) -> String {
    format!(
        "{name}: opened {}, closed {}, breaches {}; acknowledge {}; resolve {}",
        f.opened,
        f.closed,
        f.breaches,
        f.acknowledge.show(),
        f.resolve.show()
    )
}

/// The report as text; its period as moments every reader sees in their
/// own time zone.
pub fn render(r: &Report, period: &str) -> crate::domain::rich::Rich {
    use crate::domain::policy::CLOCK;
    let head = crate::domain::rich::Rich::new()
        .text(format!(
            "Report for the last {period}{} (",
            r.team
                .as_ref()
                .map(|t| format!(", team {t}"))
                .unwrap_or_default(),
        ))
        .time(&r.from, CLOCK)
        .text(" to ")
        .time(&r.to, CLOCK)
        .text("):\n");
    let mut s = line("all", &r.total);
    s.push_str("\nby team:");
    if r.by_team.is_empty() {
        s.push_str(" nothing happened");
    }
    for (t, f) in &r.by_team {
        s.push_str("\n  ");
        s.push_str(&line(t.as_ref().map_or("(no team)", |t| t.as_str()), f));
    }
    s.push_str("\nby priority:");
    if r.by_priority.is_empty() {
        s.push_str(" nothing happened");
    }
    for (p, f) in &r.by_priority {
        s.push_str("\n  ");
        s.push_str(&line(p.as_str(), f));
    }
    head.text(s)
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw the chart: {0}")]
    Draw(String),
    #[error("cannot encode the chart as PNG: {0}")]
    Encode(#[from] png::EncodingError),
}

/// The chart's size in pixels.
pub const CHART_SIZE: (u32, u32) = (900, 640);

/// A font shipped in the repository (DejaVu Sans Mono, under the Bitstream
/// Vera licence: `assets/fonts/DejaVu-LICENSE.txt`), so charts get their
/// labels on any machine, offline.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

fn draw_err(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Draws the report's chart: tickets opened and closed per day (top), and
/// the median time to resolve per team (bottom). Returns PNG bytes.
pub fn chart(r: &Report) -> Result<Vec<u8>, ChartError> {
    use plotters::prelude::*;
    REGISTER.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::error!("the shipped chart font does not load; charts have no text");
        }
    });
    let (w, h) = CHART_SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (top, bottom) = root.split_vertically(h / 2);

        let n = r.days.len().max(1) as i32;
        let max_y = r
            .days
            .iter()
            .map(|d| d.1.max(d.2))
            .max()
            .unwrap_or(0)
            .max(1) as i32;
        let labels: Vec<String> = r
            .days
            .iter()
            .map(|d| d.0.format("%m-%d").to_string())
            .collect();
        let mut c = ChartBuilder::on(&top)
            .caption("Tickets opened and closed per day", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(44)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0i32..(max_y + 1))
            .map_err(draw_err)?;
        c.configure_mesh()
            .x_desc("day (UTC)")
            .y_desc("tickets")
            .x_labels(labels.len().min(14))
            .x_label_formatter(&|x| {
                let i = x.round() as i64;
                if (x - i as f64).abs() < 0.01 {
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| labels.get(i))
                        .cloned()
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(draw_err)?;
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        c.draw_series(LineSeries::new(
            r.days
                .iter()
                .enumerate()
                .map(|(i, d)| (i as f64, d.1 as i32)),
            blue.stroke_width(2),
        ))
        .map_err(draw_err)?
        .label("opened")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
        c.draw_series(
            r.days
                .iter()
                .enumerate()
                .map(|(i, d)| Circle::new((i as f64, d.1 as i32), 3, blue.filled())),
        )
        .map_err(draw_err)?;
        c.draw_series(LineSeries::new(
            r.days
                .iter()
                .enumerate()
                .map(|(i, d)| (i as f64, d.2 as i32)),
            orange.stroke_width(2),
        ))
        .map_err(draw_err)?
        .label("closed")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], orange.stroke_width(2)));
        c.draw_series(
            r.days
                .iter()
                .enumerate()
                .map(|(i, d)| Circle::new((i as f64, d.2 as i32), 3, orange.filled())),
        )
        .map_err(draw_err)?;
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(draw_err)?;

        let teams: Vec<(String, f64)> = r
            .by_team
            .iter()
            .filter(|(_, f)| f.resolve.count > 0)
            .map(|(t, f)| {
                (
                    t.as_ref().map_or("(none)".to_string(), |t| t.to_string()),
                    f.resolve.median.num_seconds() as f64 / 3600.0,
                )
            })
            .collect();
        let max_h = teams.iter().map(|t| t.1).fold(0.0f64, f64::max).max(1.0) * 1.15;
        let k = teams.len().max(1);
        let mut c = ChartBuilder::on(&bottom)
            .caption(
                "Median time to resolve per team (hours)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(44)
            .build_cartesian_2d(-0.5f64..(k as f64 - 0.5), 0f64..max_h)
            .map_err(draw_err)?;
        c.configure_mesh()
            .disable_x_mesh()
            .x_desc("team")
            .y_desc("hours")
            .x_labels(k)
            .x_label_formatter(&|x| {
                let i = x.round() as i64;
                if (x - i as f64).abs() < 0.01 {
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| teams.get(i))
                        .map(|t| t.0.clone())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(draw_err)?;
        let green = RGBColor(44, 160, 44);
        c.draw_series(teams.iter().enumerate().map(|(i, (_, hours))| {
            let x = i as f64;
            Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *hours)], green.filled())
        }))
        .map_err(draw_err)?;
        if teams.is_empty() {
            c.draw_series(std::iter::once(Text::new(
                "nothing resolved in this period",
                (-0.3, max_h / 2.0),
                ("sans-serif", 16),
            )))
            .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&rgb)?;
    }
    Ok(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32, m: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap()
    }

    fn team(s: &str) -> Option<TeamName> {
        Some(TeamName::parse(s).unwrap())
    }

    #[test]
    fn stats_are_nearest_rank() {
        let m = |x: i64| Duration::minutes(x);
        let s = Stats::of(vec![m(10), m(40), m(20), m(30)]);
        assert_eq!(s.count, 4);
        assert_eq!(s.mean, m(25));
        // ceil(0.5·4) = 2nd smallest; ceil(0.9·4) = 4th.
        assert_eq!(s.median, m(20));
        assert_eq!(s.p90, m(40));
        let s = Stats::of((1..=10).map(m).collect());
        assert_eq!((s.median, s.p90), (m(5), m(9)));
        assert_eq!(Stats::of(vec![]), Stats::default());
    }

    #[test]
    fn rows_read_the_first_take_and_resolve() {
        let mut t = crate::domain::Ticket {
            id: crate::domain::TicketId::new("OPS", 1),
            title: "x".into(),
            description: None,
            priority: Priority::P2,
            state: crate::domain::TicketState::Closed,
            team: team("backend"),
            assignee: None,
            opened_by: crate::domain::UserName::parse("olivia").unwrap(),
            source: crate::domain::Source::Console,
            channel: crate::domain::ChannelName::parse("ops").unwrap(),
            created_at: at(2, 9, 0),
            updated_at: at(2, 9, 0),
            resolution: Some("ok".into()),
            timeline_len: 0,
            alerts: None,
            customer: None,
            sla: None,
        };
        t.timeline_len = 5;
        let e = |at, kind| EntryLite { at, kind };
        let row = Row::of(
            &t,
            [
                e(at(2, 9, 0), EntryKind::Opened),
                e(at(2, 9, 30), EntryKind::Breached),
                e(at(2, 9, 40), EntryKind::Taken),
                e(at(2, 11, 0), EntryKind::Resolved),
                e(at(2, 12, 0), EntryKind::Rejected),
                e(at(2, 13, 0), EntryKind::Resolved),
                e(at(2, 14, 0), EntryKind::Verified),
            ],
        );
        assert_eq!(row.acknowledged, Some(at(2, 9, 40)));
        assert_eq!(row.resolved, Some(at(2, 11, 0)));
        assert_eq!(row.closed, vec![at(2, 14, 0)]);
        assert_eq!(row.breaches, vec![at(2, 9, 30)]);
    }
}
