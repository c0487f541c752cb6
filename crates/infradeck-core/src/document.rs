//! A runbook page or a ticket as a document to read in the terminal: lines with a style
//! (heading, text, list item, code, table, field), the links numbered, and the machines it
//! mentions (names and addresses found in the inventory) marked so a reader can follow them.
//!
//! Lines hold source text as it is; whoever draws them sanitizes (the dashboard's reader and
//! `infradeck read` both do).

use crate::store::{HitKind, Store};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStyle {
    Heading,
    Text,
    /// A list item; its marker (`•`, `1.`) is part of the text.
    Item,
    Code,
    Table,
    /// A ticket's `name: value` field.
    Field,
    /// Who and when: a comment's header.
    Meta,
    Blank,
}

/// A machine named in a line: characters `start..start + len` (characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mention {
    pub start: usize,
    pub len: usize,
    /// The device record it names (the reader opens its machine).
    pub device_id: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocLine {
    pub style: LineStyle,
    /// Spaces before the text (list nesting, code blocks).
    pub indent: usize,
    pub text: String,
    pub mentions: Vec<Mention>,
}

impl DocLine {
    pub fn new(style: LineStyle, indent: usize, text: impl Into<String>) -> DocLine {
        DocLine {
            style,
            indent,
            text: text.into(),
            mentions: Vec::new(),
        }
    }

    fn blank() -> DocLine {
        DocLine::new(LineStyle::Blank, 0, "")
    }
}

/// A link in a page: its text and where it goes. In the text it is followed by `[n]`, its
/// number in the list (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub text: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub kind: HitKind,
    pub id: i64,
    pub title: String,
    /// Space and last update of a page; status, priority and assignee of a ticket.
    pub subtitle: String,
    pub url: Option<String>,
    pub lines: Vec<DocLine>,
    pub links: Vec<Link>,
}

impl Document {
    /// The KB page or ticket with row id `id`, its mentions of machines marked; `None` when it
    /// is no longer stored.
    pub fn read(store: &Store, kind: HitKind, id: i64) -> crate::store::Result<Option<Document>> {
        let document = match kind {
            HitKind::KbArticle => store.kb_article_by_id(id)?.map(|row| {
                let a = &row.article;
                let (lines, links) = match a.body_html.as_deref() {
                    Some(html) if !html.trim().is_empty() => crate::html::to_lines(html),
                    _ => (
                        a.body_text
                            .as_deref()
                            .unwrap_or_default()
                            .lines()
                            .map(|l| DocLine::new(LineStyle::Text, 0, l))
                            .collect(),
                        Vec::new(),
                    ),
                };
                let subtitle = [
                    a.space_key.as_deref().map(|s| format!("space {s}")),
                    a.last_updated.as_deref().map(|t| format!("updated {t}")),
                    (!a.labels.is_empty()).then(|| format!("labels {}", a.labels.join(", "))),
                ];
                Document {
                    kind,
                    id,
                    title: a.title.clone(),
                    subtitle: subtitle
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · "),
                    url: a.url.clone(),
                    lines,
                    links,
                }
            }),
            HitKind::Issue => store.issue_by_id(id)?.map(|row| ticket(id, &row.issue)),
            HitKind::Device => None,
        };
        let Some(mut document) = document else {
            return Ok(None);
        };
        mark_mentions(store, &mut document)?;
        Ok(Some(document))
    }

    /// The document as plain text (for `infradeck read` and copying), links listed at the end.
    /// Not sanitized: the caller prints it through the sanitizer.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        if !self.subtitle.is_empty() {
            out.push_str(&self.subtitle);
            out.push('\n');
        }
        if let Some(url) = &self.url {
            out.push_str(url);
            out.push('\n');
        }
        out.push('\n');
        for line in &self.lines {
            out.push_str(&" ".repeat(line.indent));
            out.push_str(&line.text);
            out.push('\n');
        }
        if !self.links.is_empty() {
            out.push_str("\nLinks\n");
            for (n, link) in self.links.iter().enumerate() {
                out.push_str(&format!("[{}] {} {}\n", n + 1, link.text, link.url));
            }
        }
        out
    }
}

