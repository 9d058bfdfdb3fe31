//! The lease on the work that must happen once when several instances share
//! one PostgreSQL: the Discord gateway, outbox delivery, timers, the job
//! runners. One instance holds it, renewing it every third of its length;
//! the others wait to take it when it runs out.
//!
//! The holder acts only while its lease is valid by its own monotonic
//! clock, counted from before the renewal was asked for, and shorter than
//! the database's by a margin. A holder that was paused (SIGSTOP, a long
//! GC-like stall, a frozen VM) sees on waking that its time ran out before
//! it acts again: [`Lease::held`] is checked before each delivery and timer
//! pass, and the keeper ends the process (see `main.rs`) so that it comes
//! back as a standby. The database's token grows with each change of hands.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::Store;

/// The lease's name in the database.
pub const LEASE: &str = "leader";

/// How much shorter the holder's own view of its lease is than the
/// database's: what a renewal's round trip and the clocks' rates may eat.
fn margin(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_millis(200))
}

#[derive(Debug)]
struct Held {
    token: u64,
    until: Instant,
}

/// This instance's lease.
#[derive(Debug)]
pub struct Lease {
    holder: String,
    ttl: Duration,
    /// `None`: the store is this process's alone; the lease is always held.
    held: Option<Mutex<Option<Held>>>,
}

impl Lease {
    /// A lease held forever: the store's files are this process's alone.
    pub fn solo() -> Lease {
        Lease {
            holder: "solo".into(),
            ttl: Duration::MAX,
            held: None,
        }
    }

    /// A lease to take on a shared database, as `holder` (unique to this
    /// process), for `ttl` at a time.
    pub fn shared(holder: String, ttl: Duration) -> Lease {
        Lease {
            holder,
            ttl,
            held: Some(Mutex::new(None)),
        }
    }

    /// The lease for `store`.
    pub fn for_store(store: &Store, ttl: Duration) -> Lease {
        if store.is_exclusive() {
            return Lease::solo();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let nonce: u32 = fastrand::u32(..);
        Lease::shared(format!("{host}/{}/{nonce:08x}", std::process::id()), ttl)
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether this instance may act now.
    pub fn held(&self) -> bool {
        match &self.held {
            None => true,
            Some(m) => lock(m).as_ref().is_some_and(|h| Instant::now() < h.until),
        }
    }

    /// The fencing token of the lease held now.
    pub fn token(&self) -> Option<u64> {
        match &self.held {
            None => Some(1),
            Some(m) => lock(m)
                .as_ref()
                .filter(|h| Instant::now() < h.until)
                .map(|h| h.token),
        }
    }

    /// One try to take or renew the lease. `Ok(true)`: held (until the
    /// next renewal is due and a margin more).
    pub fn try_take(&self, store: &Store) -> Result<bool, crate::error::StoreError> {
        let Some(m) = &self.held else {
            return Ok(true);
        };
        let asked = Instant::now();
        let got = store.lease(LEASE, &self.holder, self.ttl)?;
        let mut g = lock(m);
        match got {
            Some(token) => {
                let until = asked + self.ttl.saturating_sub(margin(self.ttl));
                *g = Some(Held { token, until });
                Ok(true)
            }
            None => {
                *g = None;
                Ok(false)
            }
        }
    }

    /// Gives the lease up (a clean stop), so that a standby takes it at once.
    pub fn release(&self, store: &Store) {
        if let Some(m) = &self.held {
            *lock(m) = None;
            if let Err(e) = store.release(LEASE, &self.holder) {
                tracing::warn!(error = %e, "cannot give the lease up; a standby takes it when it runs out");
            }
        }
    }

    /// How often the holder renews, and a standby tries.
    pub fn every(&self) -> Duration {
        if self.held.is_none() {
            return Duration::from_secs(3600);
        }
        (self.ttl / 3).max(Duration::from_millis(100))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solo_lease_is_always_held() {
        let l = Lease::solo();
        assert!(l.held());
        assert_eq!(l.token(), Some(1));
    }

    #[test]
    fn a_shared_lease_is_not_held_until_taken() {
        let l = Lease::shared("a".into(), Duration::from_secs(10));
        assert!(!l.held());
        assert_eq!(l.token(), None);
        assert!(l.every() <= Duration::from_secs(4));
    }

    #[test]
    fn a_lease_runs_out_by_the_holders_own_clock_before_the_databases() {
        let ttl = Duration::from_secs(10);
        let l = Lease::shared("a".into(), ttl);
        if let Some(m) = &l.held {
            *lock(m) = Some(Held {
                token: 3,
                until: Instant::now() + ttl.saturating_sub(margin(ttl)),
            });
        }
        assert!(l.held());
        assert_eq!(l.token(), Some(3));
        assert!(margin(ttl) >= Duration::from_secs(2));
        if let Some(m) = &l.held {
            *lock(m) = Some(Held {
                token: 3,
                until: Instant::now() - Duration::from_millis(1),
            });
        }
        assert!(!l.held(), "past its time, the holder no longer acts");
    }
}
