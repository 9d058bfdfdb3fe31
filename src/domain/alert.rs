//! Monitoring alerts: the typed alert every source is turned into, label
//! matchers, silences, routes, grouping keys, and the parsers of the webhook
//! payloads (Alertmanager v4, Grafana, generic). Pure: no I/O, no clock.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::domain::error::UserError;
use crate::domain::{Priority, TeamName, Timestamp};

/// Labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Firing or resolved.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Reads a status as monitoring tools write it.
    pub fn parse(s: &str) -> Option<AlertStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "firing" | "alerting" | "problem" | "critical" | "fire" => Some(AlertStatus::Firing),
            "resolved" | "ok" | "recovered" | "normal" => Some(AlertStatus::Resolved),
            _ => None,
        }
    }
}

/// Which tool sent an alert.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AlertSource {
    Alertmanager,
    Grafana,
    Generic,
    /// A chat message read by a message rule.
    Chat,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One alert, whatever sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub source: AlertSource,
    pub status: AlertStatus,
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    /// Identifies the alert across repeats.
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("alert")
    }

    /// A one-line summary: `HighLatency checkout: p99 latency above 2s`.
    pub fn summary(&self) -> String {
        let mut s = self.name().to_string();
        for key in ["service", "job", "instance"] {
            if let Some(v) = self.labels.get(key) {
                s.push(' ');
                s.push_str(v);
                break;
            }
        }
        if let Some(sum) = self
            .annotations
            .get("summary")
            .or_else(|| self.annotations.get("title"))
        {
            s.push_str(": ");
            s.push_str(sum);
        }
        s
    }
}

impl Alert {
    /// The summary, with the instance when the summary does not show it:
    /// what tells two alerts of one group apart on a timeline.
    pub fn detail(&self) -> String {
        let s = self.summary();
        match self.labels.get("instance") {
            Some(i) if !s.contains(i.as_str()) => format!("{s} ({i})"),
            _ => s,
        }
    }
}

/// A stable fingerprint of a label set (FNV-1a, 64 bits, hex), for sources
/// that send none.
pub fn fingerprint(labels: &Labels) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

// ---------------------------------------------------------------------------
// Matchers and silences.

/// How a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
pub enum MatchOp {
    #[serde(rename = "=")]
    #[strum(serialize = "=")]
    Eq,
    #[serde(rename = "!=")]
    #[strum(serialize = "!=")]
    Ne,
    #[serde(rename = "=~")]
    #[strum(serialize = "=~")]
    Re,
    #[serde(rename = "!~")]
    #[strum(serialize = "!~")]
    NotRe,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `label=value`, `label!=value`, `label=~regex`, `label!~regex` (regexes
/// match the whole value, as in Prometheus).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// Compiles a regex that must match a whole value.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

impl Matcher {
    pub fn parse(s: &str) -> Result<Matcher, UserError> {
        let s = s.trim();
        let (pos, op) = ["=~", "!~", "!=", "="]
            .iter()
            .filter_map(|op| s.find(op).map(|p| (p, *op)))
            .min_by_key(|(p, op)| (*p, std::cmp::Reverse(op.len())))
            .ok_or_else(|| {
                UserError::new(format!(
                    "`{s}` is not a matcher: write label=value, label!=value, label=~regex or label!~regex"
                ))
            })?;
        let label = s[..pos].trim();
        let value = s[pos + op.len()..].trim().trim_matches('"');
        let label_ok = !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !label.starts_with(|c: char| c.is_ascii_digit());
        if !label_ok {
            return Err(UserError::new(format!(
                "`{label}` is not a label name: use letters, digits and `_`"
            )));
        }
        let op = match op {
            "=" => MatchOp::Eq,
            "!=" => MatchOp::Ne,
            "=~" => MatchOp::Re,
            _ => MatchOp::NotRe,
        };
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(anchored(value).map_err(|e| {
                UserError::new(format!("`{value}` is not a valid regular expression: {e}"))
            })?),
            _ => None,
        };
        Ok(Matcher {
            label: label.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(r)) => r.is_match(v),
            (MatchOp::NotRe, Some(r)) => !r.is_match(v),
            _ => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.label, self.op.as_str(), self.value)
    }
}

impl From<Matcher> for String {
    fn from(m: Matcher) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Matcher {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Matcher::parse(&s).map_err(|e| e.to_string())
    }
}

/// Parses matchers separated by spaces or commas.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, UserError> {
    let ms: Vec<Matcher> = s
        .split([',', ' '])
        .filter(|p| !p.trim().is_empty())
        .map(Matcher::parse)
        .collect::<Result<_, _>>()?;
    if ms.is_empty() {
        return Err(UserError::new(
            "give at least one matcher, such as alertname=HighLatency",
        ));
    }
    Ok(ms)
}

