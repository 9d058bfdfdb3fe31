//! `[support.inbox]`: the IMAP mailbox customers write to. Its schema, its
//! defaults and its validation, kept apart from the rest of `[support]`.
//!
//! ```toml
//! [support.inbox]
//! host = "imap.example.com"
//! port = 993                      # default: 993 for implicit, 143 otherwise
//! tls = "implicit"                # implicit | starttls | none (loopback only)
//! user = "support@example.com"
//! password_env = "OPSBOT_INBOX_PASSWORD"
//! mailbox = "INBOX"
//! poll = "60s"                    # when the server has no IDLE, and at most between looks
//! reopen_within = "14d"           # a customer's reply reopens a ticket resolved and closed this recently
//! max_mail_bytes = 10485760       # a larger mail is read for its headers only
//! per_sender_per_hour = 10        # mails that open or touch tickets, per sender
//! ca_file = "imap-ca.pem"         # optional: more roots to trust (PEM), beside the web's
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::problems::Validator;
use super::written::Written;
use super::EnvSecret;

/// `[support.inbox]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInbox {
    pub(super) host: Written<String>,
    #[serde(default)]
    pub(super) port: Option<Written<u16>>,
    #[serde(default = "default_tls")]
    pub(super) tls: Written<String>,
    pub(super) user: Written<String>,
    #[serde(default = "default_password_env")]
    pub(super) password_env: Written<String>,
    #[serde(default = "default_mailbox")]
    pub(super) mailbox: Written<String>,
    #[serde(default = "default_poll")]
    pub(super) poll: Written<String>,
    #[serde(default = "default_reopen_within")]
    pub(super) reopen_within: Written<String>,
    #[serde(default = "default_max_mail_bytes")]
    pub(super) max_mail_bytes: Written<u64>,
    #[serde(default = "default_per_sender_per_hour")]
    pub(super) per_sender_per_hour: Written<u32>,
    #[serde(default)]
    pub(super) ca_file: Option<Written<String>>,
}

fn default_tls() -> Written<String> {
    String::from("implicit").into()
}
fn default_password_env() -> Written<String> {
    String::from("OPSBOT_INBOX_PASSWORD").into()
}
fn default_mailbox() -> Written<String> {
    String::from("INBOX").into()
}
fn default_poll() -> Written<String> {
    String::from("60s").into()
}
fn default_reopen_within() -> Written<String> {
    String::from("14d").into()
}
fn default_max_mail_bytes() -> Written<u64> {
    (10 * 1024 * 1024).into()
}
fn default_per_sender_per_hour() -> Written<u32> {
    10.into()
}

/// How the IMAP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxTls {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain, then `STARTTLS` before logging in (port 143).
    StartTls,
    /// Plain text: only to a server on this machine.
    None,
}

impl InboxTls {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxTls::Implicit => "implicit",
            InboxTls::StartTls => "starttls",
            InboxTls::None => "none",
        }
    }
}

