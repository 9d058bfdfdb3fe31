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
