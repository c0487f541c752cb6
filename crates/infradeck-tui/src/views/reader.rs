//! A runbook page or ticket, read inside the dashboard: the page laid out from its storage HTML
//! (headings, lists, code, tables, numbered links) or the ticket's fields, description and every
//! comment; wrapped to the width, scrollable, searchable. The machines it mentions are
//! highlighted: Tab selects one, Enter opens it. Links are listed at the end; Enter or `o` opens
//! the selected one (`y` copies it).

use crate::app::{Cx, Effect, Flash, Outcome, Screen};
use crate::keys::{Action, Scope};
use infradeck_core::document::{DocLine, Document, LineStyle};
use infradeck_core::store::HitKind;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Something Tab can select: a machine mentioned in a line, or a link of the list.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Mention {
        line: usize,
        start: usize,
        len: usize,
        device_id: i64,
    },
    Link {
        line: usize,
        index: usize,
    },
}

impl Target {
    fn line(self) -> usize {
        match self {
            Target::Mention { line, .. } | Target::Link { line, .. } => line,
        }
    }
}

/// One screen row: characters `from..to` of a line (its first row carries the indent).
#[derive(Debug, Clone, Copy)]
struct Row {
    line: usize,
    from: usize,
    to: usize,
}

pub(crate) struct ReaderView {
    kind: HitKind,
    id: i64,
    document: Option<Document>,
    /// The document's lines, sanitized, with the link list appended.
    lines: Vec<DocLine>,
    targets: Vec<Target>,
    focus: Option<usize>,
    rows: Vec<Row>,
    wrapped_for: u16,
    top: usize,
    height: usize,
    search: String,
}

impl ReaderView {
    pub(crate) fn new(kind: HitKind, id: i64) -> ReaderView {
        ReaderView {
            kind,
            id,
            document: None,
            lines: Vec::new(),
            targets: Vec::new(),
            focus: None,
            rows: Vec::new(),
            wrapped_for: 0,
            top: 0,
            height: 20,
            search: String::new(),
        }
    }

    fn load(&mut self, document: Document) {
        let clean = |text: &str| infradeck_core::sanitize::line_for_terminal(text).into_owned();
        let mut lines: Vec<DocLine> = document
            .lines
            .iter()
            .map(|l| DocLine {
                text: clean(&l.text),
                ..l.clone()
            })
            .collect();
        // Sanitizing maps one character to one character, so mention offsets stay right.
        let mut targets = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            for m in &line.mentions {
                targets.push(Target::Mention {
                    line: n,
                    start: m.start,
                    len: m.len,
                    device_id: m.device_id,
                });
            }
        }
        if !document.links.is_empty() {
            lines.push(DocLine::new(LineStyle::Blank, 0, ""));
            lines.push(DocLine::new(LineStyle::Heading, 0, "Links"));
            for (index, link) in document.links.iter().enumerate() {
                targets.push(Target::Link {
                    line: lines.len(),
                    index,
                });
                lines.push(DocLine::new(
                    LineStyle::Item,
                    0,
                    format!(
                        "[{}] {}  {}",
                        index + 1,
                        clean(&link.text),
                        clean(&link.url)
                    ),
                ));
            }
        }
        self.lines = lines;
        self.targets = targets;
        self.focus = None;
        self.wrapped_for = 0;
        self.document = Some(document);
    }

    /// Wraps every line to `width` columns at spaces (a word longer than the width is cut).
    fn wrap(&mut self, width: u16) {
        if self.wrapped_for == width {
            return;
        }
        self.wrapped_for = width;
        self.rows.clear();
        for (n, line) in self.lines.iter().enumerate() {
            let chars: Vec<char> = line.text.chars().collect();
            let first_room = (width as usize).saturating_sub(line.indent).max(8);
            let mut from = 0;
            loop {
                // Continuation rows are indented two more.
                let room = if from == 0 {
                    first_room
                } else {
                    first_room - 2
                };
                if chars.len() - from <= room {
                    self.rows.push(Row {
                        line: n,
                        from,
                        to: chars.len(),
                    });
                    break;
                }
                let limit = from + room;
                let cut = (from + 1..limit)
                    .rev()
                    .find(|&i| chars[i] == ' ')
                    .map_or(limit, |i| i + 1);
                self.rows.push(Row {
                    line: n,
                    from,
                    to: cut,
                });
                from = cut;
            }
        }
    }

    fn first_row_of(&self, line: usize) -> usize {
        self.rows.iter().position(|r| r.line == line).unwrap_or(0)
    }

    fn scroll_to_line(&mut self, line: usize) {
        let row = self.first_row_of(line);
        if row < self.top || row >= self.top + self.height {
            self.top = row.saturating_sub(self.height / 3);
        }
    }

    fn max_top(&self) -> usize {
        self.rows.len().saturating_sub(self.height)
    }

    /// The next line (after the top row's, wrapping) that contains the search text.
    fn find(&self, forward: bool) -> Option<usize> {
        if self.search.is_empty() || self.lines.is_empty() {
            return None;
        }
        let needle = self.search.to_lowercase();
        let n = self.lines.len();
        let here = self.rows.get(self.top).map_or(0, |r| r.line);
        (1..=n)
            .map(|step| {
                if forward {
                    (here + step) % n
                } else {
                    (here + n - step % n) % n
                }
            })
            .find(|&i| self.lines[i].text.to_lowercase().contains(&needle))
    }

    fn focused_url(&self) -> Option<String> {
        match self.focus.and_then(|f| self.targets.get(f)) {
            Some(Target::Link { index, .. }) => self
                .document
                .as_ref()
                .and_then(|d| d.links.get(*index))
                .map(|l| l.url.clone()),
            _ => None,
        }
    }

    fn page_url(&self) -> Option<String> {
        self.document.as_ref().and_then(|d| d.url.clone())
    }

    fn style_of(&self, style: LineStyle, cx: &Cx) -> Style {
        let theme = cx.env.theme;
        match style {
            LineStyle::Heading => theme.title(),
            LineStyle::Code => theme.hunk(),
            LineStyle::Field | LineStyle::Meta => theme.muted(),
            LineStyle::Table | LineStyle::Item | LineStyle::Text | LineStyle::Blank => theme.base(),
        }
    }
}