/// A ticket: its fields, the description, then every comment with who wrote it and when.
fn ticket(id: i64, issue: &crate::model::IssueRecord) -> Document {
    let mut lines = Vec::new();
    let fields = [
        ("status", issue.status.clone()),
        ("resolution", issue.resolution.clone()),
        ("type", issue.issue_type.clone()),
        ("priority", issue.priority.clone()),
        ("assignee", issue.assignee.clone()),
        ("reporter", issue.reporter.clone()),
        (
            "labels",
            (!issue.labels.is_empty()).then(|| issue.labels.join(", ")),
        ),
        ("created", issue.created_at.clone()),
        ("updated", issue.updated_at.clone()),
        ("resolved", issue.resolved_at.clone()),
    ];
    for (name, value) in fields {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            lines.push(DocLine::new(
                LineStyle::Field,
                0,
                format!("{name:<11}{value}"),
            ));
        }
    }
    lines.push(DocLine::blank());
    lines.push(DocLine::new(LineStyle::Heading, 0, "Description"));
    let description = issue.description.as_deref().unwrap_or_default();
    if description.trim().is_empty() {
        lines.push(DocLine::new(LineStyle::Meta, 0, "(no description)"));
    }
    lines.extend(
        description
            .lines()
            .map(|l| DocLine::new(LineStyle::Text, 0, l)),
    );
    let comments = issue.comments.as_array().cloned().unwrap_or_default();
    lines.push(DocLine::blank());
    lines.push(DocLine::new(
        LineStyle::Heading,
        0,
        format!("Comments · {}", comments.len()),
    ));
    for comment in &comments {
        let text = |key: &str| comment[key].as_str().unwrap_or_default().to_string();
        lines.push(DocLine::blank());
        lines.push(DocLine::new(
            LineStyle::Meta,
            0,
            format!("{} · {}", text("author"), text("created")),
        ));
        lines.extend(
            text("body")
                .lines()
                .map(|l| DocLine::new(LineStyle::Text, 2, l)),
        );
    }
    let subtitle = [
        issue.status.clone(),
        issue.priority.clone(),
        issue.assignee.as_ref().map(|a| format!("assigned to {a}")),
    ];
    Document {
        kind: HitKind::Issue,
        id,
        title: format!(
            "{} {}",
            issue.issue_key,
            issue.summary.as_deref().unwrap_or_default()
        ),
        subtitle: subtitle
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · "),
        url: None,
        lines,
        links: Vec::new(),
    }
}

/// Words of a line that could name a machine: host names, FQDNs and addresses, with their
/// character offsets. Punctuation around them (`(`, `,`, a final `.`) is not part of them.
fn candidates(text: &str) -> Vec<(usize, String)> {
    let part_of = |c: char| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !part_of(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && part_of(chars[i]) {
            i += 1;
        }
        let mut end = i;
        while end > start && matches!(chars[end - 1], '.' | ':' | '-' | '_') {
            end -= 1;
        }
        let word: String = chars[start..end].iter().collect();
        // A name worth looking up has a digit or a separator: plain words are not host names.
        if word.chars().count() >= 3
            && word.chars().any(char::is_alphanumeric)
            && word
                .chars()
                .any(|c| c.is_ascii_digit() || matches!(c, '-' | '.'))
        {
            out.push((start, word));
        }
    }
    out
}

/// Marks every word that is a name or address of a device in the inventory.
fn mark_mentions(store: &Store, document: &mut Document) -> crate::store::Result<()> {
    let mut words: Vec<String> = document
        .lines
        .iter()
        .flat_map(|l| candidates(&l.text).into_iter().map(|(_, w)| w))
        .map(|w| w.to_lowercase())
        .collect();
    words.sort();
    words.dedup();
    // A page of a few thousand words looks up a few hundred candidates at most.
    words.truncate(2_000);
    let known = store.devices_known_as(&words)?;
    if known.is_empty() {
        return Ok(());
    }
    for line in &mut document.lines {
        for (start, word) in candidates(&line.text) {
            if let Some(&device_id) = known.get(&word.to_lowercase()) {
                line.mentions.push(Mention {
                    start,
                    len: word.chars().count(),
                    device_id,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_names_and_addresses_without_punctuation() {
        let words: Vec<String> =
            candidates("ssh to web-0001.dc1.example.net, then (10.16.0.12). Done")
                .into_iter()
                .map(|(_, w)| w)
                .collect();
        assert_eq!(words, vec!["web-0001.dc1.example.net", "10.16.0.12"]);
        let at = candidates("Host ESX001 is down");
        assert_eq!(at, vec![(5, "ESX001".to_string())]);
        // Offsets are characters: a multibyte character before does not shift them in bytes.
        assert_eq!(candidates("é web-01")[0].0, 2);
    }
}
