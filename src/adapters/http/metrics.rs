//! The bot's own metrics, in Prometheus' text exposition format, written by
//! `prometheus-client`. Counters and histograms of the HTTP intake live
//! here; what the store knows (tickets opened, the tickets' figures it keeps
//! with every ticket write, outbox depth, dead letters) is read from it at
//! scrape time, one key per series: a scrape reads no ticket.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::domain::alert::{AlertSource, AlertStatus};
use crate::engine::View;
use crate::error::StoreError;
use crate::runtime::health::Health;
use crate::store::{Queue, Store, TicketFigures, TimeHistogram, TIME_BUCKETS};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    source: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Counters and histograms shared by the adapters.
pub struct Metrics {
    alerts: Family<AlertLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            alerts: Family::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alert_received(&self, source: AlertSource, status: AlertStatus) {
        self.alerts
            .get_or_create(&AlertLabels {
                source: source.as_str().to_string(),
                status: status.as_str().to_string(),
            })
            .inc();
    }

    pub fn request(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                code: status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The whole exposition, counters and the store's gauges. A record the
    /// store cannot read fails the scrape rather than be counted as nothing.
    pub fn render(&self, store: &Store, health: &Health) -> Result<String, StoreError> {
        let state = Snapshot {
            workers: health.workers(),
            store_ok: health.store_ok(),
            opened: store.last_ticket_number()?,
            tickets: store.ticket_figures()?,
            outbox: [
                ("chat", store.queue_depth(Queue::Chat)?),
                ("mail", store.queue_depth(Queue::Mail)?),
            ],
            dead: store.dead_letter_count()?,
        };
        let mut registry = Registry::default();
        registry.register(
            "opsbot_alerts_received",
            "Alerts received, by source and status",
            self.alerts.clone(),
        );
        registry.register(
            "opsbot_http_requests",
            "HTTP requests, by route and status code",
            self.requests.clone(),
        );
        registry.register(
            "opsbot_http_request_duration_seconds",
            "Time to answer an HTTP request",
            self.latency.clone(),
        );
        registry.register_collector(Box::new(state));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String does not fail");
        Ok(out)
    }
}

/// What a scrape read of the health and the store.
#[derive(Debug)]
struct Snapshot {
    workers: Vec<(String, bool)>,
    store_ok: bool,
    opened: u64,
    tickets: TicketFigures,
    outbox: [(&'static str, usize); 2],
    dead: usize,
}

// The registry ends the help of what it holds with a full stop; a
// collector's help is written as given, so it carries its own.

fn gauge_family<S: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (S, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn time_histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &TimeHistogram,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    let buckets: Vec<(f64, u64)> = TIME_BUCKETS
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .zip(h.buckets)
        .collect();
    m.encode_histogram::<NoLabelSet>(h.sum, h.count(), &buckets, None)
}

fn label(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let version = env!("CARGO_PKG_VERSION");
        gauge_family(
            &mut e,
            "opsbot_build_info",
            "The running opsbot's version and the git commit it was built from.",
            [(
                label(&[("version", version), ("commit", env!("OPSBOT_GIT_COMMIT"))]),
                1,
            )],
        )?;
        gauge_family(
            &mut e,
            "opsbot_worker_up",
            "Whether each worker runs (1) or has stopped (0).",
            self.workers
                .iter()
                .map(|(w, up)| (label(&[("worker", w)]), i64::from(*up))),
        )?;
        let m = e.encode_descriptor(
            "opsbot_store_writable",
            "Whether the store takes writes (0 after the disk refused one).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(self.store_ok)).encode(m)?;
        let m = e.encode_descriptor(
            "opsbot_tickets_opened",
            "Tickets opened since the database was created.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.opened).encode(m)?;
        let t = &self.tickets;
        gauge_family(
            &mut e,
            "opsbot_tickets_open",
            "Tickets not closed, by state, team and priority.",
            t.open.iter().map(|((s, team, p), n)| {
                (
                    label(&[("state", s), ("team", team), ("priority", p)]),
                    *n as i64,
                )
            }),
        )?;
        gauge_family(
            &mut e,
            "opsbot_tickets_past_deadline",
            "Tickets not taken or not resolved by their deadline, by team and priority.",
            t.past_deadline
                .iter()
                .map(|((team, p), n)| (label(&[("team", team), ("priority", p)]), *n as i64)),
        )?;
        let mut m = e.encode_descriptor(
            "opsbot_deadline_breaches",
            "Deadlines missed (acknowledge or resolve), by team and priority.",
            None,
            MetricType::Counter,
        )?;
        for ((team, p, kind), n) in &t.breaches {
            let labels = label(&[("team", team), ("priority", p), ("deadline", kind)]);
            ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
        }
        time_histogram(
            &mut e,
            "opsbot_time_to_acknowledge_seconds",
            "Time from opening to the first take, per ticket.",
            &t.time_to_acknowledge,
        )?;
        time_histogram(
            &mut e,
            "opsbot_time_to_resolve_seconds",
            "Time from opening to the last resolve, per ticket.",
            &t.time_to_resolve,
        )?;
        gauge_family(
            &mut e,
            "opsbot_outbox_depth",
            "Effects committed and not yet delivered, by queue (chat posts, customer mail).",
            self.outbox
                .iter()
                .map(|(q, n)| (label(&[("queue", q)]), *n as i64)),
        )?;
        let m = e.encode_descriptor(
            "opsbot_dead_letters",
            "Effects that could not be delivered.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.dead as i64).encode(m)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{Duration, TimeZone};

    use super::Metrics;
    use crate::commands::parse_command;
    use crate::config::Config;
    use crate::domain::{Actor, ChannelName, Source, Timestamp, UserName};
    use crate::engine::{Engine, Event};
    use crate::runtime::health::Health;
    use crate::store::kv::TreeName;
    use crate::store::{Queue, Store};

    const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[deadlines]
p1 = { acknowledge = "15m", resolve = "4h" }
"#;

    /// The engine on a real store, a clock the test moves, and restarts.
    struct Bot {
        _dir: tempfile::TempDir,
        config: Arc<Config>,
        store: Option<Store>,
        engine: Engine,
        now: Timestamp,
    }

    impl Bot {
        fn new() -> Bot {
            let dir = tempfile::tempdir().unwrap();
            let config = Config::parse(&dir.path().join("bot.toml"), CONFIG)
                .unwrap()
                .config;
            let config = Arc::new(config);
            Bot {
                store: Some(Store::open(&config.storage_path).unwrap()),
                engine: Engine::new(config.clone()),
                config,
                _dir: dir,
                now: chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
            }
        }

        fn store(&self) -> &Store {
            self.store.as_ref().unwrap()
        }

        fn at(&mut self, minutes: i64) {
            self.now = chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap()
                + Duration::minutes(minutes);
        }

        fn event(&self, ev: Event) {
            let now = self.now;
            let r = self
                .store()
                .apply_batch(
                    &[ev],
                    |view, ev| {
                        let d = self.engine.decide(view, ev, now)?;
                        Ok((d.writes.clone(), d))
                    },
                    || now,
                )
                .unwrap();
            for d in r {
                d.unwrap();
            }
        }

        fn cmd(&self, who: &str, line: &str) {
            let command = parse_command(line, "OPS").unwrap();
            self.event(Event::Command {
                actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
                channel: ChannelName::parse("ops").unwrap(),
                command,
            });
        }

        /// A command that may be refused (its refusal changes nothing).
        fn try_cmd(&self, who: &str, line: &str) {
            let now = self.now;
            let ev = Event::Command {
                actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
                channel: ChannelName::parse("ops").unwrap(),
                command: parse_command(line, "OPS").unwrap(),
            };
            self.store()
                .apply_batch(
                    &[ev],
                    |view, ev| {
                        let d = self.engine.decide(view, ev, now)?;
                        Ok((d.writes.clone(), d))
                    },
                    || now,
                )
                .unwrap();
        }

        /// The timer pass the runtime makes: the due index, then the engine.
        fn tick(&self) {
            let due = self
                .store()
                .due_tickets(self.now, usize::MAX, "OPS")
                .unwrap();
            self.event(Event::Tick { tickets: due });
        }

        fn restart(&mut self) {
            self.store = None;
            // sled's own threads may hold the files' lock a moment longer.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match Store::open(&self.config.storage_path) {
                    Ok(s) => break self.store = Some(s),
                    Err(crate::error::StoreError::Locked { .. })
                        if std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    Err(e) => panic!("the store does not open again: {e}"),
                }
            }
        }

        fn scrape(&self) -> String {
            Metrics::new().render(self.store(), &Health::new()).unwrap()
        }

        /// The scrape's lines of the ticket series, sorted.
        fn tickets(&self) -> Vec<String> {
            let mut out: Vec<String> = self
                .scrape()
                .lines()
                .filter(|l| {
                    [
                        "opsbot_tickets_open{",
                        "opsbot_tickets_past_deadline{",
                        "opsbot_deadline_breaches_total{",
                        "opsbot_time_to_acknowledge_seconds_count",
                        "opsbot_time_to_resolve_seconds_count",
                    ]
                    .iter()
                    .any(|p| l.starts_with(p))
                })
                .map(str::to_string)
                .collect();
            out.sort();
            out
        }
    }

    fn lines(expected: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    const ACK0: &str = "opsbot_time_to_acknowledge_seconds_count 0";
    const RES0: &str = "opsbot_time_to_resolve_seconds_count 0";

    #[test]
    fn the_ticket_gauges_follow_open_take_breach_close_reopen_and_restarts() {
        let mut b = Bot::new();
        assert_eq!(b.tickets(), lines(&[ACK0, RES0]));
        b.at(0);
        b.cmd("olivia", "/ticket open title:one priority:p1 team:backend");
        b.cmd("olivia", "/ticket open title:two");
        assert_eq!(
            b.tickets(),
            lines(&[
                "opsbot_tickets_open{state=\"assigned\",team=\"backend\",priority=\"p1\"} 1",
                "opsbot_tickets_open{state=\"open\",team=\"\",priority=\"p3\"} 1",
                ACK0,
                RES0,
            ])
        );
        // The acknowledge deadline passes: the timer pass records the breach.
        b.at(20);
        b.tick();
        let late = [
            "opsbot_tickets_open{state=\"assigned\",team=\"backend\",priority=\"p1\"} 1",
            "opsbot_tickets_open{state=\"open\",team=\"\",priority=\"p3\"} 1",
            "opsbot_tickets_past_deadline{team=\"backend\",priority=\"p1\"} 1",
            "opsbot_deadline_breaches_total{team=\"backend\",priority=\"p1\",deadline=\"acknowledge\"} 1",
            ACK0,
            RES0,
        ];
        assert_eq!(b.tickets(), lines(&late));
        b.restart();
        assert_eq!(b.tickets(), lines(&late), "after a restart");
        // Taken: no longer late; the breach stays on record.
        b.at(30);
        b.cmd("bob", "/ticket take id:OPS-1");
        assert_eq!(
            b.tickets(),
            lines(&[
                "opsbot_tickets_open{state=\"in_progress\",team=\"backend\",priority=\"p1\"} 1",
                "opsbot_tickets_open{state=\"open\",team=\"\",priority=\"p3\"} 1",
                "opsbot_deadline_breaches_total{team=\"backend\",priority=\"p1\",deadline=\"acknowledge\"} 1",
                "opsbot_time_to_acknowledge_seconds_count 1",
                RES0,
            ])
        );
        assert!(
            b.scrape()
                .contains("opsbot_time_to_acknowledge_seconds_bucket{le=\"1800\"} 1"),
            "{}",
            b.scrape()
        );
        // The resolve deadline passes, then it is resolved and closed.
        b.at(300);
        b.tick();
        assert!(b.tickets().contains(
            &"opsbot_tickets_past_deadline{team=\"backend\",priority=\"p1\"} 1".to_string()
        ));
        b.at(310);
        b.cmd("bob", "/ticket resolve id:OPS-1 note:fixed");
        b.cmd("olivia", "/ticket verify id:OPS-1");
        let closed = [
            "opsbot_tickets_open{state=\"open\",team=\"\",priority=\"p3\"} 1",
            "opsbot_deadline_breaches_total{team=\"backend\",priority=\"p1\",deadline=\"acknowledge\"} 1",
            "opsbot_deadline_breaches_total{team=\"backend\",priority=\"p1\",deadline=\"resolve\"} 1",
            "opsbot_time_to_acknowledge_seconds_count 1",
            "opsbot_time_to_resolve_seconds_count 1",
        ];
        assert_eq!(b.tickets(), lines(&closed));
        b.restart();
        assert_eq!(b.tickets(), lines(&closed), "after a restart");
        // Reopened: counted again, its deadlines (and their record) new.
        b.at(320);
        b.cmd("bob", "/ticket reopen id:OPS-1 reason:again");
        let reopened = b.tickets();
        assert!(
            reopened
                .iter()
                .any(|l| l.starts_with("opsbot_tickets_open{")
                    && l.contains("team=\"backend\",priority=\"p1\"")
                    && l.ends_with(" 1")),
            "{reopened:?}"
        );
        // What a store made before the figures were kept counts on opening.
        b.store().forget_figures().unwrap();
        assert_eq!(b.tickets(), lines(&[ACK0, RES0]));
        b.restart();
        assert_eq!(b.tickets(), reopened, "counted once from the tickets");
        b.restart();
        assert_eq!(b.tickets(), reopened, "and only once");
    }

    #[test]
    fn a_scrape_reads_no_ticket_record() {
        let mut b = Bot::new();
        for i in 0..300 {
            b.at(i);
            let prio = ["p1", "p2", "p3", "p4"][i as usize % 4];
            b.cmd(
                "olivia",
                &format!("/ticket open title:t{i} priority:{prio} team:backend"),
            );
            if i % 3 == 0 {
                b.cmd("bob", &format!("/ticket take id:OPS-{}", i + 1));
            }
        }
        b.at(600);
        b.tick();
        let before = b.scrape();
        assert!(
            before.contains("opsbot_tickets_opened_total 300"),
            "{before}"
        );
        // Every ticket record unreadable: a scrape that decoded one would fail.
        assert_eq!(b.store().spoil_ticket_records().unwrap(), 300);
        assert!(b.store().tickets().all(|t| t.is_err()));
        assert_eq!(b.scrape(), before);
    }

    /// The counters a scrape reads (the tickets' figures, the queues' and
    /// dead letters' depths) beside a full recount of the records.
    fn assert_counters_match_a_recount(b: &Bot, when: &str) {
        let kept = b.store().ticket_figures().unwrap();
        let depths = b.store().depths_and_recounts();
        for (tree, kept, counted) in &depths {
            assert_eq!(kept, counted, "{when}: the depth of {tree:?}");
        }
        let scrape = b.scrape();
        for (queue, tree) in [("chat", TreeName::Outbox), ("mail", TreeName::MailOutbox)] {
            let n = depths.iter().find(|d| d.0 == tree).unwrap().2;
            let line = format!("opsbot_outbox_depth{{queue=\"{queue}\"}} {n}");
            assert!(
                scrape.lines().any(|l| l == line),
                "{when}: {line}\n{scrape}"
            );
        }
        let dead = depths
            .iter()
            .find(|d| d.0 == TreeName::DeadLetters)
            .unwrap()
            .2;
        assert!(
            scrape
                .lines()
                .any(|l| l == format!("opsbot_dead_letters {dead}")),
            "{when}: {dead} dead letters\n{scrape}"
        );
        // The figures counted again from every ticket, as an old store's are.
        b.store().forget_figures().unwrap();
        b.store().count_figures_once().unwrap();
        assert_eq!(b.store().ticket_figures().unwrap(), kept, "{when}: figures");
    }

    #[test]
    fn the_counters_a_scrape_reads_equal_a_recount_after_a_mix_restarts_and_on_an_old_store() {
        let mut b = Bot::new();
        assert_counters_match_a_recount(&b, "empty");
        // A deterministic mix: opens with and without a team, moves, takes,
        // resolves, closes, reopens, and commands that fail.
        for i in 0..60i64 {
            b.at(i);
            let prio = ["p1", "p2", "p3", "p4"][i as usize % 4];
            let team = if i % 2 == 0 { " team:backend" } else { "" };
            b.cmd(
                "olivia",
                &format!("/ticket open title:t{i} priority:{prio}{team}"),
            );
            let id = |back: i64| format!("OPS-{}", (i - back).max(0) + 1);
            match i % 6 {
                0 => b.try_cmd("bob", &format!("/ticket take id:{}", id(0))),
                1 => b.try_cmd(
                    "olivia",
                    &format!("/ticket assign id:{} team:backend", id(0)),
                ),
                2 => b.try_cmd("bob", &format!("/ticket resolve id:{} note:done", id(2))),
                3 => b.try_cmd("olivia", &format!("/ticket verify id:{}", id(1))),
                4 => b.try_cmd("bob", &format!("/ticket reopen id:{} reason:again", id(1))),
                _ => b.try_cmd("bob", "/ticket take id:OPS-999"),
            }
            if i % 10 == 9 {
                b.tick();
            }
        }
        b.at(600);
        b.tick();
        assert_counters_match_a_recount(&b, "after the mix");
        // Deliveries: some done (one twice, one never queued), one retried,
        // one dead-lettered.
        let store = b.store();
        let pending = store.pending(Queue::Chat, usize::MAX).unwrap();
        assert!(pending.len() > 20, "{}", pending.len());
        let seqs: Vec<u64> = pending.iter().take(10).map(|i| i.seq).collect();
        store.done_all(Queue::Chat, &seqs).unwrap();
        store.done_all(Queue::Chat, &seqs[..3]).unwrap();
        store.done(Queue::Chat, seqs[0]).unwrap();
        store.done(Queue::Chat, u64::MAX).unwrap();
        let mut again = pending[10].clone();
        again.attempts = 1;
        store.retry(Queue::Chat, &again).unwrap();
        store.dead_letter(Queue::Chat, &pending[11]).unwrap();
        store.dead_letter(Queue::Chat, &pending[11]).unwrap();
        assert_eq!(store.queue_len(Queue::Chat), pending.len() - 11);
        assert_counters_match_a_recount(&b, "after deliveries");
        b.restart();
        assert_counters_match_a_recount(&b, "after a restart");
        // A store made before the depths were kept counts them on opening.
        b.store().forget_depths().unwrap();
        assert_eq!(b.store().queue_len(Queue::Chat), 0);
        b.restart();
        assert_counters_match_a_recount(&b, "an old store, opened");
        b.cmd("olivia", "/ticket open title:after");
        assert_counters_match_a_recount(&b, "an old store, written to");
    }
}
