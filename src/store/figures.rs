//! The tickets' figures that `/metrics` shows (tickets not closed, past
//! their deadline, deadlines missed, times to acknowledge and resolve), kept
//! as counters in `meta` in the same transaction as the ticket writes, in the
//! manner of people's loads. A scrape reads these counters, never a ticket.
//!
//! Each ticket adds a set of amounts under `fig:` keys ([`of`]); a ticket
//! write takes away what the old record added and adds what the new one
//! does. A counter that comes back to zero is removed, so a scrape reads one
//! key per series. Stores made before the figures were kept get them
//! counted once, from the tickets, when they open.

use std::collections::BTreeMap;

use super::kv::{scan_prefix, TreeName, Tx};
use crate::domain::{Ticket, TicketState};
use crate::error::StoreError;

/// Upper bounds of the ticket-time buckets, in seconds: 5m to 7d.
pub const TIME_BUCKETS: [f64; 9] = [
    300.0, 900.0, 1800.0, 3600.0, 14400.0, 28800.0, 86400.0, 259200.0, 604800.0,
];

/// Set once the figures have been counted from the tickets.
pub(super) const COUNTED: &[u8] = b"figures_counted";

const PREFIX: &[u8] = b"fig:";

/// Times from opening to a moment, per ticket: counts per bucket (the last
/// one above every bound), and their sum in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeHistogram {
    pub buckets: [u64; TIME_BUCKETS.len() + 1],
    pub sum: f64,
}

impl TimeHistogram {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// What a scrape shows of the tickets. Teams are `""` for no team.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TicketFigures {
    /// Tickets not closed, by (state, team, priority).
    pub open: BTreeMap<(String, String, String), u64>,
    /// Tickets whose breach the engine recorded and that still wait for what
    /// the deadline asked (a take, a resolve), by (team, priority).
    pub past_deadline: BTreeMap<(String, String), u64>,
    /// Deadlines missed, by (team, priority, "acknowledge" | "resolve").
    pub breaches: BTreeMap<(String, String, String), u64>,
    pub time_to_acknowledge: TimeHistogram,
    pub time_to_resolve: TimeHistogram,
}

fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(parts.join("\0").as_bytes());
    k
}

fn bucket(secs: i64) -> String {
    let i = TIME_BUCKETS
        .iter()
        .position(|le| secs as f64 <= *le)
        .unwrap_or(TIME_BUCKETS.len());
    i.to_string()
}

/// The amounts one ticket adds to the figures.
pub(super) fn of(t: &Ticket) -> Vec<(Vec<u8>, i64)> {
    let team = t.team.as_ref().map_or("", |t| t.as_str());
    let prio = t.priority.as_str();
    let mut out = Vec::new();
    if t.state != TicketState::Closed {
        out.push((key(&["open", t.state.as_str(), team, prio]), 1));
    }
    if let Some(sla) = &t.sla {
        if let Some(a) = sla.acked_at {
            let secs = (a - t.created_at).num_seconds();
            out.push((key(&["ack", &bucket(secs)]), 1));
            out.push((key(&["ack_sum"]), secs));
        }
        if let Some(r) = sla.resolved_at {
            let secs = (r - t.created_at).num_seconds();
            out.push((key(&["res", &bucket(secs)]), 1));
            out.push((key(&["res_sum"]), secs));
        }
        for (breached, kind) in [
            (sla.ack_breached, "acknowledge"),
            (sla.resolve_breached, "resolve"),
        ] {
            if breached {
                out.push((key(&["breach", team, prio, kind]), 1));
            }
        }
        // Lateness as the engine recorded it: a breach it decided, whose
        // deadline still stands (taking clears the acknowledge deadline,
        // resolving both, reopening starts new ones unbreached).
        let waiting = matches!(t.state, TicketState::Open | TicketState::Assigned);
        let unresolved = waiting || t.state == TicketState::InProgress;
        let late = (waiting && sla.ack_breached && sla.ack_due.is_some())
            || (unresolved && sla.resolve_breached && sla.resolve_due.is_some());
        if late {
            out.push((key(&["late", team, prio]), 1));
        }
    }
    out
}

