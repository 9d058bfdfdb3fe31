//! `[alerts.alertmanager]`: the Prometheus Alertmanager whose silences the
//! bot keeps (issue 15). With `url` set, `/alert silence` makes the silence
//! in Alertmanager through its API v2 and `/alert unsilence` ends it there;
//! the silences made in Alertmanager are read every `poll` for
//! `/alert silences`. Unset: silences are the bot's own, as before.
//!
//! ```toml
//! [alerts.alertmanager]
//! url = "http://127.0.0.1:9093"  # its web address (--web.external-url)
//! poll = "30s"                   # how often its silences are read
//! timeout = "5s"                 # each request to it
//! ```

use serde::Deserialize;

use super::written::Written;
use crate::config::Validator;

/// `[alerts.alertmanager]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertmanager {
    pub(super) url: Written<String>,
    #[serde(default)]
    pub(super) poll: Option<Written<String>>,
    #[serde(default)]
    pub(super) timeout: Option<Written<String>>,
}

/// The Alertmanager the bot keeps silences in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// Its base URL, without a trailing `/`.
    pub url: String,
    /// How often its silences are read.
    pub poll: std::time::Duration,
    /// The longest one request to it may take.
    pub timeout: std::time::Duration,
}

impl Validator<'_> {
    pub(super) fn validate_alertmanager(
        &mut self,
        raw: Option<&Written<RawAlertmanager>>,
    ) -> Option<AlertmanagerConfig> {
        let raw = raw?;
        let key = |k: &str| format!("alerts.alertmanager.{k}");
        let url = raw.url.trim().trim_end_matches('/');
        let parsed = reqwest_free_url(url);
        if !parsed {
            self.error(
                key("url"),
                raw.url.span(),
                format!(
                    "`{}` is not an http(s) URL; write Alertmanager's address, such as \"http://127.0.0.1:9093\"",
                    raw.url
                ),
            );
        }
        let dur = |v: &mut Self, k: &str, s: Option<&Written<String>>, default: u64, max: u64| {
            let Some(s) = s else {
                return std::time::Duration::from_secs(default);
            };
            match humantime::parse_duration(s) {
                Ok(d) if d.as_millis() >= 100 && d.as_secs() <= max => d,
                _ => {
                    v.error(
                        key(k),
                        s.span(),
                        format!(
                            "`{s}` is not a duration from 100ms to {}, such as \"{default}s\"",
                            humantime::format_duration(std::time::Duration::from_secs(max))
                        ),
                    );
                    std::time::Duration::from_secs(default)
                }
            }
        };
        let poll = dur(self, "poll", raw.poll.as_ref(), 30, 3600);
        let timeout = dur(self, "timeout", raw.timeout.as_ref(), 5, 60);
        parsed.then(|| AlertmanagerConfig {
            url: url.to_string(),
            poll,
            timeout,
        })
    }
}

/// Whether `url` is `http://HOST…` or `https://HOST…` with a host.
fn reqwest_free_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace) && !host.starts_with(':')
    })
}

#[cfg(test)]
mod tests {
    use super::reqwest_free_url;

    #[test]
    fn only_http_urls_with_a_host_are_alertmanager_addresses() {
        for ok in [
            "http://127.0.0.1:9093",
            "https://am.example.com/sub",
            "http://am",
        ] {
            assert!(reqwest_free_url(ok), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1:9093",
            "ftp://am",
            "http://",
            "http://:9093",
            "http://a b",
        ] {
            assert!(!reqwest_free_url(bad), "{bad}");
        }
    }
}
