//! The one sanitiser for untrusted text (agent strings, switch output) that
//! is stored, shown on a terminal or put in a message: every character
//! outside a small printable set becomes `_`, and the text is cut to a
//! bounded length, so no control sequence, bidi override or newline ever
//! reaches a terminal, a log line or a file.

/// Characters kept as they are; everything else becomes `_`.
pub fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            ' ' | '.' | ',' | ':' | '/' | '(' | ')' | '@' | '+' | '%' | '=' | '_' | '-'
        )
}

/// At most `max_chars` characters of `s`, each outside [`is_safe_char`]
/// replaced by `_`; `…` marks a cut.
pub fn safe_text(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max_chars)
        .map(|c| if is_safe_char(c) { c } else { '_' })
        .collect();
    if s.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// The bound used where a caller has no narrower one (matches the agent's
/// own cap on values).
pub const MAX_TEXT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_and_bidi_become_underscores() {
        assert_eq!(safe_text("a\x1b[31mred\n", 64), "a__31mred_");
        assert_eq!(safe_text("evil\u{202e}txt", 64), "evil_txt");
        assert_eq!(
            safe_text("Dell Inc. (R750) 2/3", 64),
            "Dell Inc. (R750) 2/3"
        );
        assert_eq!(safe_text("$(reboot);`x`", 64), "_(reboot)__x_");
    }

    #[test]
    fn long_text_is_cut_and_marked() {
        assert_eq!(safe_text("abcdef", 3), "abc…");
        assert_eq!(safe_text("abc", 3), "abc");
        assert_eq!(safe_text("ééé", 2), "__…");
    }
}
