//! Config versions and their diffs: the network devices with stored configs, a device's
//! versions with dates and hashes, and the diff between any two (unified or side by side,
//! changed words highlighted, hunk and search navigation, volatile lines hideable).

use crate::app::{Cx, Flash, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::theme::Theme;
use crate::widgets::cursor::Cursor;
use infradeck_core::diff::{LineDiff, RowKind};
use infradeck_core::store::{ConfigVersion, ConfiguredDevice};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

enum Listing {
    Devices(Vec<ConfiguredDevice>),
    Versions {
        device_id: i64,
        name: String,
        versions: Vec<ConfigVersion>,
    },
}

pub(crate) struct ConfigsView {
    device: Option<i64>,
    listing: Listing,
    cursor: Cursor,
    marked: Option<i64>,
    height: usize,
    filter: String,
}

impl ConfigsView {
    pub(crate) fn all() -> ConfigsView {
        ConfigsView {
            device: None,
            listing: Listing::Devices(Vec::new()),
            cursor: Cursor::default(),
            marked: None,
            height: 20,
            filter: String::new(),
        }
    }

    pub(crate) fn for_device(device_id: i64) -> ConfigsView {
        ConfigsView {
            device: Some(device_id),
            ..ConfigsView::all()
        }
    }

    fn visible_devices<'a>(&self, devices: &'a [ConfiguredDevice]) -> Vec<&'a ConfiguredDevice> {
        let needle = self.filter.to_lowercase();
        devices
            .iter()
            .filter(|d| needle.is_empty() || d.device.name.to_lowercase().contains(&needle))
            .collect()
    }

    fn len(&self) -> usize {
        match &self.listing {
            Listing::Devices(d) => self.visible_devices(d).len(),
            Listing::Versions { versions, .. } => versions.len(),
        }
    }
}

