//! `[status]` and `[http] public_url`: the public pages. The status page
//! lists the services of `[services]` and the components named here, and
//! customer mails carry a link to the customer's page when the bot knows
//! the address the public reaches it at.
//!
//! ```toml
//! [http]
//! public_url = "https://status.example.com"   # unset: no link in mails
//!
//! [status]
//! title = "Example status"
//! components = ["api", "checkout"]            # besides the [services]
//! ```

use serde::Deserialize;

use super::written::Written;
use crate::config::Validator;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStatus {
    pub(super) title: Written<String>,
    pub(super) components: Vec<Written<String>>,
}

impl Default for RawStatus {
    fn default() -> Self {
        Self {
            title: String::from("Service status").into(),
            components: Vec::new(),
        }
    }
}

/// The status page's settings.
#[derive(Clone, Debug)]
pub struct StatusConfig {
    /// The page's heading.
    pub title: String,
    /// What the page lists, in order: the services of `[services]`, then
    /// the components named in `[status]`.
    pub components: Vec<String>,
}

impl StatusConfig {
    /// Whether `/status set service:NAME` names something the page lists.
    pub fn lists(&self, name: &str) -> bool {
        self.components.iter().any(|c| c == name)
    }
}

/// The longest component name.
const MAX_NAME: usize = 64;

impl Validator<'_> {
    /// `[status]`, with the names of `[services]` first.
    pub(super) fn validate_status(&mut self, raw: &RawStatus, services: &[String]) -> StatusConfig {
        let mut components: Vec<String> = services.to_vec();
        let title = raw.title.trim();
        if title.is_empty() || title.chars().count() > 100 {
            self.error(
                "status.title",
                raw.title.span(),
                "the status page's title must be 1 to 100 characters".into(),
            );
        }
        for (i, c) in raw.components.iter().enumerate() {
            let ok = !c.is_empty()
                && c.len() <= MAX_NAME
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '-' | '_' | '.')
                });
            if !ok {
                self.error(
                    format!("status.components[{i}]"),
                    c.span(),
                    format!(
                        "`{}` is not a component name: use lowercase letters, digits, `-`, `_` or `.` (at most {MAX_NAME})",
                        crate::domain::rich::clip_plain(c, 40)
                    ),
                );
            } else if components.iter().any(|x| x == c.as_str()) {
                self.error(
                    format!("status.components[{i}]"),
                    c.span(),
                    format!(
                        "`{}` is listed twice (a service is listed already)",
                        c.as_str()
                    ),
                );
            } else {
                components.push(c.to_string());
            }
        }
        StatusConfig {
            title: title.to_string(),
            components,
        }
    }

    /// `[http] public_url`: an http(s) URL without a query, kept without its
    /// trailing `/`.
    pub(super) fn validate_public_url(&mut self, raw: Option<&Written<String>>) -> Option<String> {
        let raw = raw?;
        let url = raw.trim().trim_end_matches('/');
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() > "https://".len()
            && !url.contains(['?', '#', ' ', '"', '<', '>']);
        if !ok {
            self.error(
                "http.public_url",
                raw.span(),
                format!(
                    "`{}` is not an http(s) URL without a query, such as \"https://support.example.com\"",
                    crate::domain::rich::clip_plain(raw, 80)
                ),
            );
            return None;
        }
        Some(url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, Severity};

    const BASE: &str = "\n[roles]\noperators = [\"olivia\"]\n";

    fn errors(extra: &str) -> Vec<(Option<usize>, String, String)> {
        match Config::parse(Path::new("/etc/opsbot/bot.toml"), &format!("{BASE}{extra}")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .filter(|p| p.severity == Severity::Error)
                .map(|p| (p.line, p.key, p.message))
                .collect(),
        }
    }

    #[test]
    fn the_status_page_lists_its_components_and_the_public_url_loses_its_slash() {
        let src = format!(
            "{BASE}[http]\npublic_url = \"https://support.example.com/\"\n[status]\ntitle = \"Acme\"\ncomponents = [\"api\", \"checkout\"]\n"
        );
        let c = Config::parse(Path::new("/etc/opsbot/bot.toml"), &src)
            .unwrap()
            .config;
        assert_eq!(c.status.components, ["api", "checkout"]);
        assert!(c.status.lists("api") && !c.status.lists("web"));
        assert_eq!(c.status.title, "Acme");
        assert_eq!(
            c.http.public_url.as_deref(),
            Some("https://support.example.com")
        );
        let c = Config::parse(Path::new("/etc/opsbot/bot.toml"), BASE)
            .unwrap()
            .config;
        assert_eq!(c.http.public_url, None);
        assert!(c.status.components.is_empty());
    }

    #[test]
    fn bad_status_keys_are_named_with_their_place() {
        let got = errors("[status]\ncolour = 1\n");
        assert!(
            got.iter()
                .any(|(_, k, m)| k == "status.colour" && m.contains("unknown field")),
            "{got:?}"
        );
        let got = errors("[status]\ncomponents = [\"API\", \"web\", \"web\"]\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].1, "status.components[0]");
        assert!(
            got[0].2.contains("`API` is not a component name"),
            "{got:?}"
        );
        assert_eq!(got[1].1, "status.components[2]");
        assert!(got[1].2.contains("listed twice"), "{got:?}");
        assert!(got.iter().all(|(line, _, _)| *line == Some(5)), "{got:?}");
        let got = errors("[http]\npublic_url = \"support.example.com\"\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, "http.public_url");
        assert_eq!(got[0].0, Some(5));
        assert!(got[0].2.contains("is not an http(s) URL"), "{got:?}");
        let got = errors("[http]\npublic_url = \"https://x.example/?a=1\"\n");
        assert_eq!(got.len(), 1, "{got:?}");
    }
}
