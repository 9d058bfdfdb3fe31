//! On-call rotations: who is on call for a team at an instant, from the
//! rotation in `bot.toml` (members in order, a daily or weekly period, a
//! handoff time in a time zone) and the overrides set with `/oncall set`.
//! Pure: the instant is always passed in.
//!
//! Handoffs are at the handoff time *local* to the rotation's time zone, so a
//! shift that spans a daylight-saving change is an hour shorter or longer in
//! UTC. A handoff time that does not exist on a spring-forward day (02:30 in
//! Europe/Berlin) happens at the first instant after the gap; one that exists
//! twice on a fall-back day happens at the first of the two.

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{TeamName, Timestamp, UserName};

/// How long one person's shift lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Period {
    Daily,
    Weekly,
}

impl Period {
    fn days(self) -> i64 {
        match self {
            Period::Daily => 1,
            Period::Weekly => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A team's rotation, validated (at least one member, a known time zone).
#[derive(Clone, Debug, PartialEq)]
pub struct Rotation {
    pub team: TeamName,
    pub members: Vec<UserName>,
    pub period: Period,
    pub handoff: NaiveTime,
    pub tz: Tz,
    /// The local date of the first member's first shift (a weekly rotation
    /// hands off on this date's weekday).
    pub start: NaiveDate,
    /// Whether a new override may overlap one already set.
    pub overlapping_overrides: bool,
}

/// One person's turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shift {
    /// Shifts since the rotation's start (negative before it).
    pub index: i64,
    pub user: UserName,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Someone stands in for the rotation from `from` until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub user: UserName,
    pub from: Timestamp,
    pub until: Timestamp,
    pub by: UserName,
    pub at: Timestamp,
}

impl Override {
    pub fn covers(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.until
    }

    pub fn overlaps(&self, from: Timestamp, until: Timestamp) -> bool {
        self.from < until && from < self.until
    }
}

/// The UTC instant of a local wall-clock time (see the module's note on gaps
/// and repeats).
pub fn local_instant(tz: Tz, naive: NaiveDateTime) -> Timestamp {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // In a spring-forward gap: the first whole minute after it.
            let mut probe = naive;
            for _ in 0..240 {
                let Some(next) = probe.checked_add_signed(Duration::minutes(1)) else {
                    break;
                };
                probe = next;
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&naive)
        }
    }
}

impl Rotation {
    /// Who holds shift `n`.
    pub fn member(&self, n: i64) -> Option<&UserName> {
        let len = self.members.len() as i64;
        if len == 0 {
            return None;
        }
        self.members.get(n.rem_euclid(len) as usize)
    }

    /// The instant shift `n` starts.
    pub fn shift_start(&self, n: i64) -> Timestamp {
        // Checked: far shifts stop at the calendar's ends instead of panicking.
        let days = n.saturating_mul(self.period.days());
        let date = Duration::try_days(days)
            .and_then(|d| self.start.checked_add_signed(d))
            .unwrap_or(if days < 0 {
                NaiveDate::MIN
            } else {
                NaiveDate::MAX
            });
        local_instant(self.tz, date.and_time(self.handoff))
    }

    fn shift(&self, n: i64) -> Option<Shift> {
        Some(Shift {
            index: n,
            user: self.member(n)?.clone(),
            start: self.shift_start(n),
            end: self.shift_start(n + 1),
        })
    }

    /// The rotation's shift at `t` (overrides aside).
    pub fn shift_at(&self, t: Timestamp) -> Option<Shift> {
        let local = t.with_timezone(&self.tz).naive_local();
        let mut day = local.date();
        if local.time() < self.handoff {
            day = day.pred_opt().unwrap_or(day);
        }
        let mut n = (day - self.start).num_days().div_euclid(self.period.days());
        // The local arithmetic is exact but for gap days; settle on the
        // shift whose UTC bounds hold `t`.
        while self.shift_start(n) > t {
            n -= 1;
        }
        while self.shift_start(n + 1) <= t {
            n += 1;
        }
        self.shift(n)
    }

    /// The shift after the one at `t`.
    pub fn next_shift(&self, t: Timestamp) -> Option<Shift> {
        let cur = self.shift_at(t)?;
        self.shift(cur.index + 1)
    }
}

/// Who is on call at `t`, and the override that put them there: the most
/// recently set override covering `t`, else the rotation.
pub fn on_call<'a>(
    rotation: &Rotation,
    overrides: &'a [Override],
    t: Timestamp,
) -> Option<(UserName, Option<&'a Override>)> {
    if let Some(o) = overrides
        .iter()
        .filter(|o| o.covers(t))
        .max_by_key(|o| o.at)
    {
        return Some((o.user.clone(), Some(o)));
    }
    rotation.shift_at(t).map(|s| (s.user, None))
}

/// When the person on call at `t` stops being on call (the next change:
/// a shift ends, an override starts or ends), and who comes next.
pub fn next_change(
    rotation: &Rotation,
    overrides: &[Override],
    t: Timestamp,
) -> Option<(Timestamp, UserName)> {
    let (now_user, _) = on_call(rotation, overrides, t)?;
    let mut at = t;
    // A few changes at most: shifts and override bounds.
    for _ in 0..64 {
        let shift_end = rotation.shift_at(at)?.end;
        let next = overrides
            .iter()
            .flat_map(|o| [o.from, o.until])
            .filter(|x| *x > at)
            .chain(std::iter::once(shift_end))
            .min()?;
        let (who, _) = on_call(rotation, overrides, next)?;
        if who != now_user {
            return Some((next, who));
        }
        at = next;
    }
    None
}

/// Overrides still in force or to come at `now` (ended ones are dropped).
pub fn live(overrides: &[Override], now: Timestamp) -> Vec<Override> {
    overrides
        .iter()
        .filter(|o| o.until > now)
        .cloned()
        .collect()
}
