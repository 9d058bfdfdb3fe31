//! The one sanitiser of untrusted text: what a user, an alert, a customer or
//! a job wrote, cleaned where it enters the domain so that no adapter (the
//! operator's terminal, Discord, HTTP) ever gets a terminal escape or a
//! reordering of the text it shows.

/// Untrusted text made safe to show: control characters other than newline
/// and tab are removed (ESC, BEL, CR, DEL, the C1 controls…), and the bidi
/// overrides and isolates (U+202A–U+202E, U+2066–U+2069) are removed, so
/// that nothing moves the cursor, retitles a terminal or shows text in an
/// order other than it is stored.
pub fn clean_untrusted(s: &str) -> String {
    if !s.chars().any(unsafe_char) {
        return s.to_string();
    }
    s.chars().filter(|&c| !unsafe_char(c)).collect()
}

/// [`clean_untrusted`] for a string the caller owns: kept as it is (no copy)
/// when it is clean already, as nearly all text is.
pub fn clean_owned(s: String) -> String {
    if s.chars().any(unsafe_char) {
        clean_untrusted(&s)
    } else {
        s
    }
}

fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::clean_untrusted;

    #[test]
    fn escapes_and_controls_go_newlines_and_tabs_stay() {
        assert_eq!(
            clean_untrusted("a\x1b]0;pwned\x07\x1b[2Jb"),
            "a]0;pwned[2Jb"
        );
        assert_eq!(
            clean_untrusted("line 1\r\nline\t2\u{7f}\u{9b}"),
            "line 1\nline\t2"
        );
        assert_eq!(clean_untrusted("plain, ünïcode ✓"), "plain, ünïcode ✓");
    }

    #[test]
    fn bidi_overrides_are_neutralised() {
        assert_eq!(
            clean_untrusted("invoice\u{202E}fdp.exe \u{2066}x\u{2069}"),
            "invoicefdp.exe x"
        );
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{2067}', '\u{2068}',
        ] {
            assert_eq!(clean_untrusted(&format!("a{c}b")), "ab");
        }
    }
}
