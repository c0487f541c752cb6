//! Confluence storage-format HTML as text: flat for search ([`to_text`]: tags dropped, block
//! tags become line breaks, entities decoded, CDATA kept, whitespace collapsed), and laid out for
//! reading ([`to_lines`]: headings, lists, code blocks, tables as aligned text, links numbered).

#![allow(
    clippy::string_slice,
    reason = "every offset here comes from `find` of an ASCII delimiter (`<`, `>`, `&`, `;`) or `strip_prefix` of ASCII, so it is a character boundary"
)]

/// The readable text of an HTML fragment.
pub(crate) fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        push_text(&mut out, &rest[..start]);
        let after = &rest[start..];
        if let Some(body) = after.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or(body.len());
            out.push_str(&body[..end]);
            out.push('\n');
            rest = body.get(end + 3..).unwrap_or("");
            continue;
        }
        let Some(end) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[1..end]
            .trim_start_matches('/')
            .split([' ', '/', '\t', '\n'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(
            tag.as_str(),
            "p" | "br"
                | "li"
                | "tr"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "div"
                | "pre"
                | "table"
                | "ul"
                | "ol"
        ) {
            out.push('\n');
        } else if matches!(tag.as_str(), "td" | "th") {
            out.push(' ');
        }
        rest = &after[end + 1..];
    }
    push_text(&mut out, rest);
    // Collapse runs of spaces within lines and blank lines between them.
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Appends `text` with its character references decoded.
fn push_text(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
}

/// A tag as the reader needs it: its lowercase name, whether it closes, and its attributes.
struct Tag<'a> {
    name: String,
    closing: bool,
    self_closing: bool,
    source: &'a str,
}

