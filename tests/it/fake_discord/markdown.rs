//! Where Discord renders markdown, and what a reader sees there.
//!
//! Discord renders markdown (and consumes `\` escapes) in a message's
//! content, an embed's title and description, and its fields' names and
//! values. It renders none in an embed's footer or author name, a button's
//! label, a select menu's options and placeholder, a thread's or forum
//! post's name, or the URL of an embed's title: there a backslash is shown
//! as written.
//!
//! The model follows Discord's parser (simple-markdown) where text from
//! others could trip it: a backslash before any character that is neither
//! a letter, a digit nor a space is consumed and the character shown as is;
//! `**`, `__`, `~~`, `||`, `*`, `_` (at a word's edge) and `` ` `` around
//! something format it; `<@id>`, `<@!id>`, `<@&id>`, `<#id>`, `<t:unix:style>`
//! become a mention or a timestamp; `[text](url)` a masked link; `# `, `## `,
//! `### `, `-# `, `> `, `>>> ` at a line's start a heading, a small line or a
//! quote; ```` ``` ```` fences a block, inside which nothing is markdown. A
//! zero-width space is not seen.

use regex::Regex;
use serde_json::{json, Value};

/// One place of a message (or a channel's name) and what its reader sees.
#[derive(Clone, Debug)]
pub struct Place {
    /// `content`, `embeds.0.title`, `components.0.0.label`, `name`, …
    pub at: String,
    /// Whether Discord renders markdown there.
    pub markdown: bool,
    /// As the bot sent it.
    pub raw: String,
    /// As the reader sees it.
    pub seen: String,
    /// The formatting Discord applied (`bold`, `italic`, `code`,
    /// `mention`, `link`, `heading`, …), in order.
    pub formatting: Vec<String>,
}

/// What a reader sees of `raw` where Discord renders markdown.
pub fn markdown(raw: &str) -> (String, Vec<String>) {
    let mut formatting = Vec::new();
    let mut seen = String::new();
    // Code blocks first: nothing inside is markdown, escapes included.
    let mut rest = raw;
    while let Some(i) = rest.find("```") {
        let (before, after) = rest.split_at(i);
        match after[3..].find("```") {
            Some(j) => {
                seen.push_str(&inline(before, &mut formatting));
                let body = &after[3..3 + j];
                let body = body.split_once('\n').map_or(body, |(lang, b)| {
                    if lang.chars().all(|c| c.is_ascii_alphanumeric()) {
                        b
                    } else {
                        body
                    }
                });
                formatting.push("code block".into());
                seen.push_str(body);
                rest = &after[3 + j + 3..];
            }
            None => break,
        }
    }
    seen.push_str(&inline(rest, &mut formatting));
    (seen.replace('\u{200b}', ""), formatting)
}

/// What a reader sees where Discord renders no markdown: the text as
/// written (a zero-width space is not seen).
pub fn literal(raw: &str) -> String {
    raw.replace('\u{200b}', "")
}

/// A character of the text, and whether a backslash escaped it.
#[derive(Clone)]
struct Ch {
    c: char,
    escaped: bool,
    /// Consumed as a marker of formatting.
    gone: bool,
    /// What Discord shows instead (a mention's name, a timestamp).
    shown: Option<String>,
}

fn inline(raw: &str, formatting: &mut Vec<String>) -> String {
    let mut chars: Vec<Ch> = Vec::new();
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(&n) = it.peek() {
                if !n.is_alphanumeric() && !n.is_whitespace() {
                    it.next();
                    chars.push(Ch {
                        c: n,
                        escaped: true,
                        gone: false,
                        shown: None,
                    });
                    continue;
                }
            }
        }
        chars.push(Ch {
            c,
            escaped: false,
            gone: false,
            shown: None,
        });
    }
    line_starts(&mut chars, formatting);
    tokens(&mut chars, formatting);
    for (marker, name) in [
        ("`", "code"),
        ("**", "bold"),
        ("__", "underline"),
        ("~~", "strikethrough"),
        ("||", "spoiler"),
        ("*", "italic"),
        ("_", "italic"),
    ] {
        pairs(&mut chars, marker, name, formatting);
    }
    let mut out = String::new();
    for c in chars.iter().filter(|c| !c.gone) {
        match &c.shown {
            Some(s) => out.push_str(s),
            None => out.push(c.c),
        }
    }
    out
}

