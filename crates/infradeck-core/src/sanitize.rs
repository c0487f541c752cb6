//! The one sanitizer between untrusted text and the terminal.
//!
//! Anything that came from a source system (a device name, a config line, a ticket comment) is
//! untrusted input to an SSH terminal: an escape sequence in a VM name could move the cursor,
//! retitle the window or hide text. Every such string goes through [`for_terminal`], which keeps
//! printable text as it is and turns control characters, escape sequences and bidirectional
//! overrides into visible placeholders. The store keeps the original bytes; only display changes.

use std::borrow::Cow;

/// Returns `text` with every character that could act on a terminal replaced by a visible
/// placeholder: C0 controls as their Unicode "control picture" (ESC → `␛`, CR → `␍`), DEL as
/// `␡`, C1 controls, bidi controls and invisible formatting characters as `⟨U+XXXX⟩`.
/// Borrowed when nothing needed replacing, which is the common case.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_placeholder) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`for_terminal`], but a tab becomes spaces up to the next multiple of 8 first, so config
/// files keep their indentation. For multi-line text displayed line by line.
pub fn line_for_terminal(line: &str) -> Cow<'_, str> {
    if !line.contains('\t') {
        return for_terminal(line);
    }
    let mut expanded = String::with_capacity(line.len() + 16);
    let mut column = 0usize;
    for c in line.chars() {
        if c == '\t' {
            let pad = 8 - column % 8;
            expanded.extend(std::iter::repeat_n(' ', pad));
            column += pad;
        } else {
            expanded.push(c);
            column += 1;
        }
    }
    Cow::Owned(for_terminal(&expanded).into_owned())
}

/// Escapes, as JSON `\uXXXX` sequences, the characters that serde_json leaves raw but that would
/// act on a terminal (bidi overrides, invisible formatting, C1 controls). The JSON value is the
/// same; only its spelling changes, so `--json` output is safe to print.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| !c.is_ascii() && needs_placeholder(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if !c.is_ascii() && needs_placeholder(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// What goes to the clipboard: the text with every control character, escape sequence
/// introducer and invisible/bidi character removed (a paste into a shell must not run anything
/// the source put there). A `multi_line` copy (a diff, a config) keeps its line breaks and tabs;
/// a single value becomes one line, with no trailing newline — pasted after a prompt, a newline
/// would press Enter.
pub fn for_clipboard(text: &str, multi_line: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' if multi_line => out.push('\n'),
            '\t' if multi_line => out.push('\t'),
            // A line break inside a single value separates words; it never ends one.
            '\n' | '\r' | '\t' if !multi_line && !out.is_empty() && !out.ends_with(' ') => {
                out.push(' ')
            }
            c if needs_placeholder(c) => {}
            c => out.push(c),
        }
    }
    if multi_line {
        while out.ends_with('\n') {
            out.pop();
        }
        out
    } else {
        out.trim_end().to_string()
    }
}

fn needs_placeholder(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Bidi embeddings/overrides/isolates, zero-width and other invisible formatting characters:
/// they reorder or hide what the engineer reads without being control characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\u{0}'..='\u{1F}' => {
            // The Control Pictures block mirrors C0 one to one from U+2400.
            let picture = char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}');
            out.push(picture);
        }
        '\u{7F}' => out.push('\u{2421}'),
        c if needs_placeholder(c) => out.push_str(&format!("⟨U+{:04X}⟩", c as u32)),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(for_terminal("web01.lab.local"), Cow::Borrowed(_)));
        assert!(matches!(for_terminal("Zürich-ñ-日本"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_controls_and_bidi_become_placeholders() {
        let hostile = "evil\u{1b}]0;pwned\u{7}\rname\u{202E}gnp.exe\u{9b}2J";
        let shown = for_terminal(hostile);
        assert_eq!(shown, "evil␛]0;pwned␇␍name⟨U+202E⟩gnp.exe⟨U+009B⟩2J");
        assert!(!shown.chars().any(|c| c.is_control()));
    }

    #[test]
    fn the_clipboard_gets_no_control_bytes_and_no_trailing_newline() {
        let hostile = "web01\u{1b}]0;pwned\u{7}\necho PASTE-INJECTED\n\u{202E}x\u{9b}";
        let single = for_clipboard(hostile, false);
        assert_eq!(single, "web01]0;pwned echo PASTE-INJECTED x");
        assert!(
            !single
                .chars()
                .any(|c| c.is_control() || is_invisible_format(c))
        );
        let multi = for_clipboard("- a\u{1b}[2J\n+ b\r\n\n", true);
        assert_eq!(multi, "- a[2J\n+ b");
        assert_eq!(for_clipboard("web01\n", false), "web01");
    }

    #[test]
    fn tabs_expand_in_lines() {
        assert_eq!(line_for_terminal("a\tb"), "a       b");
        assert_eq!(line_for_terminal("\t\u{1b}x"), "        ␛x");
    }

    #[test]
    fn json_keeps_value_but_escapes_bidi() {
        let raw = serde_json::to_string(&"a\u{202E}b").unwrap();
        let safe = json_for_terminal(&raw);
        assert_eq!(safe, "\"a\\u202eb\"");
        let back: String = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, "a\u{202E}b");
    }
}