impl Tag<'_> {
    fn parse(source: &str) -> Tag<'_> {
        let closing = source.starts_with('/');
        let name = source
            .trim_start_matches('/')
            .split([' ', '/', '\t', '\n', '\r'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        Tag {
            name,
            closing,
            self_closing: source.ends_with('/'),
            source,
        }
    }

    /// The value of attribute `name` (`name="…"` or `name='…'`), entities decoded.
    fn attribute(&self, name: &str) -> Option<String> {
        let lower = self.source.to_ascii_lowercase();
        let mut from = 0;
        while let Some(at) = lower.get(from..).and_then(|rest| rest.find(name)) {
            let at = from + at;
            from = at + name.len();
            let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
            let rest = self.source[at + name.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('=') else {
                continue;
            };
            if !before_ok {
                continue;
            }
            let rest = rest.trim_start();
            let quote = rest.chars().next()?;
            if quote != '"' && quote != '\'' {
                continue;
            }
            let body = &rest[1..];
            let end = body.find(quote).unwrap_or(body.len());
            let mut value = String::new();
            push_text(&mut value, &body[..end]);
            return Some(value);
        }
        None
    }
}

/// Builds the reader's lines from storage HTML.
#[derive(Default)]
struct Layout {
    lines: Vec<crate::document::DocLine>,
    links: Vec<crate::document::Link>,
    current: String,
    style: Option<crate::document::LineStyle>,
    /// Open lists: `None` for bullets, `Some(n)` for the next number.
    lists: Vec<Option<usize>>,
    /// A table being read: rows of cells, and whether the first row is a header.
    table: Option<(Vec<Vec<String>>, bool)>,
    cell: Option<String>,
    /// Inside `<pre>`: text kept as it is.
    preformatted: bool,
    /// A link being read: its URL and where its text starts (in the cell or the line).
    link: Option<(String, usize)>,
    /// The macro whose body is being read (`code`, `info`, ...).
    macros: Vec<String>,
}

impl Layout {
    fn flush(&mut self) {
        use crate::document::{DocLine, LineStyle};
        let text = self
            .current
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        self.current.clear();
        let style = self.style.take().unwrap_or(LineStyle::Text);
        if text.is_empty() {
            return;
        }
        let indent = if style == LineStyle::Item {
            2 * self.lists.len().saturating_sub(1)
        } else {
            0
        };
        self.lines.push(DocLine::new(style, indent, text));
    }

    /// A blank line before a new block, never two in a row and none at the top.
    fn gap(&mut self) {
        use crate::document::{DocLine, LineStyle};
        self.flush();
        // A heading stays on top of what it heads.
        if self
            .lines
            .last()
            .is_some_and(|l| !matches!(l.style, LineStyle::Blank | LineStyle::Heading))
        {
            self.lines.push(DocLine::new(LineStyle::Blank, 0, ""));
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(cell) = &mut self.cell {
            push_text(cell, text);
        } else if self.preformatted {
            let mut decoded = String::new();
            push_text(&mut decoded, text);
            self.code(&decoded);
        } else {
            push_text(&mut self.current, text);
        }
    }

    fn code(&mut self, text: &str) {
        use crate::document::{DocLine, LineStyle};
        self.flush();
        let text = text.strip_prefix('\n').unwrap_or(text);
        let text = text.strip_suffix('\n').unwrap_or(text);
        for line in text.lines() {
            self.lines.push(DocLine::new(
                LineStyle::Code,
                4,
                line.trim_end().to_string(),
            ));
        }
    }

    fn finish_table(&mut self) {
        use crate::document::{DocLine, LineStyle};
        let Some((rows, header)) = self.table.take() else {
            return;
        };
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        // Column widths in characters, a long cell capped so one cell cannot push the rest away.
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                rows.iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count().min(40))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        self.gap();
        for (n, row) in rows.iter().enumerate() {
            let cells: Vec<String> = (0..columns)
                .map(|c| {
                    let cell = row.get(c).map(String::as_str).unwrap_or("");
                    let pad = widths[c].saturating_sub(cell.chars().count());
                    format!("{cell}{}", " ".repeat(pad))
                })
                .collect();
            self.lines.push(DocLine::new(
                LineStyle::Table,
                2,
                cells.join(" │ ").trim_end().to_string(),
            ));
            if n == 0 && header {
                let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                self.lines
                    .push(DocLine::new(LineStyle::Table, 2, rule.join("─┼─")));
            }
        }
        self.gap();
    }

    fn tag(&mut self, tag: &Tag<'_>) {
        use crate::document::LineStyle;
        let name = tag.name.as_str();
        match (name, tag.closing) {
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", false) => {
                self.gap();
                self.style = Some(LineStyle::Heading);
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", true) => {
                self.style = Some(LineStyle::Heading);
                self.flush();
            }
            ("p" | "div" | "blockquote", false) if self.cell.is_none() => {
                if self.lists.is_empty() {
                    self.gap();
                } else {
                    self.flush();
                }
            }
            ("p" | "div" | "blockquote", true) if self.cell.is_none() => self.flush(),
            ("br", _) if self.cell.is_none() => {
                let style = self.style;
                self.flush();
                self.style = style;
            }
            ("ul", false) => {
                self.flush();
                self.lists.push(None);
            }
            ("ol", false) => {
                self.flush();
                self.lists.push(Some(1));
            }
            ("ul" | "ol", true) => {
                self.flush();
                self.lists.pop();
            }
            ("li", false) => {
                self.flush();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let marker = format!("{n}. ");
                        *n += 1;
                        marker
                    }
                    _ => "• ".to_string(),
                };
                self.current.push_str(&marker);
                self.style = Some(LineStyle::Item);
            }
            ("li", true) => {
                self.style = Some(LineStyle::Item);
                self.flush();
            }
            ("pre", false) => {
                self.flush();
                self.preformatted = true;
            }
            ("pre", true) => self.preformatted = false,
            ("table", false) => {
                self.flush();
                self.table = Some((Vec::new(), false));
            }
            ("table", true) => self.finish_table(),
            ("tr", false) => {
                if let Some((rows, _)) = &mut self.table {
                    rows.push(Vec::new());
                }
            }
            ("td" | "th", false) => {
                if name == "th"
                    && let Some((rows, header)) = &mut self.table
                    && rows.len() == 1
                {
                    *header = true;
                }
                self.cell = Some(String::new());
            }
            ("td" | "th", true) => {
                if let Some(cell) = self.cell.take()
                    && let Some((rows, _)) = &mut self.table
                {
                    let text = cell.split_whitespace().collect::<Vec<_>>().join(" ");
                    match rows.last_mut() {
                        Some(row) => row.push(text),
                        None => rows.push(vec![text]),
                    }
                }
            }
            ("a", false) => {
                let start = self.cell.as_ref().unwrap_or(&self.current).len();
                self.link = tag.attribute("href").map(|url| (url, start));
            }
            ("a", true) => {
                if let Some((url, start)) = self.link.take().filter(|(u, _)| !u.is_empty()) {
                    let target = self.cell.as_mut().unwrap_or(&mut self.current);
                    let text = target.get(start..).unwrap_or_default();
                    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    self.links.push(crate::document::Link { text, url });
                    target.push_str(&format!("[{}]", self.links.len()));
                }
            }
            // A link to another page: its title is the text.
            ("ri:page", _) => {
                if let Some(title) = tag.attribute("ri:content-title") {
                    self.text(&title);
                }
            }
            ("ac:structured-macro", false) => {
                let kind = tag.attribute("ac:name").unwrap_or_default();
                if matches!(kind.as_str(), "info" | "note" | "warning" | "tip") {
                    self.gap();
                    self.current.push_str(&format!("{}: ", kind.to_uppercase()));
                }
                if !tag.self_closing {
                    self.macros.push(kind);
                }
            }
            ("ac:structured-macro", true) => {
                self.macros.pop();
                self.flush();
            }
            _ => {}
        }
    }
}

