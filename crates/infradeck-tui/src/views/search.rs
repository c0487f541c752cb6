//! Search over devices, runbook pages and tickets, as you type. Every keystroke is answered from
//! the local full-text index at once; with `[embeddings]` configured the view also asks the
//! service for hybrid ranking (it embeds the query, off this thread) and shows that answer when
//! it comes, if the query is still the one typed. The dashboard never waits on a server.

use crate::app::{Cx, Effect, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::store::{HitKind, SearchHit};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub(crate) struct SearchView {
    query: String,
    hits: Vec<SearchHit>,
    error: Option<String>,
    cursor: Cursor,
    height: usize,
    /// The query last asked of the service for hybrid ranking, and whether the request is
    /// still to be sent.
    asked: Option<String>,
    unsent: bool,
    /// The service's hybrid hits and the query they answer.
    semantic: Option<(String, Vec<SearchHit>)>,
}

/// Hits asked for, as the CLI's `--limit` would.
const LIMIT: usize = 200;

impl SearchView {
    pub(crate) fn new(query: &str) -> SearchView {
        SearchView {
            query: query.to_string(),
            hits: Vec::new(),
            error: None,
            cursor: Cursor::default(),
            height: 10,
            asked: None,
            unsent: false,
            semantic: None,
        }
    }

    fn run(&mut self, cx: &mut Cx) {
        self.error = None;
        if cx.env.semantic_search
            && !self.query.trim().is_empty()
            && self.asked.as_deref() != Some(self.query.as_str())
        {
            self.asked = Some(self.query.clone());
            self.unsent = true;
        }
        // The hybrid answer for this query, once it came, stays (a database change re-reads the
        // full text only; asking again on every sync step would embed the same query again).
        if let Some((_, hits)) = self.semantic.as_ref().filter(|(q, _)| *q == self.query) {
            self.hits = hits.clone();
            return;
        }
        self.hits = if self.query.trim().is_empty() {
            Vec::new()
        } else {
            match cx.store.search(&self.query, &[], LIMIT) {
                Ok(hits) => hits,
                Err(err) => {
                    self.error = Some(err.to_string());
                    Vec::new()
                }
            }
        };
    }
}

impl Screen for SearchView {
    fn title(&self) -> String {
        match &self.semantic {
            Some((query, _)) if *query == self.query => "search (hybrid)".into(),
            _ => "search".into(),
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.run(cx);
        Ok(())
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.query)
    }

    fn take_request(&mut self) -> Option<Effect> {
        if !std::mem::take(&mut self.unsent) {
            return None;
        }
        self.asked.clone().map(|query| Effect::Search {
            query,
            limit: LIMIT,
        })
    }

    fn search_answer(&mut self, query: &str, answer: &infradeck_core::app::SearchAnswer) -> bool {
        if query != self.query {
            return false;
        }
        self.hits = answer.hits.clone();
        self.semantic = Some((query.to_string(), answer.hits.clone()));
        true
    }

    fn set_filter(&mut self, text: &str, cx: &mut Cx) -> anyhow::Result<()> {
        self.query = text.to_string();
        self.cursor = Cursor::default();
        self.run(cx);
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        self.hits
            .get(self.cursor.selected)
            .filter(|h| h.kind == HitKind::Device)
            .map(|h| h.id)
    }

    fn copy_text(&self) -> Option<String> {
        self.hits
            .get(self.cursor.selected)
            .map(|h| h.url.clone().unwrap_or_else(|| h.title.clone()))
    }

    fn act(&mut self, action: Action, _cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.hits.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        let Some(hit) = self.hits.get(self.cursor.selected) else {
            return Ok(Outcome::Ignored);
        };
        Ok(match (action, hit.kind) {
            (Action::Open, HitKind::Device) => {
                Outcome::Push(Box::new(super::detail::DetailView::new(hit.id)))
            }
            (Action::Open, kind) => {
                Outcome::Push(Box::new(super::reader::ReaderView::new(kind, hit.id)))
            }
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        // Two lines per hit: title, then the snippet.
        self.height = (area.height / 2).max(1) as usize;
        self.cursor.clamp(self.hits.len(), self.height);
        self.cursor
            .drawn_at(area.y, self.height, self.hits.len(), 2);
        let mut lines = Vec::new();
        if let Some(error) = &self.error {
            lines.push(Line::from(Span::styled(error.clone(), theme.error())));
        } else if self.query.trim().is_empty() {
            lines.push(Line::from(Span::styled(
                "type / and a few words: names, addresses, error text, ticket keys",
                theme.muted(),
            )));
        } else if self.hits.is_empty() {
            lines.push(Line::from(Span::styled("no matches", theme.muted())));
        }
        for (i, hit) in self
            .hits
            .iter()
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
        {
            let mut title = Line::from(vec![
                Span::styled(format!("{:<7}", hit.kind.as_str()), theme.muted()),
                Span::raw(infradeck_core::sanitize::for_terminal(&hit.title).into_owned()),
                Span::styled(
                    format!("  {}", infradeck_core::sanitize::for_terminal(&hit.detail)),
                    theme.muted(),
                ),
            ]);
            if i == self.cursor.selected {
                title = title.patch_style(theme.selected());
            }
            lines.push(title);
            // Matches come back between [ and ]; show them highlighted instead.
            let snippet = infradeck_core::sanitize::for_terminal(&hit.snippet).into_owned();
            let mut spans = vec![Span::raw("       ")];
            for (n, part) in snippet.split(['[', ']']).enumerate() {
                spans.push(if n % 2 == 1 {
                    Span::styled(part.to_string(), theme.search_match())
                } else {
                    Span::styled(part.to_string(), theme.muted())
                });
            }
            lines.push(Line::from(spans));
        }
        frame.render_widget(Paragraph::new(lines), area);
    }
}
