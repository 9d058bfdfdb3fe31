//! The ticket state machine: which moves are allowed from which state, who may
//! make them, and what the ticket becomes. Pure: no store, no clock.
//!
//! ```text
//!  open ──assign──> assigned ──take──> in_progress ──resolve──> resolved ──verify──> closed
//!   │  ──take (operator)──────────────────^   │                   │  ──qa──> qa ──verify──^
//!   └──resolve (operator)──> resolved         └─assign─> assigned  └─reject─> back to the team
//!                                                                    closed ──reopen──> back to the team
//! ```
//!
//! "Back to the team" is `assigned` (the assignee kept, to be taken again) when
//! the ticket has a team, else `open`.

use crate::domain::org::Org;
use crate::domain::{EntryKind, TeamName, Ticket, TicketState, UserName};
use crate::error::UserError;

/// A move on an existing ticket, with its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    AssignTeam(TeamName),
    /// Assign one person; `team` is the team they act for.
    AssignUser {
        team: TeamName,
        user: UserName,
    },
    Take,
    Resolve {
        note: String,
    },
    SendToQa,
    Verify,
    Reject {
        reason: String,
    },
    Reopen {
        reason: String,
    },
    Comment {
        text: String,
    },
}

/// The kind of a move, without its data. Its name is the command word, as
/// in `/ticket resolve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum Kind {
    Assign,
    Take,
    Resolve,
    Qa,
    Verify,
    Reject,
    Reopen,
    Comment,
}

impl Kind {
    pub const ALL: &'static [Kind] = <Kind as strum::VariantArray>::VARIANTS;

    /// The command word, as in `/ticket resolve`.
    pub fn word(self) -> &'static str {
        self.into()
    }
}

impl Action {
    pub fn kind(&self) -> Kind {
        match self {
            Action::AssignTeam(_) | Action::AssignUser { .. } => Kind::Assign,
            Action::Take => Kind::Take,
            Action::Resolve { .. } => Kind::Resolve,
            Action::SendToQa => Kind::Qa,
            Action::Verify => Kind::Verify,
            Action::Reject { .. } => Kind::Reject,
            Action::Reopen { .. } => Kind::Reopen,
            Action::Comment { .. } => Kind::Comment,
        }
    }
}

/// Who may make a move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Party {
    Anyone,
    Operators,
    /// Members of the ticket's team.
    Team,
    /// Members of the team the ticket is being assigned into.
    TargetTeam,
    QaTeam,
}

/// The moves allowed from a state, each with who may make it.
fn rules(state: TicketState) -> &'static [(Kind, &'static [Party])] {
    use Kind::*;
    use Party::*;
    match state {
        TicketState::Open => &[
            (Assign, &[Operators]),
            (Take, &[Operators]),
            (Resolve, &[Operators]),
            (Comment, &[Anyone]),
        ],
        TicketState::Assigned => &[
            (Assign, &[Operators, Team, TargetTeam]),
            (Take, &[Team]),
            (Resolve, &[Operators]),
            (Comment, &[Anyone]),
        ],
        TicketState::InProgress => &[
            (Assign, &[Operators, Team, TargetTeam]),
            (Take, &[Team]),
            (Resolve, &[Operators, Team]),
            (Comment, &[Anyone]),
        ],
        TicketState::Resolved => &[
            (Qa, &[Operators]),
            (Verify, &[Operators]),
            (Reject, &[Operators]),
            (Comment, &[Anyone]),
        ],
        TicketState::Qa => &[
            (Verify, &[QaTeam]),
            (Reject, &[QaTeam]),
            (Comment, &[Anyone]),
        ],
        TicketState::Closed => &[(Reopen, &[Operators, Team]), (Comment, &[Anyone])],
    }
}

/// The moves allowed from `state` ([`Kind::word`] gives the command words).
pub fn allowed_from(state: TicketState) -> Vec<Kind> {
    rules(state).iter().map(|(k, _)| *k).collect()
}

/// The result of a move: the ticket as it becomes (timeline untouched) and
/// the entry that records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub ticket: Ticket,
    pub entry: EntryKind,
    pub text: String,
    pub from: TicketState,
    pub to: TicketState,
}

