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

/// A key that sorts names the way people read them: case-insensitively, and numbers by value
/// (`app-2` before `app-10`, `Web-1` beside `web-1`). Each run of digits becomes `0`, its length
/// (two digits) and the digits without leading zeros, so comparing keys byte by byte compares
/// the numbers; a digit still sorts before a letter, as in plain text.
pub fn natural_key(text: &str) -> String {
    let mut key = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = String::from(c);
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            let value = digits.trim_start_matches('0');
            let value = if value.is_empty() { "0" } else { value };
            key.push('0');
            key.push_str(&format!("{:02}", value.len().min(99)));
            key.push_str(value);
        } else {
            key.extend(c.to_lowercase());
        }
    }
    key
}

/// `*` matches any run of characters (none included); everything else matches itself, ASCII
/// case folded (`glob` is lower case already). Byte-wise: `*` is ASCII, and a multi-byte
/// character only ever matches itself, so no UTF-8 boundary is split in a way that matters.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let (glob, text) = (glob.as_bytes(), text.as_bytes());
    // Two-pointer wildcard match with backtracking to the last star.
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && glob[g] != b'*' && glob[g] == text[t].to_ascii_lowercase() {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == b'*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((sg, st)) = star {
            g = sg + 1;
            t = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == b'*')
}

/// A byte count for people: `1073741824` → `1.0 GiB`, `512` → `512 B`.
pub fn bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
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
    fn natural_keys_sort_numbers_by_value_and_ignore_case() {
        let mut names = vec![
            "app-10", "APP-0001", "app-2", "Web-1", "app-1", "web-01b", "db",
        ];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(
            names,
            [
                "APP-0001", "app-1", "app-2", "app-10", "db", "Web-1", "web-01b"
            ]
        );
        assert!(natural_key("esx9") < natural_key("esx10"));
        assert!(
            natural_key("a1") < natural_key("aa"),
            "a digit sorts before a letter"
        );
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
