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

/// Untrusted free text (a vendor, a model, a serial, an LLDP name, a
/// warning) after [`safe_text`]: the only way to build one, so holding a
/// `SafeText` means the text is safe to store, log or show on a terminal.
/// Deserializing sanitises too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SafeText(String);

impl SafeText {
    /// `s` through [`safe_text`] with the default bound [`MAX_TEXT`].
    pub fn new(s: &str) -> Self {
        Self(safe_text(s, MAX_TEXT))
    }

    /// `s` through [`safe_text`] with a narrower bound.
    pub fn bounded(s: &str, max_chars: usize) -> Self {
        Self(safe_text(s, max_chars))
    }

    /// This text cut to `max_chars` (marked with `…` when cut).
    pub fn cut(&self, max_chars: usize) -> Self {
        Self::bounded(&self.0, max_chars)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text is empty or only spaces.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Display for SafeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SafeText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for SafeText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SafeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(d)?;
        Ok(Self::new(&raw))
    }
}

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

    #[test]
    fn safe_text_is_idempotent_and_the_only_way_in() {
        let once = SafeText::bounded("a\u{1b}]0;x\u{7}b and more", 8);
        assert_eq!(once.as_str(), "a__0_x_b…");
        assert_eq!(once.cut(8), once);
        let back: SafeText = serde_json::from_str("\"$(id)\"").unwrap();
        assert_eq!(back.as_str(), "_(id)");
    }
}