fn names(v: &[UserName]) -> String {
    v.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", ")
}

/// Describes the parties in words, naming people from the configuration.
fn describe(parties: &[Party], ticket: &Ticket, target: Option<&TeamName>, org: &Org) -> String {
    let mut out = Vec::new();
    for p in parties {
        let s = match p {
            Party::Anyone => "anyone".to_string(),
            Party::Operators => format!("operators ({})", names(&org.operators)),
            Party::Team => match ticket.team.as_ref().and_then(|t| org.team(t)) {
                Some(t) => format!("members of {} ({})", t.name, names(&t.members)),
                None => continue,
            },
            Party::TargetTeam => match target.and_then(|t| org.team(t)) {
                Some(t) if Some(&t.name) != ticket.team.as_ref() => {
                    format!("members of {} ({})", t.name, names(&t.members))
                }
                _ => continue,
            },
            Party::QaTeam => match org.qa() {
                Some(t) => format!("QA ({})", names(&t.members)),
                None => "QA (no QA team is configured)".to_string(),
            },
        };
        out.push(s);
    }
    match out.len() {
        0 => "nobody".to_string(),
        1 => out.remove(0),
        _ => {
            let last = out.pop().unwrap_or_default();
            format!("{} or {}", out.join(", "), last)
        }
    }
}

/// Whether `user` could make a move of this kind on some ticket: whom the
/// rules let make it, in any state, a member of any team counting for the
/// ticket's team. What `/help` lists comes from here.
pub fn may_ever(kind: Kind, user: &UserName, org: &Org) -> bool {
    TicketState::ALL.iter().any(|st| {
        rules(*st)
            .iter()
            .filter(|(k, _)| *k == kind)
            .flat_map(|(_, parties)| parties.iter())
            .any(|p| match p {
                Party::Anyone => true,
                Party::Operators => org.is_operator(user),
                Party::Team | Party::TargetTeam => org.teams_of(user).next().is_some(),
                Party::QaTeam => org.is_qa(user),
            })
    })
}

fn holds(
    party: Party,
    actor: &UserName,
    ticket: &Ticket,
    target: Option<&TeamName>,
    org: &Org,
) -> bool {
    match party {
        Party::Anyone => true,
        Party::Operators => org.is_operator(actor),
        Party::Team => ticket
            .team
            .as_ref()
            .is_some_and(|t| org.is_member(actor, t)),
        Party::TargetTeam => target.is_some_and(|t| org.is_member(actor, t)),
        Party::QaTeam => org.is_qa(actor),
    }
}

/// Applies `action` by `actor` to `ticket`, or says why not (and what would be
/// allowed). Permissions come from `org`.
pub fn transition(
    ticket: &Ticket,
    action: &Action,
    actor: &UserName,
    org: &Org,
) -> Result<Transition, UserError> {
    apply(ticket, action, Some(actor), org)
}

/// A move made by the bot itself on monitoring's behalf (recovery resolves,
/// a refiring alert reopens): the states are checked, the roles are not.
pub fn system_transition(
    ticket: &Ticket,
    action: &Action,
    org: &Org,
) -> Result<Transition, UserError> {
    apply(ticket, action, None, org)
}

