//! Silences kept in Prometheus Alertmanager (issue 15): what the bot asks
//! of its API v2 (make a silence, end one), and a silence as Alertmanager
//! has it (made there, or by `amtool`), shown by `/alert silences`.

use serde::{Deserialize, Serialize};

use crate::domain::alert::{MatchOp, Matcher, Silence};
use crate::domain::Timestamp;

/// A matcher as Alertmanager's API v2 writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    /// Alertmanager's default when absent: an equality.
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl AmMatcher {
    pub fn of(m: &Matcher) -> AmMatcher {
        let (is_regex, is_equal) = match m.op {
            MatchOp::Eq => (false, true),
            MatchOp::Ne => (false, false),
            MatchOp::Re => (true, true),
            MatchOp::NotRe => (true, false),
        };
        AmMatcher {
            name: m.label.clone(),
            value: m.value.clone(),
            is_regex,
            is_equal,
        }
    }
}

impl std::fmt::Display for AmMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        };
        write!(f, "{}{op}{}", self.name, self.value)
    }
}

/// What the bot asks of Alertmanager, through the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum AmOrder {
    /// `POST /api/v2/silences` for the bot's silence `silence`.
    Create {
        silence: u64,
        matchers: Vec<AmMatcher>,
        starts_at: Timestamp,
        ends_at: Timestamp,
        created_by: String,
        comment: String,
    },
    /// `DELETE /api/v2/silence/{id}`: the silence ends now.
    Expire { id: String },
}

impl AmOrder {
    /// The order that makes the bot's silence `s` in Alertmanager. The
    /// comment ends with a mark ([`mark`]) by which a retry after a crash
    /// finds the silence it made already.
    pub fn create(s: &Silence) -> AmOrder {
        let said = s
            .comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("silenced from chat by {}", s.created_by));
        AmOrder::Create {
            silence: s.id,
            matchers: s.matchers.iter().map(AmMatcher::of).collect(),
            starts_at: s.created_at,
            ends_at: s.until,
            created_by: s.created_by.clone(),
            comment: format!("{said} {}", mark(s.id)),
        }
    }
}

/// The mark at the end of the comment of a silence the bot made.
pub fn mark(silence: u64) -> String {
    format!("[opsbot silence {silence}]")
}

/// The bot's silence whose mark ends `comment`, if any.
pub fn marked(comment: &str) -> Option<u64> {
    let rest = comment.trim_end().strip_suffix(']')?;
    let at = rest.rfind("[opsbot silence ")?;
    rest[at + "[opsbot silence ".len()..].parse().ok()
}

/// A silence in force in Alertmanager that the bot did not make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmSilence {
    /// Alertmanager's id (a UUID).
    pub id: String,
    pub matchers: Vec<AmMatcher>,
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

impl AmSilence {
    pub fn active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && self.ends_at > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_map_to_alertmanager_and_back_and_the_mark_is_read() {
        for (text, regex, equal) in [
            ("alertname=DiskFull", false, true),
            ("env!=dev", false, false),
            ("service=~db.*", true, true),
            ("instance!~web-[0-9]+", true, false),
        ] {
            let m = Matcher::parse(text).unwrap();
            let am = AmMatcher::of(&m);
            assert_eq!((am.is_regex, am.is_equal), (regex, equal), "{text}");
            assert_eq!(am.to_string(), text);
        }
        let absent: AmMatcher =
            serde_json::from_str(r#"{"name":"a","value":"b","isRegex":false}"#).unwrap();
        assert!(absent.is_equal);
        assert_eq!(marked("disk swap [opsbot silence 12]"), Some(12));
        assert_eq!(marked(&format!("x {}", mark(3))), Some(3));
        assert_eq!(marked("made in the UI"), None);
        assert_eq!(marked("[opsbot silence x]"), None);
    }
}
