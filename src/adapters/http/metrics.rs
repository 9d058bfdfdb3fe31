//! The bot's own metrics, written in Prometheus' text exposition format.
//! Counters and histograms live here; gauges that the store already knows
//! (open tickets, outbox depth) are read from it at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::domain::alert::{AlertSource, AlertStatus};
use crate::domain::TicketState;
use crate::engine::View;
use crate::error::StoreError;
use crate::runtime::health::Health;
use crate::store::{Queue, Store};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// Upper bounds of the ticket-time buckets, in seconds: 5m to 7d.
const SLA_BUCKETS: [f64; 9] = [
    300.0, 900.0, 1800.0, 3600.0, 14400.0, 28800.0, 86400.0, 259200.0, 604800.0,
];

#[derive(Default)]
struct SlaHistogram {
    counts: [u64; SLA_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl SlaHistogram {
    fn observe(&mut self, secs: f64) {
        for (i, le) in SLA_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, le) in SLA_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    alerts: BTreeMap<(&'static str, &'static str), u64>,
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Counters and histograms shared by the adapters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            // A panic while counting leaves counts that are still usable.
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    pub fn alert_received(&self, source: AlertSource, status: AlertStatus) {
        self.with(|m| {
            *m.alerts
                .entry((source.as_str(), status.as_str()))
                .or_default() += 1
        });
    }

    pub fn request(&self, route: &str, status: u16, took: Duration) {
        self.with(|m| {
            *m.requests.entry((route.to_string(), status)).or_default() += 1;
            m.latency
                .entry(route.to_string())
                .or_default()
                .observe(took.as_secs_f64());
        });
    }

    /// The whole exposition, counters and the store's gauges. A record the
    /// store cannot read fails the scrape rather than be counted as nothing.
    pub fn render(&self, store: &Store, health: &Health) -> Result<String, StoreError> {
        let mut out = String::new();
        out.push_str("# HELP opsbot_build_info The running opsbot's version.\n");
        out.push_str("# TYPE opsbot_build_info gauge\n");
        let _ = writeln!(
            out,
            "opsbot_build_info{{version=\"{}\"}} 1",
            esc(env!("CARGO_PKG_VERSION"))
        );
        out.push_str("# HELP opsbot_worker_up Whether each worker runs (1) or has stopped (0).\n");
        out.push_str("# TYPE opsbot_worker_up gauge\n");
        for (name, up) in health.workers() {
            let _ = writeln!(
                out,
                "opsbot_worker_up{{worker=\"{}\"}} {}",
                esc(&name),
                u8::from(up)
            );
        }
        out.push_str(
            "# HELP opsbot_store_writable Whether the store takes writes (0 after the disk refused one).\n",
        );
        out.push_str("# TYPE opsbot_store_writable gauge\n");
        let _ = writeln!(out, "opsbot_store_writable {}", u8::from(health.store_ok()));
        self.with(|m| {
            out.push_str("# HELP opsbot_alerts_received_total Alerts received, by source and status.\n");
            out.push_str("# TYPE opsbot_alerts_received_total counter\n");
            for ((source, status), n) in &m.alerts {
                let _ = writeln!(
                    out,
                    "opsbot_alerts_received_total{{source=\"{source}\",status=\"{status}\"}} {n}"
                );
            }
            out.push_str("# HELP opsbot_http_requests_total HTTP requests, by route and status code.\n");
            out.push_str("# TYPE opsbot_http_requests_total counter\n");
            for ((route, code), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "opsbot_http_requests_total{{route=\"{}\",code=\"{code}\"}} {n}",
                    esc(route)
                );
            }
            out.push_str("# HELP opsbot_http_request_duration_seconds Time to answer an HTTP request.\n");
            out.push_str("# TYPE opsbot_http_request_duration_seconds histogram\n");
            for (route, h) in &m.latency {
                let r = esc(route);
                for (i, le) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "opsbot_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "opsbot_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "opsbot_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
                let _ = writeln!(out, "opsbot_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
            }
        });

        out.push_str(
            "# HELP opsbot_tickets_opened_total Tickets opened since the database was created.\n",
        );
        out.push_str("# TYPE opsbot_tickets_opened_total counter\n");
        let opened = store.last_ticket_number()?;
        let _ = writeln!(out, "opsbot_tickets_opened_total {opened}");

        let now = chrono::Utc::now();
        let mut late: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut breaches: BTreeMap<(String, String, &'static str), u64> = BTreeMap::new();
        let mut ack = SlaHistogram::default();
        let mut res = SlaHistogram::default();
        let mut open: BTreeMap<(TicketState, String, String), u64> = BTreeMap::new();
        for t in store.tickets() {
            let t = t?;
            let key = (
                t.team.as_ref().map_or("", |t| t.as_str()).to_string(),
                t.priority.as_str().to_string(),
            );
            if let Some(sla) = &t.sla {
                if let Some(a) = sla.acked_at {
                    ack.observe((a - t.created_at).num_seconds() as f64);
                }
                if let Some(r) = sla.resolved_at {
                    res.observe((r - t.created_at).num_seconds() as f64);
                }
                for (breached, kind) in [
                    (sla.ack_breached, "acknowledge"),
                    (sla.resolve_breached, "resolve"),
                ] {
                    if breached {
                        *breaches
                            .entry((key.0.clone(), key.1.clone(), kind))
                            .or_default() += 1;
                    }
                }
                let waiting = matches!(t.state, TicketState::Open | TicketState::Assigned);
                let unresolved = waiting || t.state == TicketState::InProgress;
                let past = (waiting && sla.ack_due.is_some_and(|d| d <= now))
                    || (unresolved && sla.resolve_due.is_some_and(|d| d <= now));
                if past {
                    *late.entry(key.clone()).or_default() += 1;
                }
            }
            if t.state == TicketState::Closed {
                continue;
            }
            let team = t.team.as_ref().map_or("", |t| t.as_str()).to_string();
            *open
                .entry((t.state, team, t.priority.as_str().to_string()))
                .or_default() += 1;
        }
        out.push_str(
            "# HELP opsbot_tickets_open Tickets not closed, by state, team and priority.\n",
        );
        out.push_str("# TYPE opsbot_tickets_open gauge\n");
        for ((state, team, prio), n) in &open {
            let _ = writeln!(
                out,
                "opsbot_tickets_open{{state=\"{state}\",team=\"{}\",priority=\"{prio}\"}} {n}",
                esc(team)
            );
        }
        out.push_str("# HELP opsbot_tickets_past_deadline Tickets not taken or not resolved by their deadline, by team and priority.\n");
        out.push_str("# TYPE opsbot_tickets_past_deadline gauge\n");
        for ((team, prio), n) in &late {
            let _ = writeln!(
                out,
                "opsbot_tickets_past_deadline{{team=\"{}\",priority=\"{prio}\"}} {n}",
                esc(team)
            );
        }
        out.push_str("# HELP opsbot_deadline_breaches_total Deadlines missed (acknowledge or resolve), by team and priority.\n");
        out.push_str("# TYPE opsbot_deadline_breaches_total counter\n");
        for ((team, prio, kind), n) in &breaches {
            let _ = writeln!(
                out,
                "opsbot_deadline_breaches_total{{team=\"{}\",priority=\"{prio}\",deadline=\"{kind}\"}} {n}",
                esc(team)
            );
        }
        ack.write(
            &mut out,
            "opsbot_time_to_acknowledge_seconds",
            "Time from opening to the first take, per ticket.",
        );
        res.write(
            &mut out,
            "opsbot_time_to_resolve_seconds",
            "Time from opening to the last resolve, per ticket.",
        );
        out.push_str(
            "# HELP opsbot_outbox_depth Effects committed and not yet delivered, by queue (chat posts, customer mail).\n",
        );
        out.push_str("# TYPE opsbot_outbox_depth gauge\n");
        for (name, q) in [("chat", Queue::Chat), ("mail", Queue::Mail)] {
            let _ = writeln!(
                out,
                "opsbot_outbox_depth{{queue=\"{name}\"}} {}",
                store.queue_len(q)
            );
        }
        out.push_str("# HELP opsbot_dead_letters Effects that could not be delivered.\n");
        out.push_str("# TYPE opsbot_dead_letters gauge\n");
        let dead = store.dead_letters()?.len();
        let _ = writeln!(out, "opsbot_dead_letters {dead}");
        Ok(out)
    }
}
