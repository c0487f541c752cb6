//! Colours and emphasis. With `NO_COLOR` set every meaning is carried by modifiers alone
//! (reverse for the selection, dim for stale rows, bold/underline for diff sides and conflicts)
//! and by the `+`/`-` and `≠` markers the views always draw.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty (<https://no-color.org>).
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn pick(self, colored: Style, mono: Style) -> Style {
        if self.color { colored } else { mono }
    }

    pub(crate) fn base(self) -> Style {
        Style::default()
    }
    pub(crate) fn title(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub(crate) fn header_bar(self) -> Style {
        self.pick(
            Style::default().bg(Color::Rgb(30, 40, 60)),
            Style::default(),
        )
    }
    /// The header bar of a production inventory: red, so it never looks like the lab.
    pub(crate) fn production_bar(self) -> Style {
        self.pick(
            Style::default().bg(Color::Rgb(90, 20, 20)),
            Style::default(),
        )
    }
    /// The environment's name in the header; production in white on red (reversed without
    /// colour), anything else in black on yellow.
    pub(crate) fn environment(self, production: bool) -> Style {
        let bold = Modifier::BOLD;
        if production {
            self.pick(
                Style::default()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(bold),
                Style::default().add_modifier(bold | Modifier::REVERSED),
            )
        } else {
            self.pick(
                Style::default()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(bold),
                Style::default().add_modifier(bold),
            )
        }
    }
    pub(crate) fn selected(self) -> Style {
        self.pick(
            Style::default()
                .bg(Color::Rgb(45, 70, 110))
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::REVERSED),
        )
    }
    pub(crate) fn marked(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    pub(crate) fn stale(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::DarkGray)
                .add_modifier(Modifier::DIM),
            Style::default().add_modifier(Modifier::DIM),
        )
    }
    pub(crate) fn muted(self) -> Style {
        self.pick(Style::default().fg(Color::Gray), Style::default())
    }
    pub(crate) fn key(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub(crate) fn ok(self) -> Style {
        self.pick(Style::default().fg(Color::Green), Style::default())
    }
    pub(crate) fn warn(self) -> Style {
        self.pick(
            Style::default().fg(Color::Yellow),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub(crate) fn error(self) -> Style {
        self.pick(
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    /// A machine's health: the word always says it; colour adds to it.
    pub(crate) fn health(self, health: infradeck_core::model::Health) -> Style {
        match health {
            infradeck_core::model::Health::Ok => self.ok(),
            infradeck_core::model::Health::Warn => self.warn(),
            infradeck_core::model::Health::Crit => self.error(),
        }
    }
    pub(crate) fn running(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub(crate) fn added(self) -> Style {
        self.pick(
            Style::default().fg(Color::Green),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub(crate) fn removed(self) -> Style {
        self.pick(
            Style::default().fg(Color::Red),
            Style::default().add_modifier(Modifier::DIM | Modifier::CROSSED_OUT),
        )
    }
    /// The changed words inside a changed line.
    pub(crate) fn added_word(self) -> Style {
        self.pick(
            Style::default().fg(Color::Black).bg(Color::Green),
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
    }
    pub(crate) fn removed_word(self) -> Style {
        self.pick(
            Style::default().fg(Color::Black).bg(Color::Red),
            Style::default().add_modifier(Modifier::REVERSED),
        )
    }
    pub(crate) fn hunk(self) -> Style {
        self.pick(
            Style::default().fg(Color::Magenta),
            Style::default().add_modifier(Modifier::ITALIC),
        )
    }
    pub(crate) fn conflict(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    pub(crate) fn search_match(self) -> Style {
        self.pick(
            Style::default().fg(Color::Black).bg(Color::Yellow),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED),
        )
    }
    pub(crate) fn gauge(self) -> Style {
        self.pick(
            Style::default().fg(Color::Cyan).bg(Color::Rgb(30, 30, 30)),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
}
