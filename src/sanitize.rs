//! The one sanitiser for untrusted text (alert labels, descriptions,
//! customer messages, job output) before any adapter sees it.

/// `s` without control characters (newline and tab are kept) and without
/// the bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069), which
/// could make a terminal or a chat client show something other than what
/// was sent.
pub fn clean_untrusted(s: &str) -> String {
    s.chars().filter(|&c| !unsafe_char(c)).collect()
}

fn unsafe_char(c: char) -> bool {
    let control = c.is_control() && c != '\n' && c != '\t';
    let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    control || bidi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bidi_overrides_go_newlines_and_tabs_stay() {
        assert_eq!(
            clean_untrusted("a\x1b]0;pwned\x07\x1b[2Jb\u{202E}c\u{2066}d\n\te\u{1f}f\u{7f}"),
            "a]0;pwned[2Jbcd\n\tef"
        );
        assert_eq!(clean_untrusted("plain ünïcode"), "plain ünïcode");
    }
}
