//! The engine's on-call rules: `/oncall`, `/oncall set`, assigning to a team
//! (the rotations themselves are `domain::rotation`).

use chrono::{Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::domain::org::AssignPolicy;
pub use crate::domain::rotation::{
    live, local_instant, next_change, on_call, Override, Period, Rotation, Shift,
};
use crate::domain::{Actor, ChannelName};
use crate::domain::{TeamName, Timestamp, UserName};
use crate::engine::context::{Cx, Out};
use crate::engine::effect::{Decision, Reply, Write};
use crate::engine::messages;
use crate::engine::messages::oncall as words;
use crate::engine::tickets::{self, Action};
use crate::error::{EngineError, UserError};

/// The longest an override may last.
pub const MAX_OVERRIDE_DAYS: i64 = 90;

/// Reads `until:` as an instant: RFC 3339, `YYYY-MM-DD HH:MM` or
/// `YYYY-MM-DDTHH:MM` in the rotation's time zone, or a duration from now
/// (`8h`, `2d`).
pub fn parse_until(raw: &str, tz: Tz, now: Timestamp) -> Result<Timestamp, UserError> {
    let s = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(local_instant(tz, n));
        }
    }
    if let Ok(d) = humantime::parse_duration(s) {
        // Bounded where it enters: a duration of a million years is no
        // instant at all (and overflows the calendar).
        let within = Duration::try_days(MAX_OVERRIDE_DAYS)
            .and_then(|max| Duration::from_std(d).ok().filter(|d| *d <= max))
            .and_then(|d| now.checked_add_signed(d));
        return within.ok_or_else(|| too_far(s));
    }
    Err(UserError::new(words::bad_until(tz, s)))
}

/// The refusal of an `until` beyond what an override may last.
fn too_far(raw: &str) -> UserError {
    UserError::new(words::until_too_far(MAX_OVERRIDE_DAYS, raw))
}

pub(crate) fn rotation<'a>(cx: &Cx<'a>, team: &TeamName) -> Result<&'a Rotation, UserError> {
    let org = &cx.org;
    if org.team(team).is_none() {
        return Err(tickets::unknown_team(team, org));
    }
    cx.config.policy.oncall.get(team).ok_or_else(|| {
        let with: Vec<&str> = cx.config.policy.oncall.keys().map(|t| t.as_str()).collect();
        UserError::new(words::no_rotation_for(team, &with))
    })
}

/// `/ticket assign team:…`: the team, its on-call person, or its
/// least-loaded member, as the team's `assign` says.
pub(crate) fn assign_to_team(cx: &Cx<'_>, team: &TeamName) -> Result<Action, EngineError> {
    let org = &cx.org;
    let Some(tm) = org.team(team) else {
        return Err(tickets::unknown_team(team, org).into());
    };
    match tm.assign {
        AssignPolicy::Team => Ok(Action::AssignTeam(team.clone())),
        AssignPolicy::Oncall => {
            let rot = rotation(cx, team)?;
            let overrides = cx.view.overrides(team)?;
            match on_call(rot, &overrides, cx.now) {
                Some((user, _)) => Ok(Action::AssignUser {
                    team: team.clone(),
                    user,
                }),
                None => Ok(Action::AssignTeam(team.clone())),
            }
        }
        AssignPolicy::LeastLoaded => {
            let mut best: Option<(u64, &UserName)> = None;
            for m in &tm.members {
                let load = cx.view.load(m)?;
                if best.is_none_or(|(b, _)| load < b) {
                    best = Some((load, m));
                }
            }
            Ok(match best {
                Some((_, user)) => Action::AssignUser {
                    team: team.clone(),
                    user: user.clone(),
                },
                None => Action::AssignTeam(team.clone()),
            })
        }
    }
}

/// The on-call person of a team with a rotation, at `now`.
pub(crate) fn on_call_now(cx: &Cx<'_>, team: &TeamName) -> Result<Option<UserName>, EngineError> {
    let Some(rot) = cx.config.policy.oncall.get(team) else {
        return Ok(None);
    };
    let overrides = cx.view.overrides(team)?;
    Ok(on_call(rot, &overrides, cx.now).map(|(u, _)| u))
}

