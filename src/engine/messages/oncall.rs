//! The words of `/oncall show` and `/oncall set`: the answers and the
//! refusals (`engine::oncall` decides, these say it).

use chrono_tz::Tz;

use crate::domain::policy::{clock, CLOCK};
use crate::domain::rich::{clip_plain, Rich};
use crate::domain::rotation::{Override, Rotation};
use crate::domain::{TeamName, Timestamp, UserName};

/// `/oncall show` when the config has no rotation at all.
pub fn no_rotation() -> Rich {
    Rich::from("No team has an on-call rotation; add [oncall.TEAM] to bot.toml.")
}

/// One team of `/oncall show`: who is on call now (and by whose override),
/// the next change, and the overrides still to end.
pub struct ShowTeam<'a> {
    pub rotation: &'a Rotation,
    pub who: &'a UserName,
    pub override_by: Option<&'a UserName>,
    pub next: Option<(Timestamp, &'a UserName)>,
    pub live: &'a [Override],
}

/// `/oncall show`: one paragraph per team, in the order given.
pub fn show(teams: &[ShowTeam<'_>]) -> Rich {
    let mut body = Rich::new();
    for (i, t) in teams.iter().enumerate() {
        let rot = t.rotation;
        if i > 0 {
            body = body.text("\n");
        }
        let mut line = format!("{}: {} is on call now", rot.team, t.who);
        if let Some(by) = t.override_by {
            line.push_str(&format!(" (override set by {by})"));
        }
        match t.next {
            Some((at, next)) => {
                body = body
                    .text(format!("{line} until "))
                    .relative(&at, CLOCK)
                    .text(format!(
                        " ({}); next: {next}",
                        at.with_timezone(&rot.tz).format("%a %H:%M %Z")
                    ));
            }
            None => body = body.text(format!("{line}; nobody else takes over")),
        }
        body = body.text(format!(
            ". Rotation: {} ({}, handoff {} {}).",
            rot.members
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(" → "),
            rot.period.as_str(),
            rot.handoff.format("%H:%M"),
            rot.tz
        ));
        for o in t.live {
            body = body
                .text(format!("\n  override: {} from ", o.user))
                .time(&o.from, CLOCK)
                .text(" until ")
                .relative(&o.until, CLOCK)
                .text(format!(" (by {})", o.by));
        }
    }
    body
}

/// The answer to `/oncall set`.
pub fn set_reply(team: &TeamName, user: &UserName, until: Timestamp) -> Rich {
    Rich::new()
        .text(format!("{user} is on call for {team} until "))
        .relative(&until, CLOCK)
        .text(".")
}

/// `until:` that reads as no time.
pub fn bad_until(tz: Tz, raw: &str) -> String {
    format!(
        "`until` must be a time such as \"2026-03-30 09:00\" (in {tz}), 2026-03-30T09:00:00Z, or a duration such as 8h; got `{}`",
        clip_plain(raw, 40)
    )
}

/// `until:` beyond what an override may last.
pub fn until_too_far(max_days: i64, raw: &str) -> String {
    format!(
        "`until` must be within {max_days} days from now (an override lasts at most {max_days} days; change the rotation in bot.toml for longer); got `{}`",
        clip_plain(raw, 40)
    )
}

/// `until:` in the past.
pub fn until_not_future(until: Timestamp) -> String {
    format!(
        "`until` is {}, which is not in the future; give a later time",
        clock(until)
    )
}

/// A team named that has no rotation; `with` the teams that have one.
pub fn no_rotation_for(team: &TeamName, with: &[&str]) -> String {
    format!(
        "team {team} has no on-call rotation; teams with one: {}",
        if with.is_empty() {
            "none (add [oncall.TEAM] to bot.toml)".to_string()
        } else {
            with.join(", ")
        }
    )
}

/// Someone neither operator nor member of the team sets who is on call.
pub fn set_refused(team: &TeamName, operators: &[UserName], members: &[UserName]) -> String {
    format!(
        "only operators ({}) or members of {team} ({}) may set who is on call for {team}",
        names(operators),
        names(members)
    )
}

/// The person named is not of the team.
pub fn not_a_member(team: &TeamName, user: &UserName, members: &[UserName]) -> String {
    format!(
        "{user} is not a member of {team}; its members are: {}",
        names(members)
    )
}

/// An override that would overlap one already set.
pub fn overlapping(team: &TeamName, o: &Override) -> String {
    format!(
        "{team} already has an override for {} from {} until {}; overrides of {team} may not overlap (oncall.{team}.overlapping_overrides = false)",
        o.user,
        clock(o.from),
        clock(o.until)
    )
}

fn names(v: &[UserName]) -> String {
    v.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    //! The words of `/oncall`, as snapshots (plain: what the console shows).

    use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};

    use super::*;
    use crate::domain::rotation::Period;

    fn u(s: &str) -> UserName {
        UserName::parse(s).unwrap()
    }

    #[test]
    fn oncall_words() {
        let team = TeamName::parse("backend").unwrap();
        let rot = Rotation {
            team: team.clone(),
            members: vec![u("bob"), u("bella")],
            period: Period::Weekly,
            handoff: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            tz: chrono_tz::Europe::Berlin,
            start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            overlapping_overrides: false,
        };
        let at = |d, h| Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap();
        let o = Override {
            user: u("bella"),
            from: at(3, 10),
            until: at(4, 18),
            by: u("olivia"),
            at: at(3, 10),
        };
        let (bob, bella, olivia) = (u("bob"), u("bella"), u("olivia"));
        let live = [o.clone()];
        let shown = show(&[
            ShowTeam {
                rotation: &rot,
                who: &bella,
                override_by: Some(&olivia),
                next: Some((at(4, 18), &bob)),
                live: &live,
            },
            ShowTeam {
                rotation: &rot,
                who: &bob,
                override_by: None,
                next: None,
                live: &[],
            },
        ]);
        let lines = [
            no_rotation().to_plain(),
            shown.to_plain(),
            set_reply(&team, &bella, at(4, 18)).to_plain(),
            bad_until(rot.tz, "next tuesday-ish, maybe, when the moon is full"),
            until_too_far(90, "2y"),
            until_not_future(at(2, 9)),
            no_rotation_for(&team, &[]),
            no_rotation_for(&team, &["infra", "qa"]),
            set_refused(
                &team,
                std::slice::from_ref(&olivia),
                &[bob.clone(), bella.clone()],
            ),
            not_a_member(&team, &olivia, &[bob, bella]),
            overlapping(&team, &o),
        ];
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("opsbot__engine__messages__oncall_words", lines.join("\n---\n"));
        });
    }
}
