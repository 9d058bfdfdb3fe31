//! Problems with their place: file, line, column and key. Serde's own
//! errors are placed by toml and named from the text around them; the
//! validator's by the span each [`Written`] value was read from.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::written::Written;
use crate::domain::{ChannelName, UserName};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One mistake (or warning) in a config file, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: Option<usize>,
    /// 1-based, where the reader knows it (TOML syntax and type errors).
    pub column: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A config that cannot be used: every problem found.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        writeln!(f, "the configuration has {errors} error(s):")?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// The 1-based line and column (in characters) of a byte offset: the one
/// way a place read by toml becomes a place a person reads.
pub(crate) fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let before = src.get(..offset.min(src.len())).unwrap_or(src);
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The most mistakes one file reports at once.
pub(super) const MAX_REPORTED: usize = 50;

/// Deserializes TOML text, reporting every mistake serde finds rather than
/// the first: after each, the entry at fault is blanked out (byte offsets
/// kept) and the text read again. A TOML syntax error stops there (what
/// follows it cannot be read reliably) and is reported with its line and
/// column; the others name their key (`http.body_limit`,
/// `teams.ops.channel` for a missing field).
pub(crate) fn deserialize_all<T: serde::de::DeserializeOwned>(
    file: &Path,
    src: &str,
) -> Result<T, Vec<Problem>> {
    let mut text = src.to_string();
    let mut problems: Vec<Problem> = Vec::new();
    for _ in 0..MAX_REPORTED {
        let e = match toml::from_str::<T>(&text) {
            Ok(v) if problems.is_empty() => return Ok(v),
            Ok(_) => break,
            Err(e) => e,
        };
        let doc = toml_edit::ImDocument::parse(text.as_str()).ok();
        if doc.is_none() && !problems.is_empty() {
            // Blanking made it unreadable: what was found stands.
            break;
        }
        let span = e.span();
        let found = match (&doc, &span) {
            (Some(doc), Some(span)) => entry_at(doc, &text, span.start),
            _ => None,
        };
        let message = e.message().trim().to_string();
        let key = match &found {
            Some((path, _)) => match missing_field(&message) {
                Some(field) if !path.is_empty() => format!("{path}.{field}"),
                Some(field) => field.to_string(),
                None => path.clone(),
            },
            None => String::new(),
        };
        // Blanking a wrong value can make it missing: said once.
        let again = !key.is_empty() && problems.iter().any(|p| p.key == key);
        if !again {
            let place = span.as_ref().map(|s| line_column(src, s.start));
            problems.push(Problem {
                severity: Severity::Error,
                file: file.to_path_buf(),
                line: place.map(|(line, _)| line),
                column: place.map(|(_, column)| column),
                key,
                message,
            });
        }
        let Some((_, region)) = found else { break };
        let blanked = blank(&text, region);
        if blanked == text {
            break;
        }
        text = blanked;
    }
    Err(problems)
}

/// `channel` in serde's "missing field `channel`".
pub(super) fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
}

