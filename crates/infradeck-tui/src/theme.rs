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

    pub fn base(self) -> Style {
        Style::default()
    }
    pub fn title(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn header_bar(self) -> Style {
        self.pick(
            Style::default().bg(Color::Rgb(30, 40, 60)),
            Style::default(),
        )
    }
    pub fn selected(self) -> Style {
        self.pick(
            Style::default()
                .bg(Color::Rgb(45, 70, 110))
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::REVERSED),
        )
    }
    pub fn marked(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    pub fn stale(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::DarkGray)
                .add_modifier(Modifier::DIM),
            Style::default().add_modifier(Modifier::DIM),
        )
    }
    pub fn muted(self) -> Style {
        self.pick(Style::default().fg(Color::Gray), Style::default())
    }
    pub fn key(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn ok(self) -> Style {
        self.pick(Style::default().fg(Color::Green), Style::default())
    }
    pub fn warn(self) -> Style {
        self.pick(
            Style::default().fg(Color::Yellow),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn error(self) -> Style {
        self.pick(
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    pub fn running(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn added(self) -> Style {
        self.pick(
            Style::default().fg(Color::Green),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn removed(self) -> Style {
        self.pick(
            Style::default().fg(Color::Red),
            Style::default().add_modifier(Modifier::DIM | Modifier::CROSSED_OUT),
        )
    }
    /// The changed words inside a changed line.
    pub fn added_word(self) -> Style {
        self.pick(
            Style::default().fg(Color::Black).bg(Color::Green),
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
    }
    pub fn removed_word(self) -> Style {
        self.pick(
            Style::default().fg(Color::Black).bg(Color::Red),
            Style::default().add_modifier(Modifier::REVERSED),
        )
    }
    pub fn hunk(self) -> Style {
        self.pick(
            Style::default().fg(Color::Magenta),
            Style::default().add_modifier(Modifier::ITALIC),
        )
    }
    pub fn conflict(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    pub fn search_match(self) -> Style {
        self.pick(
            Style::default().fg(Color::Black).bg(Color::Yellow),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED),
        )
    }
    pub fn gauge(self) -> Style {
        self.pick(
            Style::default().fg(Color::Cyan).bg(Color::Rgb(30, 30, 30)),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
}
