//! Rich text that adapters render: a message is a list of segments. Our own
//! words are [`Seg::Text`] and [`Seg::Bold`]; anything a user, an alert or a
//! customer wrote is [`Seg::Quoted`], which an adapter must escape (Discord) or
//! may print as is (console); a ping is [`Seg::Mention`], the only way a message
//! names someone it means to notify. The words themselves are built in
//! `engine::messages`.

use serde::{Deserialize, Serialize};

use crate::domain::UserName;

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Seg {
    /// Our own words, plain.
    Text(String),
    /// Our own words, emphasised.
    Bold(String),
    /// Untrusted text (titles, notes, comments, alert and customer text).
    Quoted(String),
    /// A person the message means to notify.
    Mention(UserName),
    /// Untrusted text shown as a block of code (a job's output): an adapter
    /// that can (Discord) fences it, and keeps a fence inside from closing it.
    Code(String),
    /// A moment: `plain` as the console shows it; an adapter that can
    /// (Discord: `<t:UNIX:f>`) shows it in each reader's own time zone, and
    /// when `relative` (something due, or in force since or until then)
    /// also how far it is from now (Discord: `<t:UNIX:f> (<t:UNIX:R>)`,
    /// "in 2 hours", kept current by the reader's client).
    Time {
        unix: i64,
        relative: bool,
        plain: String,
    },
}

/// A message body made of segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rich(pub Vec<Seg>);

impl Rich {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, s: impl Into<String>) -> Self {
        self.0.push(Seg::Text(s.into()));
        self
    }

    pub fn bold(mut self, s: impl Into<String>) -> Self {
        self.0.push(Seg::Bold(s.into()));
        self
    }

    pub fn quoted(mut self, s: impl Into<String>) -> Self {
        self.0.push(Seg::Quoted(s.into()));
        self
    }

    pub fn code(mut self, s: impl Into<String>) -> Self {
        self.0.push(Seg::Code(s.into()));
        self
    }

    /// A moment, shown to the console as `at` formatted with `fmt` (a
    /// chrono format such as `%Y-%m-%d %H:%M UTC`).
    pub fn time(mut self, at: &crate::domain::Timestamp, fmt: &str) -> Self {
        self.0.push(Seg::Time {
            unix: at.timestamp(),
            relative: false,
            plain: at.format(fmt).to_string(),
        });
        self
    }

    /// A moment something is due, or in force since or until: as
    /// [`Rich::time`] for the console; an adapter that can also shows how
    /// far it is from now.
    pub fn relative(mut self, at: &crate::domain::Timestamp, fmt: &str) -> Self {
        self.0.push(Seg::Time {
            unix: at.timestamp(),
            relative: true,
            plain: at.format(fmt).to_string(),
        });
        self
    }

    pub fn mention(mut self, who: &UserName) -> Self {
        self.0.push(Seg::Mention(who.clone()));
        self
    }

    pub fn append(mut self, other: Rich) -> Self {
        self.0.extend(other.0);
        self
    }

    /// The people this message pings.
    pub fn mentions(&self) -> Vec<UserName> {
        let mut out: Vec<UserName> = Vec::new();
        for seg in &self.0 {
            if let Seg::Mention(u) = seg {
                if !out.contains(u) {
                    out.push(u.clone());
                }
            }
        }
        out
    }

    /// As the console shows it: plain text, mentions as `@name`.
    pub fn to_plain(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Text(s) | Seg::Bold(s) | Seg::Quoted(s) | Seg::Code(s) => out.push_str(s),
                Seg::Time { plain, .. } => out.push_str(plain),
                Seg::Mention(u) => {
                    out.push('@');
                    out.push_str(u.as_str());
                }
            }
        }
        out
    }
}

impl From<&str> for Rich {
    fn from(s: &str) -> Self {
        Rich::new().text(s)
    }
}

impl From<String> for Rich {
    fn from(s: String) -> Self {
        Rich::new().text(s)
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn clip_plain(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Untrusted text on one line: newlines and tabs become spaces, cut to `max`.
pub fn one_line(s: &str, max: usize) -> String {
    let mut flat = String::with_capacity(s.len());
    let mut in_break = false;
    for c in s.chars() {
        if c.is_control() {
            if !in_break {
                flat.push(' ');
            }
            in_break = true;
        } else {
            flat.push(c);
            in_break = false;
        }
    }
    clip_plain(flat.trim(), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rendering_and_mentions() {
        let bob = UserName::parse("bob").unwrap();
        let r = Rich::new()
            .text("to ")
            .mention(&bob)
            .text(": ")
            .quoted("@everyone look")
            .mention(&bob);
        assert_eq!(r.to_plain(), "to @bob: @everyone look@bob");
        assert_eq!(r.mentions(), vec![bob]);
    }

    #[test]
    fn clipping_marks_the_cut() {
        assert_eq!(clip_plain("abcdef", 4), "abc…");
        assert_eq!(clip_plain("abc", 4), "abc");
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
        assert_eq!(one_line("a\r\nBcc: x", 20), "a Bcc: x");
    }
}
