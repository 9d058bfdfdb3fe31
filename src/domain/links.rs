//! An alert's links (issue 15): its runbook, dashboard, panel, source and
//! silence pages, from its annotations and payload, kept only when they are
//! http(s) URLs a browser (and Discord's link buttons) take.

use serde::{Deserialize, Serialize};

use crate::domain::alert::Alert;

/// A link shown with a ticket: a button on Discord, a line in the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// What it opens: `Runbook`, `Dashboard`, `Panel`, `Source`, `Silence`.
    pub label: String,
    pub url: String,
}

/// The longest URL kept: what a Discord link button takes.
pub const MAX_URL: usize = 512;

/// Where an alert's links are read from (annotation or payload field), in
/// the order they are shown, and what each is called.
pub const LINK_KEYS: [(&str, &str); 6] = [
    ("runbook_url", "Runbook"),
    ("dashboard_url", "Dashboard"),
    ("dashboardURL", "Dashboard"),
    ("panelURL", "Panel"),
    ("generatorURL", "Source"),
    ("silenceURL", "Silence"),
];

/// Whether annotation `key` holds one of the links (shown as a link, not
/// as an annotation).
pub fn is_link_key(key: &str) -> bool {
    LINK_KEYS.iter().any(|(k, _)| *k == key)
}

/// `s` as a web URL: `http://` or `https://`, a host (a name, an IPv4
/// address or a bracketed IPv6 one), an optional port, then printable
/// ASCII with no quote or bracket; at most [`MAX_URL`] characters.
pub fn web_url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > MAX_URL {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s["https://".len()..]
    } else if lower.starts_with("http://") {
        &s["http://".len()..]
    } else {
        return None;
    };
    // Printable ASCII only (an IDN host is written in punycode, other text
    // percent-encoded): no space, control, bidi or look-alike character.
    let bad = |c: char| !c.is_ascii_graphic() || "\"<>\\^`{|}".contains(c);
    if rest.chars().any(bad) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // No credentials in a link anyone may open.
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']')?;
            if h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return None;
            }
            (h, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && (authority.starts_with('[')
            || host.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            }));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    (host_ok && port_ok).then(|| s.to_string())
}

/// The links of an alert, in [`LINK_KEYS`] order, one per label; what is
/// not a web URL is left out.
pub fn alert_links(alert: &Alert) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    for (key, label) in LINK_KEYS {
        let value = match key {
            "generatorURL" => alert
                .generator_url
                .as_deref()
                .or_else(|| alert.annotations.get(key).map(String::as_str)),
            _ => alert.annotations.get(key).map(String::as_str),
        };
        let Some(url) = value.and_then(web_url) else {
            continue;
        };
        if out.iter().any(|l| l.label == label) {
            continue;
        }
        out.push(Link {
            label: label.to_string(),
            url,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{AlertSource, AlertStatus, Labels};

    #[test]
    fn only_web_urls_are_links() {
        for ok in [
            "https://runbooks.example.com/disk-full",
            "http://grafana:3000/d/abc?orgId=1&var-host=db-1#panel",
            "HTTPS://Example.COM/x",
            "http://127.0.0.1:9090/graph?g0.expr=up",
            "http://[::1]:9093/#/silences",
        ] {
            assert_eq!(web_url(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "javascript:alert(1)",
            "ftp://files.example.com/runbook",
            "file:///etc/passwd",
            "runbooks.example.com/disk",
            "http://",
            "http:///path",
            "https://exa mple.com",
            "https://example.com/a b",
            "https://user:pw@example.com/",
            "https://example.com:99999/",
            "https://-bad-.com/",
            "https://example.com/\u{202e}",
            "https://example.com/\"><script>",
        ] {
            assert_eq!(web_url(bad), None, "{bad:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert_eq!(web_url(&long), None);
    }

    #[test]
    fn an_alerts_links_come_in_order_one_per_kind_and_bad_ones_are_dropped() {
        let ann: Labels = [
            ("runbook_url", "ftp://wiki/disk"),
            ("dashboard_url", "https://grafana/d/1"),
            ("dashboardURL", "https://grafana/d/2"),
            ("panelURL", "https://grafana/d/1?viewPanel=3"),
            ("silenceURL", "https://am/#/silences/new"),
            ("summary", "disk full"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let a = Alert {
            source: AlertSource::Alertmanager,
            status: AlertStatus::Firing,
            labels: Labels::new(),
            annotations: ann,
            fingerprint: "f".into(),
            starts_at: None,
            generator_url: Some("http://prometheus:9090/graph".into()),
        };
        let links: Vec<(String, String)> = alert_links(&a)
            .into_iter()
            .map(|l| (l.label, l.url))
            .collect();
        let want = [
            ("Dashboard", "https://grafana/d/1"),
            ("Panel", "https://grafana/d/1?viewPanel=3"),
            ("Source", "http://prometheus:9090/graph"),
            ("Silence", "https://am/#/silences/new"),
        ];
        assert_eq!(
            links,
            want.map(|(l, u)| (l.to_string(), u.to_string())).to_vec()
        );
        assert!(is_link_key("runbook_url") && !is_link_key("summary"));
    }
}