/// Whether `marker` starts at `i`, unescaped and not consumed.
fn at(chars: &[Ch], i: usize, marker: &str) -> bool {
    let m: Vec<char> = marker.chars().collect();
    i + m.len() <= chars.len()
        && m.iter()
            .enumerate()
            .all(|(k, c)| chars[i + k].c == *c && !chars[i + k].escaped && !chars[i + k].gone)
}

fn pairs(chars: &mut [Ch], marker: &str, name: &str, formatting: &mut Vec<String>) {
    let n = marker.chars().count();
    let word = |chars: &[Ch], i: usize| chars.get(i).is_some_and(|c| c.c.is_alphanumeric());
    let space = |chars: &[Ch], i: usize| chars.get(i).is_none_or(|c| c.c.is_whitespace());
    let mut i = 0;
    while i < chars.len() {
        let opens = at(chars, i, marker)
            && match marker {
                "_" => (i == 0 || !word(chars, i - 1)) && !space(chars, i + 1),
                "*" => !space(chars, i + 1) && !at(chars, i + 1, "*"),
                _ => true,
            };
        if !opens {
            i += 1;
            continue;
        }
        let close = (i + n + 1..chars.len()).find(|&j| {
            at(chars, j, marker)
                && match marker {
                    "_" => !word(chars, j + 1),
                    "*" => !space(chars, j - 1) && !at(chars, j + 1, "*"),
                    _ => true,
                }
        });
        match close {
            Some(j) => {
                for k in (i..i + n).chain(j..j + n) {
                    chars[k].gone = true;
                }
                formatting.push(name.to_string());
                i = j + n;
            }
            None => i += 1,
        }
    }
}

/// Mentions, timestamps and masked links: what Discord makes of them is
/// not their text.
fn tokens(chars: &mut [Ch], formatting: &mut Vec<String>) {
    // Only unescaped `<…>` and `[…](…)` form; find them in a string where
    // every escaped character is masked.
    let masked: String = chars
        .iter()
        .map(|c| if c.escaped { '\u{1}' } else { c.c })
        .collect();
    let re = Regex::new(
        r"<@!?(\d+)>|<@&(\d+)>|<#(\d+)>|<t:(-?\d+)(?::[tTdDfFR])?>|\[[^\]\u{1}]+\]\((https?://[^)\s\u{1}]+)\)",
    )
    .unwrap();
    let spans: Vec<(usize, usize, String, String)> = re
        .captures_iter(&masked)
        .map(|m| {
            let all = m.get(0).unwrap();
            let (kind, shown) = if let Some(u) = m.get(1) {
                ("mention", format!("@user-{}", u.as_str()))
            } else if let Some(r) = m.get(2) {
                ("role mention", format!("@role-{}", r.as_str()))
            } else if let Some(c) = m.get(3) {
                ("channel mention", format!("#channel-{}", c.as_str()))
            } else if let Some(t) = m.get(4) {
                ("timestamp", format!("[time {}]", t.as_str()))
            } else {
                let text = all.as_str();
                let label = &text[1..text.find("](").unwrap_or(1)];
                ("link", label.to_string())
            };
            // Byte offsets to char offsets.
            let start = masked[..all.start()].chars().count();
            let end = start + all.as_str().chars().count();
            (start, end, kind.to_string(), shown)
        })
        .collect();
    for (start, end, kind, shown) in spans.into_iter().rev() {
        formatting.push(kind);
        for c in &mut chars[start..end] {
            // No marker forms inside it.
            c.escaped = true;
            c.gone = true;
        }
        chars[start].gone = false;
        chars[start].shown = Some(shown);
    }
}