/// Alerts matching every matcher are kept on record but open no ticket and
/// post nothing, until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: u64,
    pub matchers: Vec<Matcher>,
    pub until: Timestamp,
    pub created_by: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Its id in Alertmanager, once made there (`[alerts.alertmanager]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub am_id: Option<String>,
}

impl Silence {
    pub fn active(&self, now: Timestamp) -> bool {
        self.until > now
    }

    pub fn silences(&self, alert: &Alert) -> bool {
        self.matchers.iter().all(|m| m.matches(&alert.labels))
    }
}

// ---------------------------------------------------------------------------
// Routes.

/// What happens when an alert fires again after its ticket was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRefire {
    Reopen,
    New,
}

/// A compiled route: label regexes to a team and a priority, and the
/// handling policy of the alerts it takes.
#[derive(Clone, Debug)]
pub struct Route {
    pub name: String,
    /// Label → whole-value regex; all must match. Empty: matches everything.
    pub matchers: Vec<(String, Regex)>,
    pub team: Option<TeamName>,
    pub priority: Priority,
    /// Labels whose values form the group key; empty: the fingerprint.
    pub group_by: Vec<String>,
    pub resolve_on_recovery: bool,
    pub stale_after: Option<std::time::Duration>,
    pub on_refire: OnRefire,
    /// When its groups count as flapping (none: never).
    pub flap: Option<crate::domain::flap::Flap>,
}

impl Route {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|(k, r)| r.is_match(labels.get(k).map(String::as_str).unwrap_or("")))
    }

    /// The key of the group this alert belongs to under this route.
    pub fn group_key(&self, alert: &Alert) -> String {
        if self.group_by.is_empty() {
            return format!("{}/fp:{}", self.name, alert.fingerprint);
        }
        let mut k = format!("{}/", self.name);
        for l in &self.group_by {
            k.push_str(l);
            k.push('=');
            k.push_str(alert.labels.get(l).map(String::as_str).unwrap_or(""));
            k.push('\u{1f}');
        }
        k
    }
}

/// A group key as people are shown it (on the ticket, in its JSON): the
/// separators between labels become `, `, and the monitoring tool's
/// control characters and bidi overrides are removed.
pub fn shown_group_key(key: &str) -> String {
    let joined = key.trim_end_matches('\u{1f}').replace('\u{1f}', ", ");
    crate::domain::sanitize::clean_untrusted(&joined)
}

/// A message rule: in `channel`, a regex whose named groups become labels.
#[derive(Clone, Debug)]
pub struct MessageRule {
    pub channel: crate::domain::ChannelName,
    pub pattern: Regex,
}

impl MessageRule {
    /// The alert a chat message describes, if the rule reads it.
    pub fn read(&self, text: &str) -> Option<Alert> {
        let caps = self.pattern.captures(text)?;
        let mut labels = Labels::new();
        let mut status = AlertStatus::Firing;
        for name in self.pattern.capture_names().flatten() {
            let Some(m) = caps.name(name) else { continue };
            if name == "status" {
                status = AlertStatus::parse(m.as_str()).unwrap_or(AlertStatus::Firing);
            } else if name == "summary" || name == "description" {
                continue;
            } else {
                labels.insert(name.to_string(), m.as_str().to_string());
            }
        }
        let mut annotations = Labels::new();
        for name in ["summary", "description"] {
            if let Some(m) = caps.name(name) {
                annotations.insert(name.to_string(), m.as_str().to_string());
            }
        }
        labels.get("alertname")?;
        Some(Alert {
            source: AlertSource::Chat,
            status,
            fingerprint: fingerprint(&labels),
            labels,
            annotations,
            starts_at: None,
            generator_url: None,
        })
    }
}

// ---------------------------------------------------------------------------
// Webhook payloads.

/// Why a payload was refused: the HTTP adapter answers 400 with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PayloadError(pub String);

#[derive(Deserialize)]
struct AmPayload {
    #[serde(default)]
    version: Option<String>,
    alerts: Vec<AmAlert>,
}

#[derive(Deserialize)]
struct AmAlert {
    status: Option<String>,
    #[serde(default)]
    labels: Option<Labels>,
    #[serde(default)]
    annotations: Labels,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    /// Grafana's links, beside the annotations.
    #[serde(default, rename = "dashboardURL")]
    dashboard_url: Option<String>,
    #[serde(default, rename = "panelURL")]
    panel_url: Option<String>,
    #[serde(default, rename = "silenceURL")]
    silence_url: Option<String>,
}

fn json_error(e: &serde_json::Error) -> PayloadError {
    PayloadError(format!(
        "malformed JSON at line {}, column {}: {}",
        e.line(),
        e.column(),
        e
    ))
}

/// `alerts[i].startsAt`: an RFC 3339 time, or absent. Alertmanager's zero
/// time (and anything before 1970) means "not set".
fn time(i: usize, s: Option<&str>) -> Result<Option<Timestamp>, PayloadError> {
    let Some(s) = s.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(s.trim())
        .map_err(|_| {
            PayloadError(format!(
                "alerts[{i}].startsAt is `{}`; it must be an RFC 3339 time such as 2026-03-30T09:00:00Z",
                crate::domain::rich::clip_plain(s, 40)
            ))
        })?
        .with_timezone(&Utc);
    Ok((t.timestamp() > 0).then_some(t))
}

fn am_alerts(alerts: Vec<AmAlert>, source: AlertSource) -> Result<Vec<Alert>, PayloadError> {
    let mut out = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.into_iter().enumerate() {
        let labels = a.labels.unwrap_or_default();
        if labels.is_empty() {
            return Err(PayloadError(format!(
                "alerts[{i}] has no labels; every alert needs at least `alertname`"
            )));
        }
        let raw = a.status.unwrap_or_default();
        let status = match raw.as_str() {
            "firing" => AlertStatus::Firing,
            "resolved" => AlertStatus::Resolved,
            other => {
                return Err(PayloadError(format!(
                    "alerts[{i}] has status `{}`; it must be `firing` or `resolved`",
                    crate::domain::rich::clip_plain(other, 40)
                )))
            }
        };
        let fp = a
            .fingerprint
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| fingerprint(&labels));
        // Grafana's links go with the annotations (one written there wins).
        let mut annotations = a.annotations;
        for (key, v) in [
            ("dashboardURL", a.dashboard_url),
            ("panelURL", a.panel_url),
            ("silenceURL", a.silence_url),
        ] {
            if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
                annotations.entry(key.to_string()).or_insert(v);
            }
        }
        out.push(Alert {
            source,
            status,
            fingerprint: fp,
            labels,
            annotations,
            starts_at: time(i, a.starts_at.as_deref())?,
            generator_url: a.generator_url.filter(|u| !u.is_empty()),
        });
    }
    Ok(out)
}

/// Alertmanager's webhook (version 4).
pub fn parse_alertmanager(body: &[u8]) -> Result<Vec<Alert>, PayloadError> {
    let p: AmPayload = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    if let Some(v) = &p.version {
        if v != "4" {
            return Err(PayloadError(format!(
                "webhook version `{v}` is not supported; Alertmanager sends version \"4\""
            )));
        }
    }
    am_alerts(p.alerts, AlertSource::Alertmanager)
}

/// Grafana's alerting webhook (same alert shape as Alertmanager's).
pub fn parse_grafana(body: &[u8]) -> Result<Vec<Alert>, PayloadError> {
    #[derive(Deserialize)]
    struct GrafanaPayload {
        alerts: Vec<AmAlert>,
    }
    let p: GrafanaPayload = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    am_alerts(p.alerts, AlertSource::Grafana)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericAlert {
    title: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    #[serde(default)]
    labels: Option<Labels>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GenericBody {
    Many(Vec<serde_json::Value>),
    One(serde_json::Value),
}

/// `{"title","severity","status","labels",…}` or a list of them.
pub fn parse_generic(body: &[u8]) -> Result<Vec<Alert>, PayloadError> {
    let values = match serde_json::from_slice::<GenericBody>(body).map_err(|e| json_error(&e))? {
        GenericBody::Many(v) => v,
        GenericBody::One(v) => vec![v],
    };
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.into_iter().enumerate() {
        let g: GenericAlert =
            serde_json::from_value(v).map_err(|e| PayloadError(format!("alerts[{i}]: {e}")))?;
        let title = g.title.unwrap_or_default();
        if title.trim().is_empty() {
            return Err(PayloadError(format!("alerts[{i}] has no `title`")));
        }
        let Some(status) = g.status.as_deref().and_then(|s| match s {
            "firing" => Some(AlertStatus::Firing),
            "resolved" => Some(AlertStatus::Resolved),
            _ => None,
        }) else {
            return Err(PayloadError(format!(
                "alerts[{i}] has status `{}`; it must be `firing` or `resolved`",
                crate::domain::rich::clip_plain(g.status.as_deref().unwrap_or(""), 40)
            )));
        };
        let mut labels = g.labels.unwrap_or_default();
        if labels.is_empty() {
            return Err(PayloadError(format!(
                "alerts[{i}] has no labels; give at least one, such as {{\"service\":\"web\"}}"
            )));
        }
        labels
            .entry("alertname".into())
            .or_insert_with(|| title.trim().to_string());
        if let Some(sev) = g.severity.filter(|s| !s.trim().is_empty()) {
            labels.entry("severity".into()).or_insert(sev);
        }
        let mut annotations = Labels::new();
        annotations.insert("summary".into(), title.trim().to_string());
        if let Some(d) = g.description.filter(|d| !d.trim().is_empty()) {
            annotations.insert("description".into(), d);
        }
        let fp = g
            .fingerprint
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| fingerprint(&labels));
        out.push(Alert {
            source: AlertSource::Generic,
            status,
            fingerprint: fp,
            labels,
            annotations,
            starts_at: None,
            generator_url: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_parse_and_match() {
        let l = labels(&[("alertname", "HighLatency"), ("service", "checkout")]);
        let ok = [
            "alertname=HighLatency",
            "service=~check.*",
            "service!=web",
            "env!~prod.*",
            "team=",
        ];
        for m in ok {
            assert!(Matcher::parse(m).unwrap().matches(&l), "{m}");
        }
        for m in ["service=check", "service=~check", "alertname!=HighLatency"] {
            assert!(!Matcher::parse(m).unwrap().matches(&l), "{m}");
        }
        assert!(Matcher::parse("nonsense").is_err());
        assert!(Matcher::parse("x=~(")
            .unwrap_err()
            .to_string()
            .contains("not a valid regular expression"));
        assert_eq!(Matcher::parse("a=~b").unwrap().to_string(), "a=~b");
    }

    #[test]
    fn the_alertmanager_fixture_parses() {
        let body = include_bytes!("../../tests/fixtures/alertmanager-firing.json");
        let alerts = parse_alertmanager(body).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.fingerprint, "fc743ab8546c68a4");
        assert_eq!(a.summary(), "HighLatency checkout: p99 latency above 2s");
        assert!(a.starts_at.is_some());
    }

    #[test]
    fn bad_payloads_name_the_alert() {
        let e = parse_alertmanager(br#"{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"}},{"status":"firing","labels":{}}]}"#)
            .unwrap_err();
        assert_eq!(
            e.0,
            "alerts[1] has no labels; every alert needs at least `alertname`"
        );
        let e = parse_alertmanager(br#"{"alerts":[{"status":"burning","labels":{"a":"b"}}]}"#)
            .unwrap_err();
        assert_eq!(
            e.0,
            "alerts[0] has status `burning`; it must be `firing` or `resolved`"
        );
        let e = parse_alertmanager(b"{\"alerts\":[}").unwrap_err();
        assert!(
            e.0.starts_with("malformed JSON at line 1, column 12"),
            "{}",
            e.0
        );
        let e = parse_generic(br#"[{"title":"x","status":"firing","labels":{"a":"b"}},{"title":"y","status":"on","labels":{"a":"b"}}]"#).unwrap_err();
        assert_eq!(
            e.0,
            "alerts[1] has status `on`; it must be `firing` or `resolved`"
        );
    }

    #[test]
    fn generic_alerts_get_a_name_severity_and_stable_fingerprint() {
        let a = parse_generic(br#"{"title":"Disk full","severity":"critical","status":"firing","labels":{"host":"db-2"}}"#).unwrap();
        assert_eq!(a[0].labels["alertname"], "Disk full");
        assert_eq!(a[0].labels["severity"], "critical");
        let b = parse_generic(br#"{"title":"Disk full","severity":"critical","status":"resolved","labels":{"host":"db-2"}}"#).unwrap();
        assert_eq!(a[0].fingerprint, b[0].fingerprint);
    }

    #[test]
    fn a_message_rule_reads_a_chat_line() {
        let rule = MessageRule {
            channel: crate::domain::ChannelName::parse("alerts").unwrap(),
            pattern: Regex::new(r"^\[(?P<status>FIRING|RESOLVED)(?::\d+)?\]\s+(?P<alertname>\S+)\s+(?P<service>\S+)(?:\s+\((?P<severity>\w+)\))?").unwrap(),
        };
        let a = rule.read("[FIRING:1] HighLatency web (critical)").unwrap();
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(
            a.labels,
            labels(&[
                ("alertname", "HighLatency"),
                ("service", "web"),
                ("severity", "critical")
            ])
        );
        let r = rule.read("[RESOLVED] HighLatency web (critical)").unwrap();
        assert_eq!(r.status, AlertStatus::Resolved);
        assert_eq!(r.fingerprint, a.fingerprint);
        assert!(rule.read("lunch anyone?").is_none());
    }
}
