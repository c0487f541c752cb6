//! Drawing the whole screen: header, the current view, the footer (hints of what works now, or
//! the line being edited), and the help screen and dialogs over it.

use super::*;

impl App {
    /// Draws the whole screen.
    pub fn draw(&mut self, frame: &mut Frame) {
        let area = frame.area();
        let theme = self.env.theme;
        // The header is two lines at any width: it abbreviates rather than wraps.
        let [header_area, body_area, footer_area] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(area);
        let now = self.env.now();
        let as_of = self.views.last().and_then(|v| v.as_of());
        self.header.draw(frame, header_area, &self.env, now, as_of);

        let crumbs = self.breadcrumb();
        let trail = crumbs.join(" › ");
        // Each view's columns in the title below (it starts with a space; " › " separates).
        let mut x = body_area.x + 1;
        let ranges = crumbs
            .iter()
            .map(|crumb| {
                let width = Span::raw(crumb.as_str()).width() as u16;
                let range = x..x.saturating_add(width);
                x = range.end.saturating_add(3);
                range
            })
            .collect();
        self.crumbs = (body_area.y, ranges);
        let filter = self
            .views
            .last()
            .and_then(|v| v.filter())
            .unwrap_or_default();
        let mut title = vec![Span::styled(format!(" {trail} "), theme.title())];
        if !filter.is_empty() {
            title.push(Span::styled(
                format!("[/{}] ", infradeck_core::sanitize::for_terminal(filter)),
                theme.key(),
            ));
        }
        let block = Block::default()
            .borders(Borders::TOP)
            .title(Line::from(title));
        let inner = block.inner(body_area);
        frame.render_widget(block, body_area);
        let (mut cx, views) = self.cx();
        if let Some(view) = views.last_mut() {
            view.draw(frame, inner, &mut cx);
        }
        self.draw_footer(frame, footer_area);
        if let Mode::Help { scroll } = &self.mode {
            let unavailable = |action| self.unavailable(action);
            draw_help(frame, area, &self.views, &self.env, *scroll, &unavailable);
        }
        if let Mode::Modal(modal) = &mut self.mode {
            draw_modal(frame, area, modal, theme);
        }
    }

    fn draw_footer(&self, frame: &mut Frame, area: Rect) {
        let theme = self.env.theme;
        // The hints of the open mode (or of the view, in normal mode): only what works now.
        let hints = |spans: &mut Vec<Span<'static>>| {
            let scopes = match self.mode.scope() {
                Some(scope) => vec![scope],
                None => self
                    .views
                    .last()
                    .map_or(vec![Scope::Global], |v| v.scopes().to_vec()),
            };
            let available = |action| match self.mode.scope() {
                Some(_) => self.mode_unavailable(action).is_none(),
                None => self.unavailable(action).is_none(),
            };
            let mut all = keys::hints(&scopes, self.env.read_only, &available);
            // On a narrow terminal the view's own hints give way, from the last one back, so
            // the ways out (help, back, quit: the last hints) always show.
            let width = |hints: &[(&str, &str)]| -> usize {
                hints
                    .iter()
                    .map(|(l, h)| l.chars().count() + h.chars().count() + 3)
                    .sum()
            };
            while width(&all) > usize::from(area.width) && all.len() > 3 {
                let droppable = all.len().saturating_sub(3).saturating_sub(1);
                all.remove(droppable);
            }
            for (label, hint) in all {
                spans.push(Span::styled(format!("<{label}>"), theme.key()));
                spans.push(Span::styled(format!("{hint} "), theme.muted()));
            }
        };
        // On a line being edited, a message (a refusal, the completions) takes the hints' place.
        let flash_or_hints = |spans: &mut Vec<Span<'static>>| match &self.flash {
            Some(flash) => spans.push(Span::styled(
                infradeck_core::sanitize::for_terminal(&flash.text).into_owned(),
                if flash.error {
                    theme.error()
                } else {
                    theme.muted()
                },
            )),
            None => hints(spans),
        };
        let line = match (&self.mode, &self.flash) {
            (Mode::Command { input }, _) => {
                let completions = complete_command(input.split(' ').next().unwrap_or_default());
                let mut spans = vec![
                    Span::styled(":", theme.key()),
                    Span::raw(infradeck_core::sanitize::for_terminal(input).into_owned()),
                    Span::styled("█   ", theme.muted()),
                ];
                flash_or_hints(&mut spans);
                let flashed = self.flash.is_some();
                if !flashed && !input.contains(' ') && !input.is_empty() && completions.len() > 1 {
                    spans.push(Span::styled(
                        format!("  {}", completions.join(" ")),
                        theme.muted(),
                    ));
                }
                Line::from(spans)
            }
            (Mode::Filter { input, .. }, _) => {
                let mut spans = vec![
                    Span::styled("/", theme.key()),
                    Span::raw(infradeck_core::sanitize::for_terminal(input).into_owned()),
                    Span::styled("█   ", theme.muted()),
                ];
                flash_or_hints(&mut spans);
                spans.push(Span::styled(
                    " !text inverts · type: source: status: health: power:",
                    theme.muted(),
                ));
                Line::from(spans)
            }
            (_, Some(flash)) => Line::from(Span::styled(
                infradeck_core::sanitize::for_terminal(&flash.text).into_owned(),
                if flash.error {
                    theme.error()
                } else {
                    theme.ok()
                },
            )),
            (_, None) => {
                let mut spans = Vec::new();
                hints(&mut spans);
                Line::from(spans)
            }
        };
        frame.render_widget(Paragraph::new(line), area);
    }
}