/// The mailbox the bot reads customer mail from.
#[derive(Clone, Debug)]
pub struct InboxConfig {
    pub host: String,
    pub port: u16,
    pub tls: InboxTls,
    pub user: String,
    /// Unset: the inbox is not watched (a warning says so).
    pub password: EnvSecret,
    pub mailbox: String,
    /// How long to wait between looks when the server has no IDLE, and
    /// the longest an IDLE lasts before looking again.
    pub poll: Duration,
    /// A customer's reply reopens a closed ticket resolved at most this
    /// long ago.
    pub reopen_within: chrono::Duration,
    /// A mail larger than this is read for its headers only.
    pub max_mail_bytes: u64,
    /// Mails from one sender that are taken in per hour; the rest are left
    /// unread in the mailbox for a person.
    pub per_sender_per_hour: u32,
    /// Certificates (PEM) trusted for the server besides the web's roots:
    /// a company's own CA.
    pub ca_file: Option<std::path::PathBuf>,
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Validator<'_> {
    /// `[support.inbox]`, if written: `None` when it is not, or is wrong
    /// (each mistake is a problem with its place).
    pub(super) fn validate_inbox(
        &mut self,
        raw: Option<&Written<RawInbox>>,
    ) -> Option<InboxConfig> {
        let raw = raw?;
        let mut ok = true;
        let key = |k: &str| format!("support.inbox.{k}");
        if raw.host.trim().is_empty() {
            self.error(
                key("host"),
                raw.host.span(),
                "name the IMAP server, such as \"imap.example.com\"".into(),
            );
            ok = false;
        }
        if raw.user.trim().is_empty() {
            self.error(
                key("user"),
                raw.user.span(),
                "name the mailbox's login, such as \"support@example.com\"".into(),
            );
            ok = false;
        }
        if raw.mailbox.trim().is_empty() || raw.mailbox.contains(['"', '\r', '\n', '\\']) {
            self.error(
                key("mailbox"),
                raw.mailbox.span(),
                "name a folder without quotes, backslashes or line breaks, such as \"INBOX\""
                    .into(),
            );
            ok = false;
        }
        let tls = match raw.tls.trim() {
            "implicit" => InboxTls::Implicit,
            "starttls" => InboxTls::StartTls,
            "none" => {
                if !is_loopback(&raw.host) {
                    self.error(
                        key("tls"),
                        raw.tls.span(),
                        format!(
                            "`none` sends the password in plain text: only for a server on this machine (127.0.0.1, ::1, localhost), not `{}`; use \"implicit\" (port 993) or \"starttls\" (port 143)",
                            crate::domain::rich::clip_plain(&raw.host, 80)
                        ),
                    );
                    ok = false;
                }
                InboxTls::None
            }
            other => {
                self.error(
                    key("tls"),
                    raw.tls.span(),
                    format!(
                        "`tls` must be one of implicit, starttls, none; got `{}`",
                        crate::domain::rich::clip_plain(other, 40)
                    ),
                );
                ok = false;
                InboxTls::Implicit
            }
        };
        let port = match &raw.port {
            Some(p) if **p == 0 => {
                self.error(
                    key("port"),
                    p.span(),
                    "must be a port from 1 to 65535".into(),
                );
                ok = false;
                0
            }
            Some(p) => **p,
            None if tls == InboxTls::Implicit => 993,
            None => 143,
        };
        let poll = match humantime::parse_duration(raw.poll.trim()) {
            Ok(d) if d >= Duration::from_millis(100) && d <= Duration::from_secs(29 * 60) => d,
            _ => {
                self.error(
                    key("poll"),
                    raw.poll.span(),
                    format!(
                        "`{}` is not a duration from 100ms to 29m, such as \"60s\"",
                        crate::domain::rich::clip_plain(&raw.poll, 40)
                    ),
                );
                ok = false;
                Duration::from_secs(60)
            }
        };
        let reopen_within = match humantime::parse_duration(raw.reopen_within.trim()) {
            Ok(d) if d <= Duration::from_secs(366 * 86_400) => {
                chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
            }
            _ => {
                self.error(
                    key("reopen_within"),
                    raw.reopen_within.span(),
                    format!(
                        "`{}` is not a duration of at most a year, such as \"14d\" (\"0s\": never reopen)",
                        crate::domain::rich::clip_plain(&raw.reopen_within, 40)
                    ),
                );
                ok = false;
                chrono::Duration::zero()
            }
        };
        if *raw.max_mail_bytes < 1024 {
            self.error(
                key("max_mail_bytes"),
                raw.max_mail_bytes.span(),
                "must be at least 1024 bytes, such as 10485760 (10 MiB)".into(),
            );
            ok = false;
        }
        if *raw.per_sender_per_hour == 0 {
            self.error(
                key("per_sender_per_hour"),
                raw.per_sender_per_hour.span(),
                "must be at least 1".into(),
            );
            ok = false;
        }
        let ca_file = match &raw.ca_file {
            Some(f) => {
                let dir = self.file.parent().unwrap_or(std::path::Path::new("."));
                let path = dir.join(f.trim());
                let pem = std::fs::read_to_string(&path).unwrap_or_default();
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    self.error(
                        key("ca_file"),
                        f.span(),
                        format!(
                            "`{}` is not a readable PEM file of certificates (-----BEGIN CERTIFICATE-----)",
                            path.display()
                        ),
                    );
                    ok = false;
                }
                Some(path)
            }
            None => None,
        };
        let password = EnvSecret::read(&raw.password_env);
        if password.value.is_none() {
            self.warn(
                key("password_env"),
                raw.password_env.span(),
                format!(
                    "{} is not set: the inbox is not watched until it is",
                    *raw.password_env
                ),
            );
        }
        if !ok {
            return None;
        }
        Some(InboxConfig {
            host: raw.host.trim().to_string(),
            port,
            tls,
            user: raw.user.trim().to_string(),
            password,
            mailbox: raw.mailbox.trim().to_string(),
            poll,
            reopen_within,
            max_mail_bytes: *raw.max_mail_bytes,
            per_sender_per_hour: *raw.per_sender_per_hour,
            ca_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts_are_those_of_this_machine() {
        for h in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
            "127.0.0.2",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "imap.example.com",
            "10.0.0.1",
            "0.0.0.0",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