impl Screen for ReaderView {
    fn title(&self) -> String {
        match &self.document {
            Some(d) => infradeck_core::text::clip_chars(
                &infradeck_core::sanitize::for_terminal(&d.title),
                60,
            )
            .into_owned(),
            None => self.kind.as_str().to_string(),
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Reader, Scope::List, Scope::Global]
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match action {
            Action::NextSection | Action::PrevSection if self.targets.is_empty() => {
                Some("this text mentions no machine of the inventory and has no links")
            }
            Action::Open if self.focus.is_none() => {
                Some("nothing selected: Tab selects a machine mentioned or a link")
            }
            Action::OpenUrl if self.focused_url().is_none() && self.page_url().is_none() => {
                Some("this has no URL (a ticket's key is its address: y copies it)")
            }
            Action::NextMatch | Action::PrevMatch if self.search.is_empty() => {
                Some("nothing searched yet: / searches the text")
            }
            _ => None,
        }
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        match Document::read(cx.store, self.kind, self.id)? {
            Some(document) => {
                if self.document.as_ref() != Some(&document) {
                    self.load(document);
                }
            }
            None => {
                self.document = None;
                self.lines = vec![DocLine::new(
                    LineStyle::Meta,
                    0,
                    format!(
                        "this {} is no longer in the inventory",
                        if self.kind == HitKind::Issue {
                            "ticket"
                        } else {
                            "page"
                        }
                    ),
                )];
                self.targets.clear();
                self.wrapped_for = 0;
            }
        }
        Ok(())
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.search)
    }

    fn set_filter(&mut self, text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        self.search = text.to_string();
        if let Some(line) = self.find(true) {
            self.scroll_to_line(line);
        }
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        match self.focus.and_then(|f| self.targets.get(f)) {
            Some(Target::Mention { device_id, .. }) => Some(*device_id),
            _ => None,
        }
    }

    fn copy_text(&self) -> Option<String> {
        if let Some(Target::Mention {
            line, start, len, ..
        }) = self.focus.and_then(|f| self.targets.get(f)).copied()
        {
            return Some(
                self.lines[line]
                    .text
                    .chars()
                    .skip(start)
                    .take(len)
                    .collect(),
            );
        }
        self.focused_url()
            .or_else(|| self.page_url())
            .or_else(|| self.document.as_ref().map(|d| d.title.clone()))
    }

    fn act(&mut self, action: Action, _cx: &mut Cx) -> anyhow::Result<Outcome> {
        let page = self.height.saturating_sub(1).max(1);
        match action {
            Action::Down => self.top = (self.top + 1).min(self.max_top()),
            Action::Up => self.top = self.top.saturating_sub(1),
            Action::PageDown => self.top = (self.top + page).min(self.max_top()),
            Action::PageUp => self.top = self.top.saturating_sub(page),
            Action::Top => self.top = 0,
            Action::Bottom => self.top = self.max_top(),
            Action::NextSection | Action::PrevSection => {
                let n = self.targets.len();
                if n == 0 {
                    return Ok(Outcome::Ignored);
                }
                let next = match (self.focus, action == Action::NextSection) {
                    (None, true) => {
                        // The first target at or below the top of the screen.
                        let here = self.rows.get(self.top).map_or(0, |r| r.line);
                        self.targets
                            .iter()
                            .position(|t| t.line() >= here)
                            .unwrap_or(0)
                    }
                    (None, false) => n - 1,
                    (Some(f), true) => (f + 1) % n,
                    (Some(f), false) => (f + n - 1) % n,
                };
                self.focus = Some(next);
                self.scroll_to_line(self.targets[next].line());
            }
            Action::Open => {
                return Ok(
                    match self.focus.and_then(|f| self.targets.get(f)).copied() {
                        Some(Target::Mention { device_id, .. }) => {
                            Outcome::Push(Box::new(super::detail::DetailView::new(device_id)))
                        }
                        Some(Target::Link { .. }) => match self.focused_url() {
                            Some(url) => Outcome::Effect(Effect::OpenUrl(url)),
                            None => Outcome::Ignored,
                        },
                        None => Outcome::Ignored,
                    },
                );
            }
            Action::OpenUrl => {
                return Ok(match self.focused_url().or_else(|| self.page_url()) {
                    Some(url) => Outcome::Effect(Effect::OpenUrl(url)),
                    None => Outcome::Ignored,
                });
            }
            Action::NextMatch | Action::PrevMatch => match self.find(action == Action::NextMatch) {
                Some(line) => self.scroll_to_line(line),
                None => return Ok(Outcome::Flash(Flash::error("no match; search with /"))),
            },
            _ => return Ok(Outcome::Ignored),
        }
        Ok(Outcome::Handled)
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        let header_rows: u16 = 2;
        self.height = area.height.saturating_sub(header_rows).max(1) as usize;
        self.wrap(area.width);
        self.top = self.top.min(self.max_top());
        let mut out: Vec<Line> = Vec::new();
        if let Some(d) = &self.document {
            let subtitle = [
                Some(d.subtitle.as_str()).filter(|s| !s.is_empty()),
                d.url.as_deref(),
            ];
            let subtitle = subtitle
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
            out.push(Line::from(Span::styled(
                infradeck_core::sanitize::for_terminal(&d.title).into_owned(),
                theme.title(),
            )));
            out.push(Line::from(Span::styled(
                format!(
                    "{}{}",
                    infradeck_core::sanitize::for_terminal(&subtitle),
                    if self.rows.len() > self.height {
                        format!(
                            "  ({}%)",
                            (self.top + self.height).min(self.rows.len()) * 100 / self.rows.len()
                        )
                    } else {
                        String::new()
                    }
                ),
                theme.muted(),
            )));
        }
        let needle = self.search.to_lowercase();
        let focused = self.focus.and_then(|f| self.targets.get(f)).copied();
        for row in self.rows.iter().skip(self.top).take(self.height) {
            let line = &self.lines[row.line];
            let base = self.style_of(line.style, cx);
            let chars: Vec<char> = line.text.chars().collect();
            let mut styles = vec![base; chars.len()];
            for m in &line.mentions {
                let selected = focused.is_some_and(|t| {
                    t == Target::Mention {
                        line: row.line,
                        start: m.start,
                        len: m.len,
                        device_id: m.device_id,
                    }
                });
                let style = if selected {
                    theme.selected()
                } else {
                    base.add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
                };
                for s in styles.iter_mut().skip(m.start).take(m.len) {
                    *s = style;
                }
            }
            if focused.is_some_and(|t| matches!(t, Target::Link { line, .. } if line == row.line)) {
                for s in &mut styles {
                    *s = theme.selected();
                }
            }
            if !needle.is_empty() {
                let lower: Vec<char> = line.text.to_lowercase().chars().collect();
                let pattern: Vec<char> = needle.chars().collect();
                if lower.len() == chars.len() && pattern.len() <= lower.len() {
                    for at in 0..=lower.len() - pattern.len() {
                        if lower[at..at + pattern.len()] == pattern[..] {
                            for s in styles.iter_mut().skip(at).take(pattern.len()) {
                                *s = theme.search_match();
                            }
                        }
                    }
                }
            }
            let indent = if row.from == 0 {
                line.indent
            } else {
                line.indent + 2
            };
            let mut spans = vec![Span::raw(" ".repeat(indent))];
            let mut current = String::new();
            let mut style = None;
            for (i, c) in chars.iter().enumerate().take(row.to).skip(row.from) {
                if style.is_some_and(|s| s != styles[i]) {
                    spans.push(Span::styled(
                        std::mem::take(&mut current),
                        style.unwrap_or(base),
                    ));
                }
                style = Some(styles[i]);
                current.push(*c);
            }
            if !current.is_empty() {
                spans.push(Span::styled(current, style.unwrap_or(base)));
            }
            out.push(Line::from(spans));
        }
        frame.render_widget(Paragraph::new(out), area);
    }
}
