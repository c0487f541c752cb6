//! Cutting text for display: by characters or terminal columns, never by bytes (a byte range
//! that ends inside a multibyte character panics). Every "show the first N of this" goes here.

use std::borrow::Cow;
use unicode_width::UnicodeWidthChar;

/// `text` whole if it has at most `max` characters, else its first `max` characters and `…`.
pub fn clip_chars(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((cut, _)) => Cow::Owned(format!("{}…", prefix_bytes(text, cut))),
        None => Cow::Borrowed(text),
    }
}

/// The first `max` characters of `text` (all of it when shorter), with no mark.
pub fn first_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => prefix_bytes(text, cut),
        None => text,
    }
}

/// `text` whole if it fits in `cap` terminal columns, else cut so that it and a closing `…`
/// fit (wide characters count two columns, combining marks none).
pub fn clip_width(text: &str, cap: usize) -> Cow<'_, str> {
    use unicode_width::UnicodeWidthStr;
    if text.width() <= cap {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut width = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if width + w > cap.saturating_sub(1) {
            break;
        }
        out.push(c);
        width += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// The longest common prefix of `a` and `b`, ending on a character boundary of both.
pub fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        end = i + x.len_utf8();
    }
    prefix_bytes(a, end)
}

/// `text` up to byte `end`, which callers take from `char_indices` (always a boundary); the
/// checked form keeps a wrong caller from panicking.
fn prefix_bytes(text: &str, end: usize) -> &str {
    text.get(..end).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_by_characters_not_bytes() {
        assert_eq!(clip_chars("héllo wörld", 4), "héll…");
        assert_eq!(clip_chars("日本語テキスト", 3), "日本語…");
        assert_eq!(clip_chars("short", 5), "short");
        assert_eq!(first_chars("ÄÖÜ", 2), "ÄÖ");
        assert_eq!(first_chars("ab", 9), "ab");
    }

    #[test]
    fn clips_by_columns() {
        assert_eq!(clip_width("日本語", 6), "日本語");
        assert_eq!(clip_width("日本語", 5), "日本…");
        assert_eq!(clip_width("abcdef", 4), "abc…");
    }

    #[test]
    fn common_prefix_never_splits_a_character() {
        // é and è share their first UTF-8 byte; a byte-wise prefix would cut inside them.
        assert_eq!(common_prefix("café", "cafè"), "caf");
        assert_eq!(common_prefix("web-01", "web-02"), "web-0");
        assert_eq!(common_prefix("web", "web-02"), "web");
        assert_eq!(common_prefix("web-02", "web"), "web");
        assert_eq!(common_prefix("", "x"), "");
    }
}