impl Screen for ConfigsView {
    fn title(&self) -> String {
        match &self.listing {
            Listing::Devices(_) => "configs".into(),
            Listing::Versions { name, .. } => {
                format!("{} versions", infradeck_core::sanitize::for_terminal(name))
            }
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Configs, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match (&self.listing, action) {
            (Listing::Devices(_), Action::Mark | Action::Diff) => {
                Some("versions are compared inside a device: Enter opens its versions")
            }
            (Listing::Devices(devices), Action::Open)
                if self.visible_devices(devices).is_empty() =>
            {
                Some("no device with stored configs matches")
            }
            (Listing::Versions { versions, .. }, Action::Diff | Action::Open)
                if versions.len() < 2 =>
            {
                Some("only one version is stored: nothing to compare it with")
            }
            (Listing::Versions { versions, .. }, Action::Mark) if versions.is_empty() => {
                Some("no versions stored")
            }
            _ => None,
        }
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.listing = match self.device {
            None => Listing::Devices(cx.store.configured_devices()?),
            Some(device_id) => {
                let name = cx
                    .store
                    .device(device_id)?
                    .map(|d| d.name)
                    .unwrap_or_else(|| format!("#{device_id}"));
                let mut versions = cx.store.config_versions(device_id)?;
                versions.sort_by_key(|v| std::cmp::Reverse(v.version));
                Listing::Versions {
                    device_id,
                    name,
                    versions,
                }
            }
        };
        Ok(())
    }

    fn filter(&self) -> Option<&str> {
        matches!(self.listing, Listing::Devices(_)).then_some(self.filter.as_str())
    }

    fn set_filter(&mut self, text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        self.filter = text.to_string();
        self.cursor = Cursor::default();
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        match &self.listing {
            Listing::Devices(d) => self
                .visible_devices(d)
                .get(self.cursor.selected)
                .map(|c| c.device.id),
            Listing::Versions { device_id, .. } => Some(*device_id),
        }
    }

    fn copy_text(&self) -> Option<String> {
        match &self.listing {
            Listing::Devices(d) => self
                .visible_devices(d)
                .get(self.cursor.selected)
                .map(|c| c.device.name.clone()),
            Listing::Versions { versions, .. } => versions
                .get(self.cursor.selected)
                .map(|v| v.config_hash.clone()),
        }
    }

    fn act(&mut self, action: Action, _cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        Ok(match (&self.listing, action) {
            (Listing::Devices(devices), Action::Open) => {
                match self.visible_devices(devices).get(self.cursor.selected) {
                    Some(c) => Outcome::Push(Box::new(ConfigsView::for_device(c.device.id))),
                    None => Outcome::Ignored,
                }
            }
            (Listing::Versions { versions, .. }, Action::Mark) => {
                if let Some(v) = versions.get(self.cursor.selected) {
                    self.marked = if self.marked == Some(v.id) {
                        None
                    } else {
                        Some(v.id)
                    };
                }
                Outcome::Handled
            }
            (Listing::Versions { versions, name, .. }, Action::Diff | Action::Open) => {
                let Some(selected) = versions.get(self.cursor.selected) else {
                    return Ok(Outcome::Ignored);
                };
                let other = match self
                    .marked
                    .and_then(|id| versions.iter().find(|v| v.id == id))
                {
                    Some(marked) if marked.id != selected.id => marked,
                    // Without a mark: the selected version against the one before it.
                    _ => match versions.iter().find(|v| v.version < selected.version) {
                        Some(previous) => previous,
                        None => {
                            return Ok(Outcome::Flash(Flash::error(
                                "the first version has nothing before it; mark another with Space",
                            )));
                        }
                    },
                };
                let (old, new) = if other.version < selected.version {
                    (other, selected)
                } else {
                    (selected, other)
                };
                Outcome::Push(Box::new(DiffView::new(name, old.clone(), new.clone())))
            }
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.height = area.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.len(), self.height);
        self.cursor.drawn_at(area.y + 1, self.height, self.len(), 1);
        let (header, rows): (Row, Vec<Row>) = match &self.listing {
            Listing::Devices(devices) => {
                let visible = self.visible_devices(devices);
                if visible.is_empty() {
                    frame.render_widget(
                        Paragraph::new(Span::styled(
                            "no stored configs (Oxidized syncs store them)",
                            theme.muted(),
                        )),
                        area,
                    );
                    return;
                }
                (
                    Row::new(["DEVICE", "VERSIONS", "LAST CHANGE", "AGE"]),
                    visible
                        .iter()
                        .enumerate()
                        .skip(self.cursor.top)
                        .take(self.height)
                        .map(|(i, c)| {
                            let latest = c.latest.clone().unwrap_or_default();
                            Row::new(vec![
                                infradeck_core::sanitize::for_terminal(&c.device.name).into_owned(),
                                c.versions.to_string(),
                                latest.clone(),
                                infradeck_core::time::age(&latest, cx.now),
                            ])
                            .style(if i == self.cursor.selected {
                                theme.selected()
                            } else {
                                theme.base()
                            })
                        })
                        .collect(),
                )
            }
            Listing::Versions { versions, .. } => (
                Row::new(["", "VERSION", "RETRIEVED", "SHA-256", "SIZE"]),
                versions
                    .iter()
                    .enumerate()
                    .skip(self.cursor.top)
                    .take(self.height)
                    .map(|(i, v)| {
                        let marked = self.marked == Some(v.id);
                        Row::new(vec![
                            if marked {
                                "●".to_string()
                            } else {
                                String::new()
                            },
                            format!("v{}", v.version),
                            v.retrieved_at.clone().unwrap_or_default(),
                            v.config_hash.chars().take(16).collect(),
                            format!("{} B", v.size_bytes),
                        ])
                        .style(if i == self.cursor.selected {
                            theme.selected()
                        } else if marked {
                            theme.marked()
                        } else {
                            theme.base()
                        })
                    })
                    .collect(),
            ),
        };
        let widths: &[Constraint] = match &self.listing {
            Listing::Devices(_) => &[
                Constraint::Min(20),
                Constraint::Length(9),
                Constraint::Length(20),
                Constraint::Length(6),
            ],
            Listing::Versions { .. } => &[
                Constraint::Length(1),
                Constraint::Length(8),
                Constraint::Length(20),
                Constraint::Length(17),
                Constraint::Min(8),
            ],
        };
        frame.render_widget(
            Table::new(rows, widths.to_vec()).header(header.style(theme.title())),
            area,
        );
    }
}

/// Where a diff row is drawn, which decides the line numbers beside it.
#[derive(Clone, Copy)]
enum Column {
    Left,
    Right,
    Unified,
}

/// The diff of two versions of one device's config.
pub(crate) struct DiffView {
    name: String,
    old: ConfigVersion,
    new: ConfigVersion,
    texts: Option<(String, String)>,
    model: LineDiff,
    hide_volatile: bool,
    side_by_side: Option<bool>,
    cursor: Cursor,
    scroll_x: usize,
    search: String,
    height: usize,
    width: u16,
}

impl DiffView {
    pub(crate) fn new(name: &str, old: ConfigVersion, new: ConfigVersion) -> DiffView {
        DiffView {
            name: name.to_string(),
            old,
            new,
            texts: None,
            model: LineDiff::default(),
            hide_volatile: false,
            side_by_side: None,
            cursor: Cursor::default(),
            scroll_x: 0,
            search: String::new(),
            height: 20,
            width: 80,
        }
    }

    fn recompute(&mut self, cx: &Cx) {
        if let Some((old, new)) = &self.texts {
            let hide: &[regex::Regex] = if self.hide_volatile {
                &cx.env.volatile_lines
            } else {
                &[]
            };
            self.model = LineDiff::compute(old.clone(), new.clone(), hide, 3);
            self.cursor.selected = self.model.hunks().first().copied().unwrap_or(0);
            self.cursor.top = self.cursor.selected;
        }
    }

    fn split(&self) -> bool {
        self.side_by_side.unwrap_or(self.width >= 160)
    }

    fn find(&self, forward: bool) -> Option<usize> {
        if self.search.is_empty() {
            return None;
        }
        let needle = self.search.to_lowercase();
        let n = self.model.rows().len();
        (1..=n)
            .map(|step| {
                if forward {
                    (self.cursor.selected + step) % n
                } else {
                    (self.cursor.selected + n - step % n) % n
                }
            })
            .find(|&i| self.model.raw_text(i).to_lowercase().contains(&needle))
    }

    /// The spans of model row `index` drawn as `column`: its line number(s), sign and text
    /// from the horizontal scroll on, changed words and search matches highlighted.
    fn row_spans(
        &self,
        index: usize,
        column: Column,
        theme: Theme,
        number_width: usize,
        text_width: usize,
    ) -> Vec<Span<'static>> {
        let kind = self.model.rows()[index].kind;
        let (sign, line_style, word_style) = match kind {
            RowKind::Hunk => (" ", theme.hunk(), theme.hunk()),
            RowKind::Context => (" ", theme.base(), theme.base()),
            RowKind::Removed => ("-", theme.removed(), theme.removed_word()),
            RowKind::Added => ("+", theme.added(), theme.added_word()),
        };
        let number = |n: Option<usize>| {
            let text = n.map(|n| n.to_string()).unwrap_or_default();
            format!("{text:>number_width$} ")
        };
        // Each side shows its own numbers; the unified layout shows both, old then new.
        let numbers = match column {
            Column::Left => number(self.model.old_no(index)),
            Column::Right => number(self.model.new_no(index)),
            Column::Unified => number(self.model.old_no(index)) + &number(self.model.new_no(index)),
        };
        let mut spans = vec![
            Span::styled(numbers, theme.muted()),
            Span::styled(sign.to_string(), line_style),
        ];
        let text = self.model.text(index);
        let words = self.model.words(index);
        // Highlight changed words and search matches, then cut to the horizontal window.
        let mut marks: Vec<(std::ops::Range<usize>, Style)> =
            words.into_iter().map(|r| (r, word_style)).collect();
        if !self.search.is_empty() {
            let lower = text.to_lowercase();
            if lower.len() == text.len() {
                let mut from = 0;
                while let Some(at) = lower
                    .get(from..)
                    .and_then(|rest| rest.find(&self.search.to_lowercase()))
                {
                    let start = from + at;
                    marks.push((start..start + self.search.len(), theme.search_match()));
                    from = start + self.search.len().max(1);
                }
            }
        }
        let mut styles: Vec<Style> = vec![line_style; text.len()];
        for (range, style) in marks {
            for s in styles
                .iter_mut()
                .take(range.end.min(text.len()))
                .skip(range.start)
            {
                *s = style;
            }
        }
        let mut out = String::new();
        let mut current: Option<Style> = None;
        let mut taken = 0;
        for (at_column, (offset, ch)) in text.char_indices().enumerate() {
            if at_column < self.scroll_x {
                continue;
            }
            if taken >= text_width {
                break;
            }
            let style = styles[offset];
            if current.is_some_and(|c| c != style) {
                spans.push(Span::styled(
                    std::mem::take(&mut out),
                    current.unwrap_or_default(),
                ));
            }
            current = Some(style);
            out.push(ch);
            taken += 1;
        }
        if !out.is_empty() {
            spans.push(Span::styled(out, current.unwrap_or(line_style)));
        }
        spans
    }
}

impl Screen for DiffView {
    fn title(&self) -> String {
        format!("diff v{}→v{}", self.old.version, self.new.version)
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Diff, Scope::List, Scope::Global]
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        let at = self.cursor.selected;
        match action {
            Action::Open => Some("a diff opens nothing further: Esc goes back to the versions"),
            Action::NextHunk if !self.model.hunks().iter().any(|h| *h > at) => {
                Some("no change below: this is the last hunk")
            }
            Action::PrevHunk if !self.model.hunks().iter().any(|h| *h < at) => {
                Some("no change above: this is the first hunk")
            }
            Action::NextMatch | Action::PrevMatch if self.search.is_empty() => {
                Some("nothing searched yet: / searches the diff")
            }
            _ => None,
        }
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        if self.texts.is_none() {
            let old = cx.store.config_text(self.old.id)?.unwrap_or_default();
            let new = cx.store.config_text(self.new.id)?.unwrap_or_default();
            self.texts = Some((old, new));
            self.recompute(cx);
        }
        Ok(())
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.search)
    }

    fn set_filter(&mut self, text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        self.search = text.to_string();
        if let Some(at) = self.find(true) {
            self.cursor.selected = at;
        }
        Ok(())
    }

    fn copy_text(&self) -> Option<String> {
        let label = |v: &ConfigVersion| format!("{} v{} {}", self.name, v.version, v.config_hash);
        Some(
            self.model
                .unified(&label(&self.old), &label(&self.new), false),
        )
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self
            .cursor
            .apply(action, self.model.rows().len(), self.height)
        {
            self.cursor.top = self.cursor.top.min(self.cursor.selected);
            return Ok(Outcome::Handled);
        }
        match action {
            Action::NextHunk => {
                if let Some(next) = self
                    .model
                    .hunks()
                    .iter()
                    .find(|h| **h > self.cursor.selected)
                {
                    self.cursor.selected = *next;
                    self.cursor.top = *next;
                }
            }
            Action::PrevHunk => {
                if let Some(prev) = self
                    .model
                    .hunks()
                    .iter()
                    .rev()
                    .find(|h| **h < self.cursor.selected)
                {
                    self.cursor.selected = *prev;
                    self.cursor.top = *prev;
                }
            }
            Action::NextMatch | Action::PrevMatch => match self.find(action == Action::NextMatch) {
                Some(at) => self.cursor.selected = at,
                None => return Ok(Outcome::Flash(Flash::error("no match; search with /"))),
            },
            Action::SideBySide => self.side_by_side = Some(!self.split()),
            Action::HideVolatile => {
                self.hide_volatile = !self.hide_volatile;
                self.recompute(cx);
                return Ok(Outcome::Flash(Flash::info(if self.hide_volatile {
                    format!("hiding {} volatile lines", self.model.hidden)
                } else {
                    "showing volatile lines".to_string()
                })));
            }
            Action::Left => self.scroll_x = self.scroll_x.saturating_sub(8),
            Action::Right => self.scroll_x += 8,
            _ => return Ok(Outcome::Ignored),
        }
        Ok(Outcome::Handled)
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.width = area.width;
        let [status_area, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        self.height = body.height.max(1) as usize;
        let hunk_no = self
            .model
            .hunks()
            .iter()
            .filter(|h| **h <= self.cursor.selected)
            .count();
        let status = Line::from(vec![
            Span::styled(format!("+{} ", self.model.added), theme.added()),
            Span::styled(format!("-{} ", self.model.removed), theme.removed()),
            Span::styled(
                format!(
                    " hunk {hunk_no}/{}  v{} {} → v{} {}{}{}",
                    self.model.hunks().len(),
                    self.old.version,
                    self.old.retrieved_at.as_deref().unwrap_or("?"),
                    self.new.version,
                    self.new.retrieved_at.as_deref().unwrap_or("?"),
                    if self.hide_volatile {
                        format!("  ({} volatile hidden)", self.model.hidden)
                    } else {
                        String::new()
                    },
                    if self.scroll_x > 0 {
                        format!("  ⇢{}", self.scroll_x)
                    } else {
                        String::new()
                    },
                ),
                theme.muted(),
            ),
        ]);
        frame.render_widget(Paragraph::new(status), status_area);
        if self.model.is_empty() {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    if self.model.hidden > 0 {
                        "identical apart from volatile lines"
                    } else {
                        "the two versions are identical"
                    },
                    theme.muted(),
                )),
                body,
            );
            return;
        }
        let number_width = self.model.largest_number().to_string().len();
        if self.split() {
            let pairs = self.model.side_by_side();
            // Keep the selected model row in view: find its visual row.
            let visual = pairs
                .iter()
                .position(|(l, r)| {
                    *l == Some(self.cursor.selected) || *r == Some(self.cursor.selected)
                })
                .unwrap_or(0);
            let top = if visual < self.height {
                0
            } else {
                visual + 1 - self.height
            };
            let top = top.max(
                pairs
                    .iter()
                    .position(|(l, r)| *l == Some(self.cursor.top) || *r == Some(self.cursor.top))
                    .unwrap_or(0)
                    .min(visual),
            );
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(body);
            let text_width = (left.width as usize).saturating_sub(number_width + 3);
            let mut left_lines = Vec::new();
            let mut right_lines = Vec::new();
            for (i, (l, r)) in pairs.iter().enumerate().skip(top).take(self.height) {
                let selected = i == visual;
                for (side, column, lines) in [
                    (l, Column::Left, &mut left_lines),
                    (r, Column::Right, &mut right_lines),
                ] {
                    let mut line = match side {
                        Some(index) => Line::from(self.row_spans(
                            *index,
                            column,
                            theme,
                            number_width,
                            text_width,
                        )),
                        None => Line::raw(""),
                    };
                    if selected {
                        line = line.patch_style(
                            Style::default().add_modifier(ratatui::style::Modifier::REVERSED),
                        );
                    }
                    lines.push(line);
                }
            }
            frame.render_widget(Paragraph::new(left_lines), left);
            frame.render_widget(Paragraph::new(right_lines), right);
        } else {
            self.cursor.clamp(self.model.rows().len(), self.height);
            let text_width = (body.width as usize).saturating_sub(2 * number_width + 3);
            let lines: Vec<Line> = (0..self.model.rows().len())
                .skip(self.cursor.top)
                .take(self.height)
                .map(|i| {
                    let line = Line::from(self.row_spans(
                        i,
                        Column::Unified,
                        theme,
                        number_width,
                        text_width,
                    ));
                    if i == self.cursor.selected {
                        line.patch_style(
                            Style::default().add_modifier(ratatui::style::Modifier::REVERSED),
                        )
                    } else {
                        line
                    }
                })
                .collect();
            frame.render_widget(Paragraph::new(lines), body);
        }
    }
}