/// `/oncall [team:…]`: who is on call now and next.
pub(crate) fn oncall_show(cx: &Cx<'_>, team: Option<&TeamName>) -> Result<Reply, EngineError> {
    let teams: Vec<&Rotation> = match team {
        Some(t) => vec![rotation(cx, t)?],
        None => cx.config.policy.oncall.values().collect(),
    };
    if teams.is_empty() {
        return Ok(Reply::private(words::no_rotation()));
    }
    let mut shown = Vec::new();
    for rot in teams {
        let overrides = cx.view.overrides(&rot.team)?;
        shown.push((rot, overrides));
    }
    let mut lines = Vec::new();
    for (rot, overrides) in &shown {
        let Some((who, by)) = on_call(rot, overrides, cx.now) else {
            continue;
        };
        lines.push((
            *rot,
            who,
            by.map(|o| o.by.clone()),
            next_change(rot, overrides, cx.now),
            live(overrides, cx.now),
        ));
    }
    let teams: Vec<words::ShowTeam<'_>> = lines
        .iter()
        .map(|(rotation, who, by, next, live)| words::ShowTeam {
            rotation,
            who,
            override_by: by.as_ref(),
            next: next.as_ref().map(|(at, u)| (*at, u)),
            live,
        })
        .collect();
    Ok(Reply::private(words::show(&teams)))
}

