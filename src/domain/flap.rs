//! Flapping: an alert group that changes between firing and resolved more
//! than `changes` times within `within` is flapping; it stops when it stays
//! in one state for `within`.

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;

/// `flap = { changes = 5, within = "30m" }` of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flap {
    pub changes: u32,
    pub within: std::time::Duration,
}

/// A group's changes between firing and resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapState {
    /// The changes within the window, oldest first (at most `changes + 1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Timestamp>,
    #[serde(default)]
    pub flapping: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<Timestamp>,
}

impl FlapState {
    pub fn is_quiet(&self) -> bool {
        self.changes.is_empty() && !self.flapping && self.last_change.is_none()
    }

    fn window(flap: &Flap) -> chrono::Duration {
        chrono::Duration::from_std(flap.within).unwrap_or(chrono::Duration::MAX)
    }

    /// Records a change at `now`; true when the group starts flapping.
    pub fn change(&mut self, flap: &Flap, now: Timestamp) -> bool {
        let window = Self::window(flap);
        self.changes.push(now);
        self.changes
            .retain(|t| now.signed_duration_since(*t) < window);
        let keep = flap.changes as usize + 1;
        if self.changes.len() > keep {
            let extra = self.changes.len() - keep;
            self.changes.drain(..extra);
        }
        self.last_change = Some(now);
        if !self.flapping && self.changes.len() > flap.changes as usize {
            self.flapping = true;
            return true;
        }
        false
    }

    /// Whether a flapping group has stayed in one state for the window by
    /// `now` (then it stops flapping).
    pub fn settled(&self, flap: &Flap, now: Timestamp) -> bool {
        self.flapping
            && self
                .last_change
                .is_some_and(|t| now.signed_duration_since(t) >= Self::window(flap))
    }

    /// Stops flapping.
    pub fn settle(&mut self) {
        self.flapping = false;
        self.changes.clear();
    }

    /// The changes within the window, while flapping (what the card shows).
    pub fn shown(&self) -> u64 {
        if self.flapping {
            self.changes.len() as u64
        } else {
            0
        }
    }
}
