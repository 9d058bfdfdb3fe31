//! Text for Discord: escaped, rendered with its mentions, cut to the limits.

use super::*;

/// Discord's limit on a message's content.
pub const MAX_CONTENT: usize = 2000;

/// Escapes text someone else wrote so it cannot format, link or ping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '(' | ')' | '<' | ':' => {
                out.push('\\');
                out.push(c);
            }
            // `@everyone`, `@here` and `<@id>` never form.
            '@' => out.push_str("@\u{200b}"),
            c => out.push(c),
        }
    }
    out
}

/// A message body as Discord markdown, and the user ids it pings.
pub fn render(body: &Rich, config: &Config) -> (String, Vec<u64>) {
    let mut out = String::new();
    let mut pings = Vec::new();
    for seg in &body.0 {
        match seg {
            Seg::Text(t) => out.push_str(t),
            Seg::Bold(t) => {
                out.push_str("**");
                out.push_str(&escape(t));
                out.push_str("**");
            }
            Seg::Quoted(t) => out.push_str(&escape(t)),
            Seg::Code(t) => out.push_str(&code_block(t)),
            // Every reader sees it in their own time zone; a deadline or an
            // end also as how far it is from now.
            Seg::Time { unix, relative, .. } => {
                out.push_str(&format!("<t:{unix}:f>"));
                if *relative {
                    out.push_str(&format!(" (<t:{unix}:R>)"));
                }
            }
            Seg::Mention(u) => match config.discord.user_id(u) {
                Some(id) => {
                    out.push_str(&format!("<@{id}>"));
                    if !pings.contains(&id) {
                        pings.push(id);
                    }
                }
                None => {
                    out.push('@');
                    out.push_str(&escape(u.as_str()));
                }
            },
        }
    }
    (cut(&out, MAX_CONTENT), pings)
}

/// Text as a Discord code block: nothing inside is markdown, and a run of
/// backticks inside cannot close the fence (a zero-width space breaks it).
pub fn code_block(t: &str) -> String {
    let mut body = t.replace("```", "`\u{200b}`\u{200b}`");
    if body.ends_with('`') {
        body.push('\u{200b}');
    }
    let nl = if body.starts_with('\n') { "" } else { "\n" };
    format!("```{nl}{}\n```", body.trim_end_matches('\n'))
}

/// Cuts text to `max` characters, saying so.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let note = "… (cut: too long for Discord)";
    let keep = max - note.chars().count();
    let mut out: String = s.chars().take(keep).collect();
    // Never end inside an escape.
    while out.ends_with('\\') {
        out.pop();
    }
    out.push_str(note);
    out
}