/// `/oncall set team:… user:… until:…`: an override from now.
pub(crate) fn oncall_set(
    cx: &Cx<'_>,
    actor: &Actor,
    team: &TeamName,
    user: &UserName,
    until: &str,
) -> Result<Decision, EngineError> {
    let org = &cx.org;
    let rot = rotation(cx, team)?.clone();
    let Some(tm) = org.team(team) else {
        return Err(tickets::unknown_team(team, org).into());
    };
    if !org.is_operator(&actor.name) && !tm.members.contains(&actor.name) {
        return Err(UserError::new(words::set_refused(team, &org.operators, &tm.members)).into());
    }
    if !tm.members.contains(user) {
        return Err(UserError::new(words::not_a_member(team, user, &tm.members)).into());
    }
    let until_raw = until;
    let until = parse_until(until, rot.tz, cx.now)?;
    if until <= cx.now {
        return Err(UserError::new(words::until_not_future(until)).into());
    }
    if Duration::try_days(MAX_OVERRIDE_DAYS).is_none_or(|max| until - cx.now > max) {
        return Err(too_far(until_raw).into());
    }
    let mut overrides = live(&cx.view.overrides(team)?, cx.now);
    if !rot.overlapping_overrides {
        if let Some(o) = overrides.iter().find(|o| o.overlaps(cx.now, until)) {
            return Err(UserError::new(words::overlapping(team, o)).into());
        }
    }
    overrides.push(Override {
        user: user.clone(),
        from: cx.now,
        until,
        by: actor.name.clone(),
        at: cx.now,
    });
    let mut out = Out::new();
    let body = messages::oncall_override_set(team, user, until, &actor.name);
    let channel: ChannelName = tm.channel.clone();
    out.post(&channel, None, body);
    out.writes.push(Write::Overrides(team.clone(), overrides));
    Ok(Decision {
        reply: Some(Reply::private(words::set_reply(team, user, until))),
        accepted: None,
        writes: out.writes,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;

    fn u(s: &str) -> UserName {
        UserName::parse(s).unwrap()
    }

    fn berlin(period: Period) -> Rotation {
        Rotation {
            team: TeamName::parse("backend").unwrap(),
            members: vec![u("bob"), u("bella"), u("bert")],
            period,
            handoff: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            tz: chrono_tz::Europe::Berlin,
            start: NaiveDate::from_ymd_opt(2026, 3, 23).unwrap(),
            overlapping_overrides: false,
        }
    }

    fn utc(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// 2026-03-29: Berlin springs forward (CET → CEST). The 09:00 handoff is
    /// 08:00 UTC before and 07:00 UTC from that day on; the shift that
    /// spans the change lasts 23 hours.
    #[test]
    fn daily_handoffs_stay_at_nine_local_across_spring_forward() {
        let r = berlin(Period::Daily);
        // 2026-03-28 09:00 CET = 08:00 UTC: shift 5 (bob, bella, bert, ...).
        let s = r.shift_at(utc("2026-03-28T08:00:00Z")).unwrap();
        assert_eq!((s.index, s.user.as_str()), (5, "bert"));
        assert_eq!(s.start, utc("2026-03-28T08:00:00Z"));
        assert_eq!(s.end, utc("2026-03-29T07:00:00Z"));
        assert_eq!(s.end - s.start, Duration::hours(23));
        // One second before the handoff on the change day: still bert.
        let s = r.shift_at(utc("2026-03-29T06:59:59Z")).unwrap();
        assert_eq!(s.user.as_str(), "bert");
        // At 09:00 CEST = 07:00 UTC: bob.
        let s = r.shift_at(utc("2026-03-29T07:00:00Z")).unwrap();
        assert_eq!((s.index, s.user.as_str()), (6, "bob"));
        assert_eq!(s.end - s.start, Duration::hours(24));
        // 08:00 UTC was the old handoff instant: nothing happens then.
        assert_eq!(
            r.shift_at(utc("2026-03-29T08:30:00Z"))
                .unwrap()
                .user
                .as_str(),
            "bob"
        );
    }

    /// 2026-10-25: Berlin falls back (CEST → CET); the shift spanning it
    /// lasts 25 hours and the handoff moves from 07:00 to 08:00 UTC.
    #[test]
    fn weekly_handoffs_stay_at_nine_local_across_fall_back() {
        let r = berlin(Period::Weekly);
        // Weekly from Monday 2026-03-23. The week of 2026-10-19 is shift 30.
        let before = r.shift_at(utc("2026-10-20T12:00:00Z")).unwrap();
        assert_eq!(before.index, 30);
        assert_eq!(before.user.as_str(), "bob");
        assert_eq!(before.start, utc("2026-10-19T07:00:00Z"));
        assert_eq!(before.end, utc("2026-10-26T08:00:00Z"));
        assert_eq!(before.end - before.start, Duration::hours(7 * 24 + 1));
        assert_eq!(
            r.shift_at(utc("2026-10-26T07:59:59Z"))
                .unwrap()
                .user
                .as_str(),
            "bob"
        );
        let after = r.shift_at(utc("2026-10-26T08:00:00Z")).unwrap();
        assert_eq!((after.index, after.user.as_str()), (31, "bella"));
        assert_eq!(r.next_shift(before.start).unwrap(), after);
    }

    #[test]
    fn a_handoff_inside_the_gap_happens_right_after_it() {
        let mut r = berlin(Period::Daily);
        r.handoff = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        // 02:30 does not exist on 2026-03-29 in Berlin: 03:00 CEST = 01:00 UTC.
        let s = r.shift_at(utc("2026-03-29T01:00:00Z")).unwrap();
        assert_eq!(s.start, utc("2026-03-29T01:00:00Z"));
        assert_eq!(s.index, 6);
        let prev = r.shift_at(utc("2026-03-29T00:59:00Z")).unwrap();
        assert_eq!(prev.index, 5);
    }

    #[test]
    fn before_the_start_the_rotation_runs_backwards() {
        let r = berlin(Period::Daily);
        let s = r.shift_at(utc("2026-03-22T12:00:00Z")).unwrap();
        assert_eq!((s.index, s.user.as_str()), (-1, "bert"));
    }

    #[test]
    fn the_newest_override_wins_and_next_change_sees_it() {
        let r = berlin(Period::Daily);
        let t0 = utc("2026-03-24T10:00:00Z"); // bella's shift (index 1)
        assert_eq!(on_call(&r, &[], t0).unwrap().0.as_str(), "bella");
        let o1 = Override {
            user: u("bert"),
            from: t0,
            until: utc("2026-03-24T14:00:00Z"),
            by: u("bella"),
            at: t0,
        };
        let o2 = Override {
            user: u("bob"),
            from: utc("2026-03-24T12:00:00Z"),
            until: utc("2026-03-24T13:00:00Z"),
            by: u("olivia"),
            at: t0 + Duration::minutes(1),
        };
        let all = vec![o1.clone(), o2];
        let (who, by) = on_call(&r, &all, utc("2026-03-24T12:30:00Z")).unwrap();
        assert_eq!(who.as_str(), "bob");
        assert_eq!(by.unwrap().by.as_str(), "olivia");
        assert_eq!(
            on_call(&r, &all, utc("2026-03-24T13:30:00Z"))
                .unwrap()
                .0
                .as_str(),
            "bert"
        );
        // From 10:00, bert's override: next is bob at 12:00.
        assert_eq!(
            next_change(&r, &all, t0),
            Some((utc("2026-03-24T12:00:00Z"), u("bob")))
        );
        // After the overrides end, bella is back until her shift ends at
        // 09:00 CET (08:00 UTC) on the 25th, then bert.
        assert_eq!(
            next_change(&r, &all, utc("2026-03-24T14:00:00Z")),
            Some((utc("2026-03-25T08:00:00Z"), u("bert")))
        );
        assert!(o1.overlaps(utc("2026-03-24T13:59:00Z"), utc("2026-03-24T18:00:00Z")));
        assert!(!o1.overlaps(utc("2026-03-24T14:00:00Z"), utc("2026-03-24T18:00:00Z")));
    }
}