/// `text` with the bytes of `region` turned to spaces (newlines kept), so
/// that every other offset stays where it was.
pub(super) fn blank(text: &str, region: Range<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if region.contains(&i) && c != '\n' {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn within(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// The key path of what sits at `offset` (a key, a value, a table header)
/// and the region of its whole entry: the `key = value` line of a table,
/// or a table from its header to the next one.
pub(super) fn entry_at(
    doc: &toml_edit::ImDocument<&str>,
    text: &str,
    offset: usize,
) -> Option<(String, Range<usize>)> {
    let mut headers = Vec::new();
    header_starts(doc.as_table(), &mut headers);
    headers.sort_unstable();
    let next_header = |at: usize| {
        headers
            .iter()
            .copied()
            .find(|h| *h > at)
            .unwrap_or(text.len())
    };
    let mut path = Vec::new();
    let region = walk_table(doc.as_table(), offset, &mut path, &next_header)?;
    let mut s = String::new();
    for p in &path {
        if !p.starts_with('[') && !s.is_empty() {
            s.push('.');
        }
        s.push_str(p);
    }
    Some((s, region))
}

/// Where every table header starts.
pub(super) fn header_starts(t: &toml_edit::Table, out: &mut Vec<usize>) {
    for (_, item) in t.iter() {
        match item {
            toml_edit::Item::Table(sub) => {
                if let Some(s) = sub.span() {
                    out.push(s.start);
                }
                header_starts(sub, out);
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for sub in a.iter() {
                    if let Some(s) = sub.span() {
                        out.push(s.start);
                    }
                    header_starts(sub, out);
                }
            }
            _ => {}
        }
    }
}

pub(super) fn walk_table(
    t: &toml_edit::Table,
    offset: usize,
    path: &mut Vec<String>,
    next_header: &dyn Fn(usize) -> usize,
) -> Option<Range<usize>> {
    use toml_edit::Item;
    for (k, item) in t.iter() {
        path.push(k.to_string());
        let key_span = t.key(k).and_then(|key| key.span());
        match item {
            Item::Value(v) => {
                if within(key_span.clone(), offset) || within(v.span(), offset) {
                    let end = v.span().map_or(offset + 1, |s| s.end);
                    let start = key_span.map_or(offset, |s| s.start);
                    walk_value(v, offset, path);
                    return Some(start.min(offset)..end.max(offset + 1));
                }
            }
            Item::Table(sub) => {
                if let Some(r) = walk_table(sub, offset, path, next_header) {
                    return Some(r);
                }
                if within(sub.span(), offset) || within(key_span, offset) {
                    let start = sub.span().map_or(offset, |s| s.start);
                    return Some(start..next_header(start));
                }
            }
            Item::ArrayOfTables(a) => {
                for (i, sub) in a.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    if let Some(r) = walk_table(sub, offset, path, next_header) {
                        return Some(r);
                    }
                    if within(sub.span(), offset) {
                        let start = sub.span().map_or(offset, |s| s.start);
                        return Some(start..next_header(start));
                    }
                    path.pop();
                }
            }
            Item::None => {}
        }
        path.pop();
    }
    None
}

/// Goes down into an inline table or array to the value at `offset`.
pub(super) fn walk_value(v: &toml_edit::Value, offset: usize, path: &mut Vec<String>) {
    match v {
        toml_edit::Value::InlineTable(t) => {
            for (k, x) in t.iter() {
                let key_span = t.key(k).and_then(|key| key.span());
                if within(key_span, offset) || within(x.span(), offset) {
                    path.push(k.to_string());
                    walk_value(x, offset, path);
                    return;
                }
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if within(x.span(), offset) {
                    path.push(format!("[{i}]"));
                    walk_value(x, offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Collects the problems that validation finds: each is placed where the
/// file writes the value at fault (its [`Written`] span), named by its key.
pub(crate) struct Validator<'a> {
    pub(super) file: &'a Path,
    pub(super) src: &'a str,
    pub(super) problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(file: &'a Path, src: &'a str) -> Self {
        Validator {
            file,
            src,
            problems: Vec::new(),
        }
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// A problem with `key`, on the line where `at` starts (none: a value
    /// the file does not write).
    pub(super) fn problem(
        &mut self,
        severity: Severity,
        key: impl Into<String>,
        at: Option<Range<usize>>,
        message: String,
    ) {
        let line = at.map(|s| line_column(self.src, s.start).0);
        self.problems.push(Problem {
            severity,
            file: self.file.to_path_buf(),
            line,
            column: None,
            key: key.into(),
            message,
        });
    }

    pub(crate) fn error(
        &mut self,
        key: impl Into<String>,
        at: Option<Range<usize>>,
        message: String,
    ) {
        self.problem(Severity::Error, key, at, message)
    }

    pub(crate) fn warn(
        &mut self,
        key: impl Into<String>,
        at: Option<Range<usize>>,
        message: String,
    ) {
        self.problem(Severity::Warning, key, at, message)
    }

    pub(super) fn user(
        &mut self,
        key: impl Into<String>,
        raw: &Written<String>,
    ) -> Option<UserName> {
        match UserName::parse(raw) {
            Ok(u) => Some(u),
            Err(e) => {
                self.error(key, raw.span(), e.to_string());
                None
            }
        }
    }

    pub(super) fn channel(
        &mut self,
        key: impl Into<String>,
        raw: &Written<String>,
    ) -> Option<ChannelName> {
        match ChannelName::parse(raw) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(key, raw.span(), e.to_string());
                None
            }
        }
    }
}
