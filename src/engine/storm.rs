//! Storm control, decided: which pending monitoring posts of a channel merge
//! into one summary, and the summary that stands for them. The outbox worker
//! only picks the queued items and delivers what this returns.

use std::collections::BTreeMap;

use crate::domain::{ChannelName, TicketId};
use crate::engine::effect::{Effect, Post};
use crate::engine::messages;

/// A monitoring post that storm control may merge with others of its
/// channel. Thread posts (each ticket's own story) and people's posts are
/// never merged.
pub fn mergeable(effect: &Effect) -> bool {
    matches!(effect, Effect::Post(p) if p.alert && !p.thread)
}

/// One delivery out of a window of pending effects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The indexes (into the window) of the effects it settles, the first
    /// one being where it is delivered.
    pub settles: Vec<usize>,
    /// For a merged delivery: the summary posted instead of the first one.
    pub summary: Option<Post>,
}

/// When more than `after` monitoring posts wait for the same channel, they
/// are merged into one summary, delivered where the first one stood; every
/// other effect is delivered as it is. Returns the deliveries in order.
pub fn merge(window: &[&Effect], after: usize) -> Vec<Delivery> {
    let of = |e: &Effect| -> Option<(ChannelName, Option<TicketId>)> {
        match e {
            Effect::Post(p) if mergeable(e) => Some((p.channel.clone(), p.ticket.clone())),
            _ => None,
        }
    };
    let mut per_channel: BTreeMap<ChannelName, usize> = BTreeMap::new();
    for e in window {
        if let Some((c, _)) = of(e) {
            *per_channel.entry(c).or_default() += 1;
        }
    }
    // Deliveries, and for merged ones the tickets they cover.
    let mut out: Vec<(Vec<usize>, Vec<Option<TicketId>>)> = Vec::new();
    let mut merged_at: BTreeMap<ChannelName, usize> = BTreeMap::new();
    for (i, e) in window.iter().enumerate() {
        match of(e) {
            Some((c, ticket)) if per_channel.get(&c).copied().unwrap_or(0) > after => {
                match merged_at.get(&c) {
                    Some(&at) => {
                        out[at].0.push(i);
                        out[at].1.push(ticket);
                    }
                    None => {
                        merged_at.insert(c, out.len());
                        out.push((vec![i], vec![ticket]));
                    }
                }
            }
            _ => out.push((vec![i], Vec::new())),
        }
    }
    out.into_iter()
        .map(|(settles, tickets)| {
            let summary = match window[settles[0]] {
                Effect::Post(first) if settles.len() > 1 => {
                    Some(summary(first, settles.len(), &tickets))
                }
                _ => None,
            };
            Delivery { settles, summary }
        })
        .collect()
}

/// The post that stands for `updates` merged monitoring posts, in the place
/// of the first of them.
fn summary(first: &Post, updates: usize, tickets: &[Option<TicketId>]) -> Post {
    let mut counts: Vec<(TicketId, usize)> = Vec::new();
    for t in tickets.iter().flatten() {
        match counts.iter_mut().find(|(k, _)| k == t) {
            Some((_, n)) => *n += 1,
            None => counts.push((t.clone(), 1)),
        }
    }
    let mut post = first.clone();
    post.body = messages::storm_summary(updates, &counts);
    post.ticket = None;
    // A summary is nobody's card and asks nothing.
    post.card = None;
    post.ask = None;
    post
}
