//! Pacing: at most a burst of deliveries per destination in any period.

use super::*;

/// At most `burst` deliveries per destination in any `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub burst: u32,
    pub period: Duration,
}

impl Pace {
    /// Discord's usual pace for messages in one channel: 5 per 5 seconds.
    pub const DISCORD: Pace = Pace {
        burst: 5,
        period: Duration::from_secs(5),
    };
}

/// The ticket an effect is about, if any.
pub(super) fn ticket_of(item: &OutboxItem) -> Option<crate::domain::TicketId> {
    match &item.effect {
        crate::engine::Effect::Post(p) => p.ticket.clone(),
        crate::engine::Effect::Card(c) => Some(c.ticket.clone()),
        crate::engine::Effect::Page(p) => Some(p.card.ticket.clone()),
        crate::engine::Effect::Mail(_)
        | crate::engine::Effect::Job(_)
        | crate::engine::Effect::Alertmanager(_) => None,
    }
}

/// Where an effect goes, for pacing.
pub(super) fn destination(item: &OutboxItem) -> Option<String> {
    match &item.effect {
        crate::engine::Effect::Post(p) => Some(match (&p.ticket, p.thread) {
            (Some(t), true) => format!("{}/{}", p.channel, t),
            _ => p.channel.to_string(),
        }),
        // Edits have their own limits on Discord, apart from new messages.
        crate::engine::Effect::Card(c) => Some(format!("{}/cards", c.channel)),
        // Each person's direct messages are a destination of their own.
        crate::engine::Effect::Page(p) => Some(format!("@{}", p.to)),
        // Each repository's statuses in a lane of their own: a forge that
        // is down holds back neither job orders nor another forge.
        crate::engine::Effect::Job(crate::domain::run::JobOrder::Status { status }) => {
            Some(format!("status/{}", status.repo))
        }
        // Each repository's deploy lookups one at a time (one mirror), in
        // a lane of their own: a slow fetch holds back no job order.
        crate::engine::Effect::Job(crate::domain::run::JobOrder::DeployCommits {
            repo, ..
        }) => Some(format!("git/{repo}")),
        crate::engine::Effect::Mail(_)
        | crate::engine::Effect::Job(_)
        | crate::engine::Effect::Alertmanager(_) => None,
    }
}

/// The last deliveries per destination (a sliding window).
pub(super) struct Pacer {
    pub(super) pace: Pace,
    pub(super) recent:
        std::collections::HashMap<String, std::collections::VecDeque<std::time::Instant>>,
}

impl Pacer {
    /// How long until a delivery to `dest` is allowed (`None`: now).
    pub(super) fn wait(&mut self, dest: &str, now: std::time::Instant) -> Option<Duration> {
        let window = self.recent.get_mut(dest)?;
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.pace.period)
        {
            window.pop_front();
        }
        if window.is_empty() {
            self.recent.remove(dest);
            return None;
        }
        if window.len() < self.pace.burst.max(1) as usize {
            return None;
        }
        let oldest = window.front().copied().unwrap_or(now);
        Some((oldest + self.pace.period).saturating_duration_since(now))
    }

    /// Counts a delivery to `dest`.
    pub(super) fn record(&mut self, dest: &str, now: std::time::Instant) {
        self.recent
            .entry(dest.to_string())
            .or_default()
            .push_back(now);
    }
}