/// Headings, small lines and quotes at the start of a line.
fn line_starts(chars: &mut [Ch], formatting: &mut Vec<String>) {
    let mut start = true;
    for i in 0..chars.len() {
        if start {
            for (marker, name) in [
                ("### ", "heading"),
                ("## ", "heading"),
                ("# ", "heading"),
                ("-# ", "subtext"),
                (">>> ", "quote"),
                ("> ", "quote"),
            ] {
                if at(chars, i, marker) {
                    for c in &mut chars[i..i + marker.len()] {
                        c.gone = true;
                    }
                    formatting.push(name.to_string());
                    break;
                }
            }
        }
        start = chars[i].c == '\n';
    }
}

/// Every place of a message (as the fake returns it) where text shows,
/// with what its reader sees.
pub fn places(message: &Value) -> Vec<Place> {
    let mut out = Vec::new();
    let mut add = |at: String, markdown_here: bool, v: &Value| {
        let Some(raw) = v.as_str() else { return };
        let (seen, formatting) = if markdown_here {
            markdown(raw)
        } else {
            (literal(raw), Vec::new())
        };
        out.push(Place {
            at,
            markdown: markdown_here,
            raw: raw.to_string(),
            seen,
            formatting,
        });
    };
    add("content".into(), true, &message["content"]);
    for (i, e) in message["embeds"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        add(format!("embeds.{i}.title"), true, &e["title"]);
        add(format!("embeds.{i}.url"), false, &e["url"]);
        add(format!("embeds.{i}.description"), true, &e["description"]);
        add(
            format!("embeds.{i}.footer.text"),
            false,
            &e["footer"]["text"],
        );
        add(
            format!("embeds.{i}.author.name"),
            false,
            &e["author"]["name"],
        );
        for (k, f) in e["fields"].as_array().into_iter().flatten().enumerate() {
            add(format!("embeds.{i}.fields.{k}.name"), true, &f["name"]);
            add(format!("embeds.{i}.fields.{k}.value"), true, &f["value"]);
        }
    }
    for (r, row) in message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (k, c) in row["components"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            add(format!("components.{r}.{k}.label"), false, &c["label"]);
            add(
                format!("components.{r}.{k}.placeholder"),
                false,
                &c["placeholder"],
            );
            for (o, opt) in c["options"].as_array().into_iter().flatten().enumerate() {
                add(
                    format!("components.{r}.{k}.options.{o}.label"),
                    false,
                    &opt["label"],
                );
                add(
                    format!("components.{r}.{k}.options.{o}.description"),
                    false,
                    &opt["description"],
                );
            }
        }
    }
    out
}

/// A channel's (thread's, forum post's) name as a place: no markdown.
pub fn name_place(name: &str) -> Place {
    Place {
        at: "name".into(),
        markdown: false,
        raw: name.to_string(),
        seen: literal(name),
        formatting: Vec::new(),
    }
}

/// The places as JSON, for a failure message.
pub fn to_json(places: &[Place]) -> Value {
    Value::Array(
        places
            .iter()
            .map(|p| {
                json!({"at": p.at, "markdown": p.markdown, "raw": p.raw, "seen": p.seen,
                       "formatting": p.formatting})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_consumed_where_markdown_renders_and_shown_where_it_does_not() {
        let (seen, f) = markdown("\\*\\*x\\*\\* \\_y\\_ \\`z\\` \\<@123\\> @\u{200b}everyone");
        assert_eq!(seen, "**x** _y_ `z` <@123> @everyone");
        assert!(f.is_empty(), "{f:?}");
        let (seen, f) = markdown("@\u{200b}everyone \\<@123>");
        assert_eq!(seen, "@everyone <@123>");
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(literal(r"\*x\*"), r"\*x\*");
    }

    #[test]
    fn unescaped_markers_format() {
        let (seen, f) = markdown("**x** _y_ `z` <@123> snake_case_name 2*3");
        assert_eq!(seen, "x y z @user-123 snake_case_name 2*3");
        assert_eq!(f, ["mention", "code", "bold", "italic"]);
        let (seen, f) = markdown("# big\n> quoted [site](https://e.x) <t:100:R>");
        assert_eq!(seen, "big\nquoted site [time 100]");
        assert_eq!(f, ["heading", "quote", "timestamp", "link"]);
        let (seen, f) = markdown("```\n**a** \\*\n```");
        assert_eq!(seen, "**a** \\*\n");
        assert_eq!(f, ["code block"]);
    }
}