/// What changes when `old` becomes `new`: amounts by key, none zero.
pub(super) fn delta(old: Option<&Ticket>, new: Option<&Ticket>) -> BTreeMap<Vec<u8>, i64> {
    let mut d: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (k, v) in old.map(of).unwrap_or_default() {
        *d.entry(k).or_default() -= v;
    }
    for (k, v) in new.map(of).unwrap_or_default() {
        *d.entry(k).or_default() += v;
    }
    d.retain(|_, v| *v != 0);
    d
}

fn read_i64(v: &[u8]) -> Result<i64, StoreError> {
    v.try_into()
        .map(i64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            tree: "meta",
            detail: format!("a figure of {} bytes, not 8", v.len()),
        })
}

/// Applies a ticket write's change to the figures, inside its transaction.
pub(super) fn apply(tx: &dyn Tx, old: Option<&Ticket>, new: &Ticket) -> Result<(), StoreError> {
    for (k, v) in delta(old, Some(new)) {
        let n = match tx.get(TreeName::Meta, &k)? {
            Some(cur) => read_i64(&cur)?,
            None => 0,
        };
        let n = n.saturating_add(v);
        if n == 0 {
            tx.delete(TreeName::Meta, &k)?;
        } else {
            tx.put(TreeName::Meta, &k, &n.to_be_bytes())?;
        }
    }
    Ok(())
}

impl super::Store {
    /// The figures, read from their counters: one key per series.
    pub fn ticket_figures(&self) -> Result<TicketFigures, StoreError> {
        let mut f = TicketFigures::default();
        for r in scan_prefix(&*self.db, TreeName::Meta, PREFIX) {
            let (k, v) = r?;
            let n = read_i64(&v)?;
            let text = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
            let parts: Vec<&str> = text.split('\0').collect();
            let count = n.max(0) as u64;
            let s = |i: usize| parts.get(i).copied().unwrap_or("").to_string();
            let hist = |h: &mut TimeHistogram| {
                if let Some(i) = parts.get(1).and_then(|i| i.parse::<usize>().ok()) {
                    if let Some(b) = h.buckets.get_mut(i) {
                        *b = count;
                    }
                }
            };
            match parts[0] {
                "open" => {
                    f.open.insert((s(1), s(2), s(3)), count);
                }
                "late" => {
                    f.past_deadline.insert((s(1), s(2)), count);
                }
                "breach" => {
                    f.breaches.insert((s(1), s(2), s(3)), count);
                }
                "ack" => hist(&mut f.time_to_acknowledge),
                "res" => hist(&mut f.time_to_resolve),
                "ack_sum" => f.time_to_acknowledge.sum = n as f64,
                "res_sum" => f.time_to_resolve.sum = n as f64,
                _ => {}
            }
        }
        Ok(f)
    }

    /// Stores made before the figures were kept get them counted once, from
    /// the tickets.
    pub(crate) fn count_figures_once(&self) -> Result<(), StoreError> {
        if self.db.get(TreeName::Meta, COUNTED)?.is_some() {
            return Ok(());
        }
        let mut counts: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for t in self.tickets() {
            for (k, v) in of(&t?) {
                *counts.entry(k).or_default() += v;
            }
        }
        self.forget_figures()?;
        for (k, v) in counts {
            if v != 0 {
                self.db.put(TreeName::Meta, &k, &v.to_be_bytes())?;
            }
        }
        self.db.put(TreeName::Meta, COUNTED, b"1")?;
        self.db.flush()?;
        Ok(())
    }

    /// Makes this store look like one from before the figures were kept.
    pub(crate) fn forget_figures(&self) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = scan_prefix(&*self.db, TreeName::Meta, PREFIX)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for k in keys {
            self.db.delete(TreeName::Meta, &k)?;
        }
        self.db.delete(TreeName::Meta, COUNTED)?;
        Ok(())
    }
}

#[cfg(test)]
use std::ops::Bound::Unbounded;

#[cfg(test)]
impl super::Store {
    /// Overwrites every ticket record with bytes no reader can decode: what
    /// reads one fails from then on.
    pub(crate) fn spoil_ticket_records(&self) -> Result<usize, StoreError> {
        let keys: Vec<Vec<u8>> = self
            .db
            .scan(TreeName::Tickets, Unbounded, Unbounded, false)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for k in &keys {
            self.db
                .put(TreeName::Tickets, k, b"\xff not a ticket".as_slice())?;
        }
        Ok(keys.len())
    }
}