/// Storage HTML laid out for reading: one line per paragraph, heading, list item, code line or
/// table row (the reader wraps them), and the links in order of appearance.
pub(crate) fn to_lines(html: &str) -> (Vec<crate::document::DocLine>, Vec<crate::document::Link>) {
    let mut layout = Layout::default();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        layout.text(&rest[..start]);
        let after = &rest[start..];
        if let Some(body) = after.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or(body.len());
            layout.code(&body[..end]);
            rest = body.get(end + 3..).unwrap_or("");
            continue;
        }
        if let Some(comment) = after.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(end) = after.find('>') else {
            break;
        };
        layout.tag(&Tag::parse(&after[1..end]));
        rest = &after[end + 1..];
    }
    layout.text(rest);
    layout.flush();
    layout.finish_table();
    while layout
        .lines
        .last()
        .is_some_and(|l| l.style == crate::document::LineStyle::Blank)
    {
        layout.lines.pop();
    }
    (layout.lines, layout.links)
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_tags_decodes_entities_keeps_code() {
        let html = "<h2>Steps</h2><p>Restart <strong>web-0001</strong> &amp; check&nbsp;10.0.0.1</p><ac:structured-macro><ac:plain-text-body><![CDATA[systemctl restart <nginx>]]></ac:plain-text-body></ac:structured-macro>";
        assert_eq!(
            super::to_text(html),
            "Steps\nRestart web-0001 & check 10.0.0.1\nsystemctl restart <nginx>"
        );
    }

    #[test]
    fn a_page_is_laid_out_for_reading() {
        use crate::document::LineStyle;
        let html = "<h2>Scope</h2><p>Hosts esx001, esx002 in <strong>dc1</strong>.</p>\
            <h2>Steps</h2><ol><li>Enter maintenance</li><li>Patch<ul><li>then reboot</li></ul></li></ol>\
            <ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[esxcli system maintenanceMode set --enable true\nreboot]]></ac:plain-text-body></ac:structured-macro>\
            <table><tr><th>Host</th><th>Rack</th></tr><tr><td>esx001</td><td>B12</td></tr></table>\
            <p>See <a href=\"https://wiki.example/x?a=1&amp;b=2\">the vendor guide</a> and \
            <ac:link><ri:page ri:content-title=\"Network runbooks\" /></ac:link>.</p>";
        let (lines, links) = super::to_lines(html);
        let text: Vec<(LineStyle, usize, &str)> = lines
            .iter()
            .map(|l| (l.style, l.indent, l.text.as_str()))
            .collect();
        assert_eq!(
            text,
            vec![
                (LineStyle::Heading, 0, "Scope"),
                (LineStyle::Text, 0, "Hosts esx001, esx002 in dc1."),
                (LineStyle::Blank, 0, ""),
                (LineStyle::Heading, 0, "Steps"),
                (LineStyle::Item, 0, "1. Enter maintenance"),
                (LineStyle::Item, 0, "2. Patch"),
                (LineStyle::Item, 2, "• then reboot"),
                (
                    LineStyle::Code,
                    4,
                    "esxcli system maintenanceMode set --enable true"
                ),
                (LineStyle::Code, 4, "reboot"),
                (LineStyle::Blank, 0, ""),
                (LineStyle::Table, 2, "Host   │ Rack"),
                (LineStyle::Table, 2, "───────┼─────"),
                (LineStyle::Table, 2, "esx001 │ B12"),
                (LineStyle::Blank, 0, ""),
                (
                    LineStyle::Text,
                    0,
                    "See the vendor guide[1] and Network runbooks."
                ),
            ]
        );
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].url, "https://wiki.example/x?a=1&b=2");
        assert_eq!(links[0].text, "the vendor guide");
    }
}