fn apply(
    ticket: &Ticket,
    action: &Action,
    actor: Option<&UserName>,
    org: &Org,
) -> Result<Transition, UserError> {
    let kind = action.kind();
    let from = ticket.state;
    let Some((_, parties)) = rules(from).iter().find(|(k, _)| *k == kind) else {
        return Err(UserError::new(format!(
            "cannot {} {}: it is `{}`; from `{}` you may: {}",
            kind.word(),
            ticket.id,
            from,
            from,
            allowed_from(from)
                .iter()
                .map(|k| k.word())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let target = match action {
        Action::AssignTeam(t) | Action::AssignUser { team: t, .. } => Some(t),
        _ => None,
    };
    let allowed = match actor {
        Some(actor) => parties
            .iter()
            .any(|p| holds(*p, actor, ticket, target, org)),
        None => true,
    };
    if !allowed {
        return Err(UserError::new(format!(
            "only {} may {} {} while it is `{}`",
            describe(parties, ticket, target, org),
            kind.word(),
            ticket.id,
            from
        )));
    }

    let mut t = ticket.clone();
    let back_to_team = |t: &mut Ticket| {
        if t.team.is_some() {
            t.state = TicketState::Assigned;
        } else {
            t.state = TicketState::Open;
            t.assignee = None;
        }
        t.resolution = None;
    };
    let (entry, text) = match action {
        Action::AssignTeam(team) => {
            if org.team(team).is_none() {
                return Err(unknown_team(team, org));
            }
            if t.state == TicketState::Assigned
                && t.team.as_ref() == Some(team)
                && t.assignee.is_none()
            {
                return Err(UserError::new(format!(
                    "{} is already assigned to {team}; to pick a person, give user:…",
                    t.id
                )));
            }
            t.team = Some(team.clone());
            t.assignee = None;
            t.state = TicketState::Assigned;
            (EntryKind::Assigned, format!("assigned to team {team}"))
        }
        Action::AssignUser { team, user } => {
            let Some(tm) = org.team(team) else {
                return Err(unknown_team(team, org));
            };
            if !tm.members.contains(user) {
                return Err(UserError::new(format!(
                    "{user} is not a member of {team}; its members are: {}",
                    names(&tm.members)
                )));
            }
            if t.state == TicketState::Assigned
                && t.team.as_ref() == Some(team)
                && t.assignee.as_ref() == Some(user)
            {
                return Err(UserError::new(format!(
                    "{} is already assigned to {user}",
                    t.id
                )));
            }
            t.team = Some(team.clone());
            t.assignee = Some(user.clone());
            t.state = TicketState::Assigned;
            (
                EntryKind::Assigned,
                format!("assigned to {user} of team {team}"),
            )
        }
        Action::Take => {
            let Some(actor) = actor else {
                return Err(UserError::new("only a person can take a ticket"));
            };
            if t.state == TicketState::InProgress && t.assignee.as_ref() == Some(actor) {
                return Err(UserError::new(format!(
                    "{} is already in progress with you",
                    t.id
                )));
            }
            t.assignee = Some(actor.clone());
            t.state = TicketState::InProgress;
            (EntryKind::Taken, format!("taken by {actor}"))
        }
        Action::Resolve { note } => {
            t.state = TicketState::Resolved;
            t.resolution = Some(note.clone());
            (EntryKind::Resolved, note.clone())
        }
        Action::SendToQa => {
            let Some(qa) = org.qa() else {
                return Err(UserError::new(
                    "no QA team is configured (set [roles] qa_team in bot.toml); verify the ticket instead",
                ));
            };
            t.state = TicketState::Qa;
            (EntryKind::SentToQa, format!("sent to QA ({})", qa.name))
        }
        Action::Verify => {
            t.state = TicketState::Closed;
            (EntryKind::Verified, "verified and closed".to_string())
        }
        Action::Reject { reason } => {
            back_to_team(&mut t);
            (EntryKind::Rejected, reason.clone())
        }
        Action::Reopen { reason } => {
            back_to_team(&mut t);
            (EntryKind::Reopened, reason.clone())
        }
        Action::Comment { text } => (EntryKind::Commented, text.clone()),
    };
    Ok(Transition {
        from,
        to: t.state,
        ticket: t,
        entry,
        text,
    })
}

pub(crate) fn unknown_team(team: &TeamName, org: &Org) -> UserError {
    UserError::new(format!(
        "there is no team `{team}`; known teams: {}",
        org.team_names()
    ))
}

/// The invariants every stored ticket satisfies.
pub fn check_invariants(t: &Ticket, org: &Org) -> Result<(), String> {
    let bad = |m: &str| Err(format!("{} in state {}: {m}", t.id, t.state));
    match t.state {
        TicketState::Open if t.team.is_some() || t.assignee.is_some() => {
            return bad("an open ticket has no team and no assignee")
        }
        TicketState::Assigned if t.team.is_none() => return bad("an assigned ticket has a team"),
        TicketState::InProgress if t.assignee.is_none() => {
            return bad("a ticket in progress has an assignee")
        }
        TicketState::Resolved | TicketState::Qa | TicketState::Closed if t.resolution.is_none() => {
            return bad("a resolved ticket has a resolution note")
        }
        _ => {}
    }
    if let (Some(team), Some(a)) = (&t.team, &t.assignee) {
        if !org.is_member(a, team) {
            return bad("the assignee belongs to the team");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::domain::{ChannelName, Priority, Source, TicketId};

    fn org() -> Org {
        let src = r#"
[roles]
operators = ["olivia"]
qa_team = "qa"
release_managers = ["rita"]
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[teams.infra]
channel = "infra"
members = ["ivan"]
[teams.qa]
channel = "qa"
members = ["quinn"]
"#;
        Config::parse(Path::new("bot.toml"), src)
            .unwrap()
            .config
            .org
    }

    fn u(s: &str) -> UserName {
        UserName::parse(s).unwrap()
    }

    /// A ticket of backend's in `state`, assigned to bella where it has one.
    fn ticket_in(state: TicketState) -> Ticket {
        let now = chrono::Utc::now();
        let (team, assignee) = match state {
            TicketState::Open => (None, None),
            TicketState::Assigned => (Some("backend"), None),
            _ => (Some("backend"), Some("bella")),
        };
        Ticket {
            id: TicketId::new("OPS", 1),
            title: "t".into(),
            description: None,
            priority: Priority::P3,
            state,
            team: team.map(|t| TeamName::parse(t).unwrap()),
            assignee: assignee.map(u),
            opened_by: u("olivia"),
            source: Source::Console,
            channel: ChannelName::parse("ops").unwrap(),
            created_at: now,
            updated_at: now,
            resolution: matches!(
                state,
                TicketState::Resolved | TicketState::Qa | TicketState::Closed
            )
            .then(|| "fixed".to_string()),
            timeline_len: 1,
            alerts: None,
            customer: None,
            sla: None,
        }
    }

    fn action(kind: Kind) -> Action {
        match kind {
            Kind::Assign => Action::AssignTeam(TeamName::parse("infra").unwrap()),
            Kind::Take => Action::Take,
            Kind::Resolve => Action::Resolve { note: "n".into() },
            Kind::Qa => Action::SendToQa,
            Kind::Verify => Action::Verify,
            Kind::Reject => Action::Reject { reason: "r".into() },
            Kind::Reopen => Action::Reopen { reason: "r".into() },
            Kind::Comment => Action::Comment { text: "c".into() },
        }
    }

    /// The whole table: from each state, each move, who may make it, and the
    /// state it leads to. Everything not listed is refused.
    #[test]
    fn every_transition_per_role() {
        use Kind::*;
        use TicketState::*;
        let everyone = ["olivia", "bob", "bella", "ivan", "quinn", "rita", "zed"];
        // (from, move, who may, to). Assign moves to team infra, so ivan
        // (infra) may pull it where the table says so.
        let allowed: &[(TicketState, Kind, &[&str], TicketState)] = &[
            (Open, Assign, &["olivia"], Assigned),
            (Open, Take, &["olivia"], InProgress),
            (Open, Resolve, &["olivia"], Resolved),
            (Open, Comment, &everyone, Open),
            (
                Assigned,
                Assign,
                &["olivia", "bob", "bella", "ivan"],
                Assigned,
            ),
            (Assigned, Take, &["bob", "bella"], InProgress),
            (Assigned, Resolve, &["olivia"], Resolved),
            (Assigned, Comment, &everyone, Assigned),
            (
                InProgress,
                Assign,
                &["olivia", "bob", "bella", "ivan"],
                Assigned,
            ),
            // bella already has it: only bob may take it over.
            (InProgress, Take, &["bob"], InProgress),
            (InProgress, Resolve, &["olivia", "bob", "bella"], Resolved),
            (InProgress, Comment, &everyone, InProgress),
            (Resolved, Kind::Qa, &["olivia"], TicketState::Qa),
            (Resolved, Verify, &["olivia"], Closed),
            (Resolved, Reject, &["olivia"], Assigned),
            (Resolved, Comment, &everyone, Resolved),
            (TicketState::Qa, Verify, &["quinn"], Closed),
            (TicketState::Qa, Reject, &["quinn"], Assigned),
            (TicketState::Qa, Comment, &everyone, TicketState::Qa),
            (Closed, Reopen, &["olivia", "bob", "bella"], Assigned),
            (Closed, Comment, &everyone, Closed),
        ];
        let org = org();
        let mut checked = 0;
        for &from in TicketState::ALL {
            let t = ticket_in(from);
            for &kind in Kind::ALL {
                let rule = allowed.iter().find(|(s, k, _, _)| *s == from && *k == kind);
                for who in everyone {
                    let got = transition(&t, &action(kind), &u(who), &org);
                    match rule {
                        Some((_, _, may, to)) if may.contains(&who) => {
                            let tr = got.unwrap_or_else(|e| {
                                panic!("{who} should {kind:?} from {from}: {e}")
                            });
                            assert_eq!(tr.to, *to, "{who} {kind:?} from {from}");
                            check_invariants(&tr.ticket, &org).unwrap();
                        }
                        Some(_) => {
                            let e = got.expect_err("refused").to_string();
                            assert!(
                                e.starts_with("only ") || e.contains("already"),
                                "{who} {kind:?} from {from}: {e}"
                            );
                        }
                        None => {
                            let e = got.expect_err("refused").to_string();
                            assert!(
                                e.contains(&format!("from `{from}` you may:")),
                                "{who} {kind:?} from {from}: {e}"
                            );
                        }
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 6 * 8 * 7);
    }

    #[test]
    fn refusals_name_who_may_and_what_is_allowed() {
        let org = org();
        let t = ticket_in(TicketState::InProgress);
        let e = transition(&t, &Action::Resolve { note: "x".into() }, &u("ivan"), &org)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "only operators (olivia) or members of backend (bob, bella) may resolve OPS-1 while it is `in_progress`"
        );
        let e = transition(
            &ticket_in(TicketState::Closed),
            &Action::Verify,
            &u("olivia"),
            &org,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "cannot verify OPS-1: it is `closed`; from `closed` you may: reopen, comment"
        );
        let e = transition(
            &ticket_in(TicketState::Qa),
            &Action::Verify,
            &u("olivia"),
            &org,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "only QA (quinn) may verify OPS-1 while it is `qa`");
    }

    #[test]
    fn reject_and_reopen_go_back_to_the_team_or_to_triage() {
        let org = org();
        let tr = transition(
            &ticket_in(TicketState::Qa),
            &Action::Reject {
                reason: "still broken".into(),
            },
            &u("quinn"),
            &org,
        )
        .unwrap();
        assert_eq!(tr.ticket.state, TicketState::Assigned);
        assert_eq!(tr.ticket.assignee, Some(u("bella")));
        assert_eq!(tr.ticket.resolution, None);

        // Resolved by the operator alone: no team, so back to triage.
        let mut t = ticket_in(TicketState::Closed);
        t.team = None;
        t.assignee = None;
        let tr = transition(
            &t,
            &Action::Reopen {
                reason: "again".into(),
            },
            &u("olivia"),
            &org,
        )
        .unwrap();
        assert_eq!(tr.ticket.state, TicketState::Open);
        check_invariants(&tr.ticket, &org).unwrap();
    }

    #[test]
    fn assigning_a_person_checks_the_team() {
        let org = org();
        let t = ticket_in(TicketState::Assigned);
        let e = transition(
            &t,
            &Action::AssignUser {
                team: TeamName::parse("backend").unwrap(),
                user: u("ivan"),
            },
            &u("bob"),
            &org,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "ivan is not a member of backend; its members are: bob, bella"
        );
        let e = transition(
            &t,
            &Action::AssignTeam(TeamName::parse("nope").unwrap()),
            &u("olivia"),
            &org,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "there is no team `nope`; known teams: backend, infra, qa"
        );
    }
}