/// A rectangle of `percent_x` × `height` centred in `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// Every binding, the current view's first; those that do nothing here now say why.
pub(super) fn draw_help(
    frame: &mut Frame,
    area: Rect,
    views: &[Box<dyn Screen>],
    env: &Env,
    scroll: u16,
    unavailable: &dyn Fn(Action) -> Option<&'static str>,
) {
    let theme = env.theme;
    let scopes = views.last().map_or(&[Scope::Global][..], |v| v.scopes());
    let mut lines = Vec::new();
    for (scope, rows) in keys::help(scopes) {
        lines.push(Line::from(Span::styled(scope.title(), theme.title())));
        let here = scopes.contains(&scope);
        for b in rows {
            let reason = if env.read_only && b.writes {
                Some("read-only mode")
            } else if here {
                unavailable(b.action)
            } else {
                None
            };
            let mut spans = vec![
                Span::styled(format!("  {:<9}", b.label), theme.key()),
                Span::styled(
                    b.help,
                    if reason.is_some() {
                        theme.muted()
                    } else {
                        theme.base()
                    },
                ),
            ];
            if let Some(reason) = reason {
                spans.push(Span::styled(
                    format!("  — not now: {reason}"),
                    theme.muted(),
                ));
            }
            lines.push(Line::from(spans));
        }
    }
    lines.push(Line::from(Span::styled("commands", theme.title())));
    for c in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(format!("  :{:<9}", c.name), theme.key()),
            Span::raw(c.help),
            Span::styled(
                if c.aliases.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", c.aliases.join(" "))
                },
                theme.muted(),
            ),
        ]));
    }
    if env.read_only {
        lines.push(Line::from(Span::styled(
            "read-only: actions that write are refused (marked above)",
            theme.warn(),
        )));
    }
    let popup = centered(area, 90, area.height.saturating_sub(2));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(Block::bordered().title(Span::styled(
                " help · ↑↓ scroll · any key closes ",
                theme.title(),
            ))),
        popup,
    );
}

pub(super) fn draw_modal(frame: &mut Frame, area: Rect, modal: &mut Modal, theme: Theme) {
    match modal {
        Modal::Text {
            title,
            lines,
            scroll,
        } => {
            let popup = centered(area, 100, area.height.saturating_sub(4));
            frame.render_widget(Clear, popup);
            let text: Vec<Line> = lines
                .iter()
                .map(|l| Line::raw(infradeck_core::sanitize::line_for_terminal(l).into_owned()))
                .collect();
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .scroll((*scroll, 0))
                    .block(Block::bordered().title(Span::styled(
                        format!(
                            " {} · y copy · Esc close ",
                            infradeck_core::sanitize::for_terminal(title)
                        ),
                        theme.title(),
                    ))),
                popup,
            );
        }
        Modal::Reason {
            title, textarea, ..
        } => {
            let popup = centered(area, 70, 8);
            frame.render_widget(Clear, popup);
            textarea.set_block(Block::bordered().title(Span::styled(
                format!(
                    " {} · Enter submit · Esc cancel ",
                    infradeck_core::sanitize::for_terminal(title)
                ),
                theme.title(),
            )));
            frame.render_widget(&**textarea, popup);
        }
        Modal::Confirm {
            title,
            body,
            require,
            typed,
            yes_focused,
            ..
        } => {
            let width = 72.min(area.width);
            // Rows each line takes once wrapped inside the border, so nothing is cut below.
            let rows_of = |text: &str| {
                let room = usize::from(width.saturating_sub(2)).max(1);
                text.chars().count().div_ceil(room).max(1) as u16
            };
            let mut lines: Vec<Line> = body
                .iter()
                .map(|l| Line::raw(infradeck_core::sanitize::for_terminal(l).into_owned()))
                .collect();
            let mut height: u16 = body.iter().map(|l| rows_of(l)).sum::<u16>() + 5;
            if let Some(required) = require {
                // The id on a line of its own: it must be read whole to be typed.
                let required = infradeck_core::sanitize::for_terminal(required).into_owned();
                lines.push(Line::raw(""));
                lines.push(Line::raw("type the batch id to confirm:"));
                lines.push(Line::styled(format!("  {required}"), theme.title()));
                lines.push(Line::from(vec![
                    Span::raw("> "),
                    Span::styled(
                        infradeck_core::sanitize::for_terminal(typed).into_owned(),
                        theme.key(),
                    ),
                    Span::styled("█", theme.muted()),
                ]));
                height += 3 + rows_of(&required) + rows_of(typed);
            }
            let popup = centered(area, width, height);
            frame.render_widget(Clear, popup);
            lines.push(Line::raw(""));
            let (cancel, yes) = if *yes_focused {
                (Style::default(), theme.selected())
            } else {
                (theme.selected(), Style::default())
            };
            lines.push(Line::from(vec![
                Span::styled(" [ Cancel ] ", cancel),
                Span::raw("   "),
                Span::styled(" [ Yes ] ", yes),
                Span::styled(
                    "   Tab switches · Enter chooses · Esc cancels",
                    theme.muted(),
                ),
            ]));
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(
                        format!(" {} ", infradeck_core::sanitize::for_terminal(title)),
                        theme.warn(),
                    ))),
                popup,
            );
        }
    }
}
