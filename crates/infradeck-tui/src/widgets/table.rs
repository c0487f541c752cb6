//! The list table every view draws: a title-styled header and the selected row highlighted.

use crate::theme::Theme;
use ratatui::layout::Constraint;
use ratatui::widgets::{Row, Table};

/// `row`, highlighted when it is the selected one.
pub(crate) fn select(row: Row<'_>, selected: bool, theme: Theme) -> Row<'_> {
    if selected {
        row.style(theme.selected())
    } else {
        row
    }
}

/// A table of `rows` under `header`.
pub(crate) fn list<'a>(
    rows: Vec<Row<'a>>,
    widths: &[Constraint],
    header: &[&'a str],
    theme: Theme,
) -> Table<'a> {
    Table::new(rows, widths.to_vec()).header(Row::new(header.to_vec()).style(theme.title()))
}
